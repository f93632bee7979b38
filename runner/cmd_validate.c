/* `rcc-dist validate JOB.yaml...`: checks job files without loading any model. Prints
 * one "ok" line per valid file (with its stages), or every error of a file with its
 * source line and caret. Exit status: 0 all valid, 1 any invalid or unreadable, 2 usage. */
#include <getopt.h>
#include <stdio.h>

#include "jobs/job.h"
#include "runner/commands.h"

static const char validate_usage[] =
    "usage: rcc-dist validate JOB.yaml...\n"
    "\n"
    "Checks job files: YAML syntax, every key and value, and that `model:` (and\n"
    "`base_model:`) is a directory with config.json. Relative paths in a job are relative\n"
    "to the current directory. Loads no model.\n";

/* Prints "JOB.yaml: ok (3 stages: dare/sparsegpt, nullu/whitened, alphaedit/closed_form)". */
static void print_ok(const char *path, const rcc_job_t *job) {
  printf("%s: ok (%d stage%s", path, job->num_stages, job->num_stages == 1 ? "" : "s");
  if (job->num_stages == 0) printf(": evaluate only");
  for (int i = 0; i < job->num_stages; i++) {
    const rcc_stage_t *st = &job->stages[i];
    printf("%s%s/%s%s", i ? ", " : ": ", rcc_stage_kind_name(st->kind), rcc_stage_method_name(st),
           st->enabled ? "" : " (disabled)");
  }
  printf(")\n");
}

/* 0 when the file is valid; its errors go to stderr. */
static int validate_one(const char *path) {
  rcc_job_t *job;
  rcc_status_t st = rcc_job_load(path, &job);
  if (st == RCC_OK) {
    st = rcc_job_check_paths(job);
    if (st == RCC_OK) print_ok(path, job);
    rcc_job_free(job);
  }
  if (st != RCC_OK) {
    fputs(rcc_job_errors(), stderr);
    return 1;
  }
  return 0;
}

int rcc_cmd_validate(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'h') {
      fputs(validate_usage, stdout);
      return 0;
    }
    fputs(validate_usage, stderr);
    return 2;
  }
  if (optind >= argc) {
    fprintf(stderr, "rcc-dist: error: validate needs at least one job file\n%s", validate_usage);
    return 2;
  }
  int failed = 0;
  for (int i = optind; i < argc; i++)
    failed |= validate_one(argv[i]);
  return failed ? 1 : 0;
}
