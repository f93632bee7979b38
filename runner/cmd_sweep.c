/* `rcc-dist sweep SWEEP.yaml`: checks a sweep file, then either writes (and with --submit
 * submits) one Slurm job array whose task K runs `rcc-dist trial SWEEP.yaml --task K`, or
 * with --local P runs those same trials here, P at a time. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jobs/sampler.h"
#include "runner/commands.h"
#include "runner/optuna.h"
#include "runner/spawn.h"
#include "runner/sweep_util.h"

static const char sweep_usage[] =
    "usage: rcc-dist sweep SWEEP.yaml [--submit | --local P] [--sampler NAME] [--trials N]\n"
    "                      [--output DIR] [--partition P] [--time T] [--account A]\n"
    "\n"
    "Checks the sweep file (docs/SWEEPS.md), then writes SWEEP_DIR/sweep.sbatch, one Slurm\n"
    "job array with a task per trial (--array=0-(N-1)%P), and prints its path.\n"
    "  --submit          also submit it with `sbatch --parsable` and print the job id\n"
    "  --local P         instead run the trials here, P at a time (no Slurm)\n"
    "  --sampler NAME    grid | random | optuna (overrides the file's sampler)\n"
    "  --trials N        overrides the file's trials\n"
    "  --output DIR      overrides the file's output (the sweep directory)\n"
    "  --partition P, --time T, --account A   #SBATCH lines of the array\n"
    "Afterwards `rcc-dist report SWEEP_DIR` gathers the results.\n";

/* The trial command line every task runs: the same overrides as this command. */
typedef struct {
  const char *sweep; /* absolute */
  const char *sampler;
  char trials[16];
  const char *output; /* absolute */
} trial_args_t;

static int trial_argv(const trial_args_t *t, const char *task, char **argv) {
  int n = 0;
  argv[n++] = (char *)rcc_self_exe();
  argv[n++] = "trial";
  argv[n++] = (char *)t->sweep;
  argv[n++] = "--task";
  argv[n++] = (char *)task;
  argv[n++] = "--output";
  argv[n++] = (char *)t->output;
  if (t->sampler) argv[n++] = "--sampler", argv[n++] = (char *)t->sampler;
  if (t->trials[0]) argv[n++] = "--trials", argv[n++] = (char *)t->trials;
  argv[n] = NULL;
  return n;
}

/* A word for a bash script: single-quoted unless it is plainly safe. */
static void shell_word(FILE *f, const char *w) {
  if (w[strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./=:,+%@")]) {
    fputc('\'', f);
    for (const char *p = w; *p; p++)
      if (*p == '\'')
        fputs("'\\''", f);
      else
        fputc(*p, f);
    fputc('\'', f);
  } else {
    fputs(w, f);
  }
}

typedef struct {
  const char *partition, *time, *account;
} slurm_flags_t;

static rcc_status_t write_script(const rcc_sweep_t *s, const trial_args_t *t,
                                 const slurm_flags_t *sf, const char *path) {
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) return rcc_fail(RCC_ERR_IO, "getcwd: %s", strerror(errno));
  FILE *f = fopen(path, "w");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  int par = s->parallelism < s->trials ? s->parallelism : s->trials;
  fprintf(f,
          "#!/bin/bash\n"
          "# Written by `rcc-dist sweep` for the sweep file\n"
          "#   %s\n"
          "# One array task per trial, at most %d at a time: task K runs trial K (sampler %s)\n"
          "# into %s/trials/K. Afterwards: rcc-dist report %s\n",
          t->sweep, par, rcc_sampler_names[s->sampler], t->output, t->output);
  fprintf(f, "#SBATCH --job-name=rcc-sweep\n");
  fprintf(f, "#SBATCH --array=0-%d%%%d\n", s->trials - 1, par);
  fprintf(f, "#SBATCH --ntasks=1\n");
  fprintf(f, "#SBATCH --output=%s/trials/slurm-%%A_%%a.out\n", t->output);
  /* Relative paths of the base job (model, datasets) are relative to this directory. */
  fprintf(f, "#SBATCH --chdir=%s\n", cwd);
  /* A requeued task runs its trial again; a trial already complete is skipped. */
  fprintf(f, "#SBATCH --requeue\n");
  if (sf->partition) fprintf(f, "#SBATCH --partition=%s\n", sf->partition);
  if (sf->time) fprintf(f, "#SBATCH --time=%s\n", sf->time);
  if (sf->account) fprintf(f, "#SBATCH --account=%s\n", sf->account);
  fprintf(f, "\nsrun");
  char *argv[16];
  trial_argv(t, "$SLURM_ARRAY_TASK_ID", argv);
  for (int i = 0; argv[i]; i++) {
    fputc(' ', f);
    if (!strcmp(argv[i], "$SLURM_ARRAY_TASK_ID"))
      fputs("\"$SLURM_ARRAY_TASK_ID\"", f);
    else
      shell_word(f, argv[i]);
  }
  fputc('\n', f);
  if (fclose(f) != 0) return rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return RCC_OK;
}

/* Runs the trials as children of this process, at most p at a time. Returns how many
 * trial processes failed to record a result. */
static int run_local(const rcc_sweep_t *s, const trial_args_t *t, int p) {
  int next = 0, running = 0, failed = 0;
  while (next < s->trials || running > 0) {
    if (next < s->trials && running < p) {
      char task[16], *argv[16];
      snprintf(task, sizeof task, "%d", next++);
      trial_argv(t, task, argv);
      fflush(stdout);
      fflush(stderr);
      pid_t pid = fork();
      if (pid == 0) {
        execv(argv[0], argv);
        _exit(127);
      }
      if (pid < 0)
        failed++;
      else
        running++;
      continue;
    }
    int status;
    if (wait(&status) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    running--;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) failed++;
  }
  return failed;
}

int rcc_cmd_sweep(int argc, char **argv) {
  enum { SUBMIT = 1, LOCAL, SAMPLER, TRIALS, OUTPUT, PARTITION, TIME, ACCOUNT, HELP };
  static const struct option opts[] = {{"submit", no_argument, 0, SUBMIT},
                                       {"local", required_argument, 0, LOCAL},
                                       {"sampler", required_argument, 0, SAMPLER},
                                       {"trials", required_argument, 0, TRIALS},
                                       {"output", required_argument, 0, OUTPUT},
                                       {"partition", required_argument, 0, PARTITION},
                                       {"time", required_argument, 0, TIME},
                                       {"account", required_argument, 0, ACCOUNT},
                                       {"help", no_argument, 0, HELP},
                                       {0, 0, 0, 0}};
  rcc_sweep_overrides_t ov = {0};
  slurm_flags_t sf = {0};
  int submit = 0, local = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case SUBMIT: submit = 1; break;
    case LOCAL:
      if ((local = rcc_cmd_parse_positive("--local", optarg)) < 0) return 2;
      break;
    case SAMPLER: ov.sampler = optarg; break;
    case TRIALS:
      if ((ov.trials = rcc_cmd_parse_positive("--trials", optarg)) < 0) return 2;
      break;
    case OUTPUT: ov.output = optarg; break;
    case PARTITION: sf.partition = optarg; break;
    case TIME: sf.time = optarg; break;
    case ACCOUNT: sf.account = optarg; break;
    case HELP: fputs(sweep_usage, stdout); return 0;
    default: fputs(sweep_usage, stderr); return 2;
    }
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: expected exactly one sweep file\n%s", sweep_usage);
    return 2;
  }
  if (submit && local) {
    fprintf(stderr, "rcc-dist: error: --submit and --local exclude each other\n");
    return 2;
  }
  rcc_sweep_t *s = NULL;
  if (rcc_sweep_load(argv[optind], &ov, &s) != RCC_OK) {
    fprintf(stderr, "%s\n", rcc_sweep_errors()[0] ? rcc_sweep_errors() : rcc_last_error());
    return 1;
  }
  char sweep_path[4096], out_dir[4096], trials_dir[4200], script[4200];
  rcc_abs_path(argv[optind], sweep_path, sizeof sweep_path);
  rcc_abs_path(s->output, out_dir, sizeof out_dir);
  trial_args_t t = {.sweep = sweep_path, .sampler = ov.sampler, .output = out_dir};
  if (ov.trials) snprintf(t.trials, sizeof t.trials, "%d", ov.trials);
  snprintf(trials_dir, sizeof trials_dir, "%s/trials", out_dir);
  rcc_status_t st = s->sampler == RCC_SAMPLER_OPTUNA ? rcc_optuna_check() : RCC_OK;
  if (st == RCC_OK) st = rcc_mkdirs(trials_dir);
  if (st == RCC_OK && s->sampler == RCC_SAMPLER_OPTUNA) st = rcc_optuna_create(out_dir);
  if (st != RCC_OK) {
    rcc_sweep_free(s);
    return rcc_cmd_report_error();
  }
  int64_t configs = (int64_t)s->trials / s->repeats + (s->trials % s->repeats != 0);
  if (s->sampler == RCC_SAMPLER_GRID && configs > rcc_sampler_grid_size(s))
    fprintf(stderr, "rcc-dist: note: %d trials but the grid has %lld points: points repeat\n",
            s->trials, (long long)rcc_sampler_grid_size(s));
  int rc = 0;
  if (local) {
    printf("sweep %s: %d trials (%s), %d at a time, into %s\n", s->path, s->trials,
           rcc_sampler_names[s->sampler], local, out_dir);
    int failed = run_local(s, &t, local);
    if (failed) {
      fprintf(stderr, "rcc-dist: error: %d trial%s recorded no result (see %s/trials)\n", failed,
              failed == 1 ? "" : "s", out_dir);
      rc = 1;
    }
    printf("done: rcc-dist report %s\n", out_dir);
  } else {
    snprintf(script, sizeof script, "%s/sweep.sbatch", out_dir);
    st = write_script(s, &t, &sf, script);
    if (st == RCC_OK) printf("%s\n", script);
    if (st == RCC_OK && submit) {
      char *id = NULL, *sargv[] = {"sbatch", "--parsable", script, NULL};
      rcc_spawn_opts_t o = {.capture = &id};
      int src = rcc_have_program("sbatch") ? rcc_spawn(sargv, &o) : 127;
      if (src != 0 || !id || !id[0])
        st = rcc_fail(src == 127 ? RCC_ERR_UNSUPPORTED : RCC_ERR_IO,
                      "sbatch --parsable %s failed (exit status %d%s)", script, src,
                      src == 127 ? ": no sbatch on PATH" : "");
      else
        printf("%.*s\n", (int)strcspn(id, ";\n"), id); /* "ID" or "ID;CLUSTER" */
      free(id);
    }
    if (st != RCC_OK) rc = rcc_cmd_report_error();
  }
  rcc_sweep_free(s);
  return rc;
}
