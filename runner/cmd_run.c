/* `rcc-dist JOB.yaml`: runs a compression job into its run directory (`output:`). */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "runner/cascade.h"
#include "runner/commands.h"

static const char run_usage[] =
    "usage: rcc-dist JOB.yaml [--fresh] [--backend NAME] [--threads N]\n"
    "\n"
    "Runs the cascade of JOB.yaml (see examples/README.md) and writes its run directory:\n"
    "report.json, report.md, log.txt, checkpoints/, compressed/, packed.safetensors.\n"
    "Re-running the same job resumes after its newest valid checkpoint.\n"
    "  --fresh          discard the run's checkpoints and start over\n"
    "  --backend NAME   overrides the job's backend (cpu | cuda | cuda:N | auto)\n"
    "  --threads N      overrides the job's threads\n";

/* mkdir -p for the run directory. */
static rcc_status_t make_dirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return rcc_fail(RCC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    *p = '/';
  }
  if (mkdir(buf, 0755) != 0 && errno != EEXIST)
    return rcc_fail(RCC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
  return RCC_OK;
}

/* SIGTERM (Slurm's time limit, scancel, mpirun forwarding ^C) and SIGINT end a run at once;
 * rank 0 first says what is kept and how to go on. The message is formatted before the
 * handler is installed: in the handler only write() and raise() are async-signal-safe. */
static char interrupted_message[4400];
static size_t interrupted_length;

static void on_termination(int sig) {
  if (write(STDERR_FILENO, interrupted_message, interrupted_length) < 0) {
    /* nothing more can be done about a lost message while the process ends */
  }
  signal(sig, SIG_DFL);
  raise(sig);
}

static void say_on_termination(const rcc_job_t *job) {
  int n = snprintf(interrupted_message, sizeof interrupted_message,
                   "\nrcc-dist: interrupted: the committed stages are kept in %s/checkpoints; "
                   "run the same command again to resume after the last one\n",
                   job->output);
  if (n < 0) n = 0;
  interrupted_length = (size_t)n < sizeof interrupted_message ? (size_t)n
                                                              : sizeof interrupted_message - 1;
  struct sigaction sa = {.sa_handler = on_termination};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int rcc_cmd_run(int argc, char **argv) {
  static const struct option opts[] = {{"backend", required_argument, 0, 'B'},
                                       {"threads", required_argument, 0, 'T'},
                                       {"fresh", no_argument, 0, 'f'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *backend = NULL;
  int threads = -1, fresh = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'B': backend = optarg; break;
    case 'f': fresh = 1; break;
    case 'T':
      if ((threads = rcc_cmd_parse_positive("--threads", optarg)) < 0) return 2;
      break;
    case 'h': fputs(run_usage, stdout); return 0;
    default: fputs(run_usage, stderr); return 2;
    }
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: expected exactly one job file\n%s", run_usage);
    return 2;
  }
  rcc_job_t *job = NULL;
  if (rcc_job_load(argv[optind], &job) != RCC_OK || rcc_job_check_paths(job) != RCC_OK) {
    fprintf(stderr, "%s", rcc_job_errors()[0] ? rcc_job_errors() : rcc_last_error());
    fputc('\n', stderr);
    rcc_job_free(job);
    return 1;
  }
  rcc_session_t s;
  if (rcc_session_open(&s, &argc, &argv, backend ? backend : job->backend,
                       threads >= 0 ? threads : job->threads) != RCC_OK) {
    rcc_job_free(job);
    return rcc_cmd_report_error();
  }
  FILE *log = NULL;
  rcc_status_t st = RCC_OK;
  if (rcc_comm_rank(s.comm) == 0) {
    st = make_dirs(job->output);
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoints", job->output);
    if (st == RCC_OK) st = make_dirs(path);
    snprintf(path, sizeof path, "%s/log.txt", job->output);
    if (st == RCC_OK && !(log = fopen(path, "a")))
      st = rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    rcc_log_set_file(log);
    say_on_termination(job);
  }
  if (st == RCC_OK) {
    RCC_INFO("job %s (sha256 %s): %d stage%s, backend %s, %d rank%s", job->path, job->sha256_hex,
             job->num_stages, job->num_stages == 1 ? "" : "s", rcc_backend_describe(s.backend),
             rcc_comm_size(s.comm), rcc_comm_size(s.comm) == 1 ? "" : "s");
    st = rcc_session_log_placement(&s);
  }
  if (st == RCC_OK) st = rcc_cascade_run(job, &s, fresh);
  int rc = 0;
  if (st != RCC_OK) {
    if (rcc_comm_size(s.comm) > 1 && st != RCC_ERR_NUMERIC) {
      char why[2300];
      snprintf(why, sizeof why, "job failed: %s", rcc_last_error());
      rcc_comm_abort(s.comm, 1, why);
    }
    RCC_ERROR("%s", rcc_last_error());
    rc = st == RCC_ERR_NUMERIC ? 3 : 1;
  }
  rcc_log_set_file(NULL);
  if (log) fclose(log);
  rcc_session_close(&s);
  rcc_job_free(job);
  return rc;
}
