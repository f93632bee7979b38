/* Slurm batch scripts: the text of one (checked values, #SBATCH lines, commented
 * environment, the srun line) and its submission through `sbatch --parsable`. */
#include "slurm/sbatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "slurm/values.h"

/* Beyond this a count is a typo, not a cluster (sbatch itself would refuse it later). */
enum { MAX_COUNT = 100000 };

static rcc_status_t bad_value(const char *flag, const char *value, const char *want) {
  return rcc_fail(RCC_ERR_ARG, "%s '%s': must be %s", flag, value, want);
}

static rcc_status_t check_count(const char *flag, int v, int lo) {
  if (v < lo || v > MAX_COUNT)
    return rcc_fail(RCC_ERR_ARG, "%s %d: must be between %d and %d", flag, v, lo, MAX_COUNT);
  return RCC_OK;
}

/* A path in an #SBATCH line: absolute and one word (sbatch splits #SBATCH lines at
 * spaces, and reads %x, %j in --output as patterns). */
static rcc_status_t check_path(const char *what, const char *path) {
  if (!path || path[0] != '/')
    return rcc_fail(RCC_ERR_ARG, "%s '%s': must be an absolute path", what, path ? path : "(none)");
  for (const char *s = path; *s; s++)
    if (!isgraph((unsigned char)*s) || *s == '%')
      return rcc_fail(RCC_ERR_ARG,
                      "%s '%s': an #SBATCH line cannot hold a path with spaces, control "
                      "characters or '%%'; use a folder without them",
                      what, path);
  return RCC_OK;
}

rcc_status_t rcc_sbatch_check(const rcc_sbatch_options_t *o) {
  const char *p;
  if (!o->binary || o->binary[0] != '/' || !o->job_path || o->job_path[0] != '/')
    return rcc_fail(RCC_ERR_ARG, "sbatch script: the rcc-dist binary and the job file need "
                                 "absolute paths (a batch job starts in another directory)");
  RCC_TRY(check_path("--chdir", o->workdir));
  RCC_TRY(check_path("--output-dir", o->log_dir));
  if (!o->job_name || (p = rcc_slurm_word_problem(o->job_name)))
    return bad_value("--job-name", o->job_name ? o->job_name : "", "one word");
  RCC_TRY(check_count("--nodes", o->nodes, 1));
  RCC_TRY(check_count("--gpus-per-node", o->gpus_per_node, 0));
  RCC_TRY(check_count("--ntasks-per-node", o->ntasks_per_node, 1));
  RCC_TRY(check_count("--cpus-per-task", o->cpus_per_task, 0));
  const struct {
    const char *flag, *value;
    const char *(*problem)(const char *);
  } values[] = {{"--partition", o->partition, rcc_slurm_word_problem},
                {"--time", o->time, rcc_slurm_time_problem},
                {"--account", o->account, rcc_slurm_word_problem},
                {"--constraint", o->constraint, rcc_slurm_word_problem},
                {"--mem", o->mem, rcc_slurm_mem_problem}};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
    if (values[i].value && (p = values[i].problem(values[i].value)))
      return bad_value(values[i].flag, values[i].value, p);
  for (int i = 0; i < o->num_sbatch_args; i++)
    if ((p = rcc_slurm_option_problem(o->sbatch_args[i])))
      return bad_value("sbatch_args", o->sbatch_args[i], p);
  return RCC_OK;
}

/* Writes s as one shell word: as it is when it holds only safe characters, else in
 * single quotes (a quote inside becomes '\''). */
static void put_word(FILE *f, const char *s) {
  if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._+:@=,-") ==
                strlen(s)) {
    fputs(s, f);
    return;
  }
  fputc('\'', f);
  for (; *s; s++)
    if (*s == '\'')
      fputs("'\\''", f);
    else
      fputc(*s, f);
  fputc('\'', f);
}

static void put_option(FILE *f, const char *name, const char *value) {
  if (value) fprintf(f, "#SBATCH --%s=%s\n", name, value);
}

static void write_script(const rcc_sbatch_options_t *o, FILE *f) {
  bool gpu = o->gpus_per_node > 0;
  fprintf(f, "#!/bin/bash\n");
  fprintf(f, "# Slurm batch script for the rcc-dist job %s,\n", o->job_path);
  fprintf(f, "# written by `rcc-dist slurm` (edit freely). Submit it with `sbatch` and this\n");
  fprintf(f, "# file's path; each run's output goes to %s/%s-JOBID.out and .err.\n", o->log_dir,
          o->job_name);
  fprintf(f, "#SBATCH --job-name=%s\n", o->job_name);
  fprintf(f, "#SBATCH --nodes=%d\n", o->nodes);
  if (gpu) {
    fprintf(f, "#SBATCH --ntasks-per-node=%d\n", o->gpus_per_node);
    fprintf(f, "#SBATCH --gpus-per-task=1\n");
  } else {
    fprintf(f, "#SBATCH --ntasks-per-node=%d\n", o->ntasks_per_node);
  }
  if (o->cpus_per_task > 0) fprintf(f, "#SBATCH --cpus-per-task=%d\n", o->cpus_per_task);
  put_option(f, "partition", o->partition);
  put_option(f, "time", o->time);
  put_option(f, "account", o->account);
  put_option(f, "constraint", o->constraint);
  put_option(f, "mem", o->mem);
  fprintf(f, "#SBATCH --chdir=%s\n", o->workdir);
  fprintf(f, "#SBATCH --output=%s/%%x-%%j.out\n", o->log_dir);
  fprintf(f, "#SBATCH --error=%s/%%x-%%j.err\n", o->log_dir);
  if (o->requeue) {
    fprintf(f, "#SBATCH --requeue\n");
    /* A requeued job keeps its id, so its runs share the log files: keep them all. */
    fprintf(f, "#SBATCH --open-mode=append\n");
  }
  for (int i = 0; i < o->num_sbatch_args; i++)
    fprintf(f, "#SBATCH %s\n", o->sbatch_args[i]);

  fprintf(f, "\n# The CPU backend's OpenMP pool: as many threads as CPUs Slurm gave each task.\n");
  fprintf(f, "export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}\n");
  if (gpu) {
    fprintf(f, "# NCCL prints warnings only; INFO shows the network and GPUs it picked\n");
    fprintf(f, "# (set NCCL_SOCKET_IFNAME here when it picks the wrong interface).\n");
    fprintf(f, "export NCCL_DEBUG=WARN\n");
  }
  fprintf(f, "\n# Which run of the job this is: Slurm counts restarts when it requeues a job.\n");
  fprintf(f, "echo \"rcc-dist: Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST, restart "
             "${SLURM_RESTART_COUNT:-0}\"\n");
  fprintf(f, "\n");
  if (gpu)
    fprintf(f, "# One task per GPU, each seeing only its own GPU; the tasks find each other\n"
               "# through PMIx (MPI, then NCCL).\n");
  else
    fprintf(f,
            "# %d task%s per node, each bound to its own cores; the tasks find each other\n"
            "# through PMIx (MPI).\n",
            o->ntasks_per_node, o->ntasks_per_node == 1 ? "" : "s");
  fprintf(f, "# Re-running the same job resumes after its newest checkpoint, so a requeued\n"
             "# or re-submitted job goes on where the last run stopped.\n");
  fprintf(f, "srun --mpi=pmix%s ", gpu ? "" : " --cpu-bind=cores");
  put_word(f, o->binary);
  fputc(' ', f);
  put_word(f, o->job_path);
  fprintf(f, " --backend %s\n", gpu ? "cuda" : "cpu");
}

rcc_status_t rcc_sbatch_script(const rcc_sbatch_options_t *o, char **out) {
  *out = NULL;
  RCC_TRY(rcc_sbatch_check(o));
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return rcc_fail(RCC_ERR_NOMEM, "sbatch script: out of memory");
  write_script(o, f);
  if (fclose(f) != 0) {
    free(text);
    return rcc_fail(RCC_ERR_NOMEM, "sbatch script: out of memory");
  }
  *out = text;
  return RCC_OK;
}

/* True when `name` is an executable file in a folder of PATH. */
static bool on_path(const char *name) {
  const char *path = getenv("PATH");
  if (!path) return false;
  char buf[4096];
  for (const char *dir = path; *dir;) {
    size_t n = strcspn(dir, ":");
    if (snprintf(buf, sizeof buf, "%.*s/%s", (int)(n ? n : 1), n ? dir : ".", name) <
            (int)sizeof buf &&
        access(buf, X_OK) == 0)
      return true;
    dir += n + (dir[n] == ':');
  }
  return false;
}

rcc_status_t rcc_sbatch_submit(const char *script, char *id, size_t id_size) {
  if (!on_path("sbatch"))
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: cannot submit: no sbatch on PATH (run this on a Slurm login node, or "
                    "copy the script there and run `sbatch %s`)",
                    script, script);
  int fd[2];
  if (pipe(fd) != 0) return rcc_fail(RCC_ERR_IO, "%s: pipe: %s", script, strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    close(fd[0]);
    close(fd[1]);
    return rcc_fail(RCC_ERR_IO, "%s: fork: %s", script, strerror(errno));
  }
  if (pid == 0) {
    dup2(fd[1], STDOUT_FILENO);
    close(fd[0]);
    close(fd[1]);
    execlp("sbatch", "sbatch", "--parsable", script, (char *)NULL);
    _exit(127);
  }
  close(fd[1]);
  /* --parsable prints "JOBID" or "JOBID;CLUSTER" and a newline. */
  char out[256];
  size_t len = 0;
  ssize_t n;
  while ((n = read(fd[0], out + len, sizeof out - 1 - len)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) len += (size_t)n;
  close(fd[0]);
  out[len] = '\0';
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return rcc_fail(RCC_ERR_IO, "%s: waitpid: %s", script, strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return rcc_fail(RCC_ERR_IO,
                    "%s: sbatch --parsable failed (exit status %d; its message is above)", script,
                    WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  out[strcspn(out, ";\n")] = '\0';
  if (!*out || strspn(out, "0123456789_") != strlen(out) || strlen(out) >= id_size)
    return rcc_fail(RCC_ERR_FORMAT, "%s: sbatch --parsable printed '%s', not a job id", script,
                    out);
  memcpy(id, out, strlen(out) + 1);
  return RCC_OK;
}
