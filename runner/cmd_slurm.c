/* `rcc-dist slurm JOB.yaml`: writes the Slurm batch script that runs the job on a cluster
 * (slurm/sbatch.h), from the job's `slurm:` section and the flags, and optionally submits
 * it. The script names this binary and the job by absolute path, so it runs the same from
 * any directory; relative paths inside the job stay relative to where this command ran
 * (the script's --chdir). */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs/job.h"
#include "runner/commands.h"
#include "slurm/sbatch.h"

static const char slurm_usage[] =
    "usage: rcc-dist slurm JOB.yaml [--nodes N] [--gpus-per-node G] [--ntasks-per-node T]\n"
    "                      [--cpus-per-task C] [--partition P] [--time T] [--account A]\n"
    "                      [--constraint C] [--mem M] [--requeue | --no-requeue]\n"
    "                      [--output-dir DIR] [--submit]\n"
    "\n"
    "Writes a Slurm batch script that runs JOB.yaml with `srun --mpi=pmix` and prints its\n"
    "path (default OUTPUT/slurm/rcc-dist.sbatch, OUTPUT being the job's run directory).\n"
    "Defaults come from the job's `slurm:` section; flags override them.\n"
    "  --nodes N            nodes (default 1)\n"
    "  --gpus-per-node G    GPUs per node, one task per GPU; 0 (default) for a CPU job\n"
    "  --ntasks-per-node T  tasks per node of a CPU job (default 1)\n"
    "  --cpus-per-task C    CPUs (OpenMP threads) per task; 0 leaves Slurm's default\n"
    "  --partition P, --time T, --account A, --constraint C, --mem M\n"
    "                       the sbatch options of the same names (--time 2:00:00, --mem 64G)\n"
    "  --requeue            let Slurm requeue the job; a requeued job resumes from its\n"
    "                       checkpoints (--no-requeue: the job's setting off)\n"
    "  --output-dir DIR     where the script and the job's Slurm output go\n"
    "  --submit             also run `sbatch --parsable` and print the job id on a second line\n";

/* A count flag: an integer >= lo; prints a usage error and returns -1 otherwise. */
static int parse_count(const char *flag, const char *value, int lo) {
  char *end;
  errno = 0;
  long v = strtol(value, &end, 10);
  if (!*value || *end || errno || v < lo || v > INT_MAX) {
    fprintf(stderr, "rcc-dist: error: %s expects an integer >= %d, got '%s'\n", flag, lo, value);
    return -1;
  }
  return (int)v;
}

/* mkdir -p. */
static rcc_status_t make_dirs(const char *path) {
  char buf[PATH_MAX];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
    return rcc_fail(RCC_ERR_ARG, "%s: path too long", path);
  for (char *p = buf + 1;; p++) {
    if (*p && *p != '/') continue;
    char was = *p;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return rcc_fail(RCC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    if (!was) return RCC_OK;
    *p = '/';
  }
}

/* `dir` made absolute against the current directory, into out. */
static rcc_status_t absolute(const char *cwd, const char *dir, char *out, size_t size) {
  int n = dir[0] == '/' ? snprintf(out, size, "%s", dir) : snprintf(out, size, "%s/%s", cwd, dir);
  if (n < 0 || (size_t)n >= size) return rcc_fail(RCC_ERR_ARG, "%s: path too long", dir);
  return RCC_OK;
}

/* The job file's name without folder and extension, as one word for --job-name. */
static void job_name_of(const char *path, char *out, size_t size) {
  const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
  snprintf(out, size, "%s", base);
  char *dot = strrchr(out, '.');
  if (dot && dot != out) *dot = '\0';
  for (char *p = out; *p; p++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-", *p)) *p = '_';
}

/* An empty job value is one not given. */
static const char *or_null(const char *s) { return s[0] ? s : NULL; }

/* Writes the script into dir/rcc-dist.sbatch (executable), its path into path. */
static rcc_status_t write_script(const rcc_sbatch_options_t *o, char *path, size_t size) {
  char *text;
  RCC_TRY(rcc_sbatch_script(o, &text));
  rcc_status_t st = make_dirs(o->log_dir);
  if (st == RCC_OK && snprintf(path, size, "%s/rcc-dist.sbatch", o->log_dir) >= (int)size)
    st = rcc_fail(RCC_ERR_ARG, "%s: path too long", o->log_dir);
  FILE *f = st == RCC_OK ? fopen(path, "w") : NULL;
  if (st == RCC_OK && !f) st = rcc_fail(RCC_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
  if (f) {
    bool ok = fputs(text, f) >= 0;
    if (fclose(f) != 0 || !ok || chmod(path, 0755) != 0)
      st = rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  free(text);
  return st;
}

int rcc_cmd_slurm(int argc, char **argv) {
  /* getopt_long codes of the long options, past every single character. */
  enum {
    NODES = 256,
    GPUS,
    NTASKS,
    CPUS,
    PARTITION,
    TIME,
    ACCOUNT,
    CONSTRAINT,
    MEM,
    OUTDIR,
    REQUEUE,
    NO_REQUEUE,
    SUBMIT,
    HELP
  };
  static const struct option opts[] = {{"nodes", required_argument, 0, NODES},
                                       {"gpus-per-node", required_argument, 0, GPUS},
                                       {"ntasks-per-node", required_argument, 0, NTASKS},
                                       {"cpus-per-task", required_argument, 0, CPUS},
                                       {"partition", required_argument, 0, PARTITION},
                                       {"time", required_argument, 0, TIME},
                                       {"account", required_argument, 0, ACCOUNT},
                                       {"constraint", required_argument, 0, CONSTRAINT},
                                       {"mem", required_argument, 0, MEM},
                                       {"output-dir", required_argument, 0, OUTDIR},
                                       {"requeue", no_argument, 0, REQUEUE},
                                       {"no-requeue", no_argument, 0, NO_REQUEUE},
                                       {"submit", no_argument, 0, SUBMIT},
                                       {"help", no_argument, 0, HELP},
                                       {0, 0, 0, 0}};
  /* Flags as given: -1 / NULL where not given, so that the job's values stay. */
  int nodes = -1, gpus = -1, ntasks = -1, cpus = -1, requeue = -1, submit = 0, c;
  const char *partition = NULL, *time_limit = NULL, *account = NULL, *constraint = NULL,
             *mem = NULL;
  const char *outdir = NULL;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case NODES: nodes = parse_count("--nodes", optarg, 1); break;
    case GPUS: gpus = parse_count("--gpus-per-node", optarg, 0); break;
    case NTASKS: ntasks = parse_count("--ntasks-per-node", optarg, 1); break;
    case CPUS: cpus = parse_count("--cpus-per-task", optarg, 0); break;
    case PARTITION: partition = optarg; break;
    case TIME: time_limit = optarg; break;
    case ACCOUNT: account = optarg; break;
    case CONSTRAINT: constraint = optarg; break;
    case MEM: mem = optarg; break;
    case OUTDIR: outdir = optarg; break;
    case REQUEUE: requeue = 1; break;
    case NO_REQUEUE: requeue = 0; break;
    case SUBMIT: submit = 1; break;
    case HELP: fputs(slurm_usage, stdout); return 0;
    default: fputs(slurm_usage, stderr); return 2;
    }
    /* parse_count printed why; a flag read as -1 would silently fall back to the job's. */
    if ((c == NODES && nodes < 0) || (c == GPUS && gpus < 0) || (c == NTASKS && ntasks < 0) ||
        (c == CPUS && cpus < 0))
      return 2;
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: expected exactly one job file\n%s", slurm_usage);
    return 2;
  }
  rcc_job_t *job = NULL;
  if (rcc_job_load(argv[optind], &job) != RCC_OK || rcc_job_check_paths(job) != RCC_OK) {
    fprintf(stderr, "%s\n", rcc_job_errors()[0] ? rcc_job_errors() : rcc_last_error());
    rcc_job_free(job);
    return 1;
  }
  const rcc_job_slurm_t *js = &job->slurm;
  char binary[PATH_MAX], job_path[PATH_MAX], cwd[PATH_MAX], log_dir[PATH_MAX], name[256];
  char script[PATH_MAX + 32], id[64];
  ssize_t n = readlink("/proc/self/exe", binary, sizeof binary - 1);
  rcc_status_t st = RCC_OK;
  if (n <= 0)
    st = rcc_fail(RCC_ERR_IO, "/proc/self/exe: cannot find this binary: %s", strerror(errno));
  else
    binary[n] = '\0';
  if (st == RCC_OK && !realpath(job->path, job_path))
    st = rcc_fail(RCC_ERR_IO, "%s: cannot resolve the path: %s", job->path, strerror(errno));
  if (st == RCC_OK && !getcwd(cwd, sizeof cwd))
    st = rcc_fail(RCC_ERR_IO, "cannot read the current directory: %s", strerror(errno));
  if (st == RCC_OK) {
    char slurm_dir[PATH_MAX];
    snprintf(slurm_dir, sizeof slurm_dir, "%s/slurm", job->output);
    st = absolute(cwd, outdir ? outdir : slurm_dir, log_dir, sizeof log_dir);
  }
  job_name_of(job->path, name, sizeof name);
  int gpus_per_node = gpus >= 0 ? gpus : js->gpus_per_node;
  if (st == RCC_OK && gpus_per_node > 0 && ntasks >= 0)
    st = rcc_fail(RCC_ERR_ARG, "--ntasks-per-node is for CPU jobs: a GPU job runs one task per "
                               "GPU (--gpus-per-node)");
  const char *extra[RCC_JOB_SLURM_MAX_ARGS];
  for (int i = 0; i < js->num_sbatch_args; i++)
    extra[i] = js->sbatch_args[i];
  rcc_sbatch_options_t o = {
      .binary = binary,
      .job_path = job_path,
      .job_name = name,
      .workdir = cwd,
      .log_dir = log_dir,
      .nodes = nodes >= 0 ? nodes : js->nodes,
      .gpus_per_node = gpus_per_node,
      .ntasks_per_node = ntasks >= 0 ? ntasks : js->ntasks_per_node,
      .cpus_per_task = cpus >= 0 ? cpus : js->cpus_per_task,
      .partition = partition ? partition : or_null(js->partition),
      .time = time_limit ? time_limit : or_null(js->time),
      .account = account ? account : or_null(js->account),
      .constraint = constraint ? constraint : or_null(js->constraint),
      .mem = mem ? mem : or_null(js->mem),
      .sbatch_args = extra,
      .num_sbatch_args = js->num_sbatch_args,
      .requeue = requeue >= 0 ? requeue : js->requeue,
  };
  if (st == RCC_OK) st = write_script(&o, script, sizeof script);
  if (st == RCC_OK) {
    printf("%s\n", script);
    fflush(stdout);
  }
  if (st == RCC_OK && submit) st = rcc_sbatch_submit(script, id, sizeof id);
  if (st == RCC_OK && submit) printf("%s\n", id);
  rcc_job_free(job);
  if (st == RCC_ERR_ARG) {
    fprintf(stderr, "rcc-dist: error: %s\n", rcc_last_error());
    return 2;
  }
  return st == RCC_OK ? 0 : rcc_cmd_report_error();
}
