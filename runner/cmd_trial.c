/* `rcc-dist trial SWEEP.yaml --task K`: one trial of a sweep, as one Slurm array task or
 * one of `rcc-dist sweep --local`'s children. It asks the sampler for parameters, writes
 * SWEEP_DIR/trials/K/{job.yaml,params.json}, runs the job in a child rcc-dist (so that a
 * crash of the job is a failed trial, not a lost one), tells the result to the sampler and
 * writes SWEEP_DIR/trials/K/result.json. It exits 0 whenever result.json was written, a
 * failed trial included, so that no trial blocks the sweep. */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_override.h"
#include "jobs/sampler.h"
#include "runner/commands.h"
#include "runner/optuna.h"
#include "runner/spawn.h"
#include "runner/sweep_util.h"

static const char trial_usage[] =
    "usage: rcc-dist trial SWEEP.yaml [--task K] [--sampler NAME] [--trials N] [--output DIR]\n"
    "\n"
    "Runs trial K of a sweep (K defaults to $SLURM_ARRAY_TASK_ID) into SWEEP_DIR/trials/K:\n"
    "job.yaml, params.json, run/ (the job's run directory), trial.log and result.json.\n"
    "A trial whose result.json says complete is not run again. `rcc-dist sweep` starts\n"
    "trials; the flags must match the ones given to it.\n";

/* Settings of a trial's job beyond the sampled parameters: output, seed, absolute paths. */
enum { EXTRA_SETTINGS = 4 };

static bool in_space(const rcc_sweep_t *s, const char *path) {
  for (int i = 0; i < s->num_params; i++)
    if (!strcmp(s->params[i].path, path)) return true;
  return false;
}

/* The base job's model paths made absolute, so that the trial's job.yaml (and best.yaml)
 * works from any directory; relative data specs stay relative to where the sweep runs,
 * and a model path that the sweep varies is used as the space gives it. */
static int absolute_paths(const rcc_sweep_t *s, rcc_job_setting_t *set, char bufs[][4200]) {
  rcc_job_t *job = NULL;
  int n = 0;
  if (rcc_job_parse(s->base, s->base_text, s->base_len, &job) != RCC_OK) return 0;
  if (job->model[0] != '/' && !in_space(s, "model")) {
    rcc_abs_path(job->model, bufs[n], sizeof bufs[n]);
    set[n] = (rcc_job_setting_t){"model", bufs[n]};
    n++;
  }
  if (job->base_model && job->base_model[0] != '/' && !in_space(s, "base_model")) {
    rcc_abs_path(job->base_model, bufs[n], sizeof bufs[n]);
    set[n] = (rcc_job_setting_t){"base_model", bufs[n]};
    n++;
  }
  rcc_job_free(job);
  return n;
}

/* The "final" numbers of the run's report.json; false when there is none. */
static bool read_final(const char *run_dir, double metrics[RCC_NUM_METRICS], double *seconds) {
  char path[4500];
  snprintf(path, sizeof path, "%s/report.json", run_dir);
  char *text = rcc_read_text(path);
  cJSON *o = text ? cJSON_Parse(text) : NULL;
  free(text);
  cJSON *fin = cJSON_GetObjectItemCaseSensitive(o, "final");
  static const char *const keys[RCC_NUM_METRICS] = {"retention", "compression", "metric"};
  bool ok = fin != NULL;
  for (int m = 0; ok && m < RCC_NUM_METRICS; m++) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(fin, keys[m]);
    ok = cJSON_IsNumber(v);
    if (ok) metrics[m] = v->valuedouble;
  }
  cJSON *sec = cJSON_GetObjectItemCaseSensitive(fin, "seconds");
  *seconds = cJSON_IsNumber(sec) ? sec->valuedouble : NAN;
  cJSON_Delete(o);
  return ok;
}

static void add_param(cJSON *params, const rcc_sweep_param_t *p, const char *text,
                      const rcc_param_value_t *v) {
  if (p->kind == RCC_PARAM_CHOICE)
    cJSON_AddStringToObject(params, p->path, text);
  else
    cJSON_AddNumberToObject(params, p->path, v->x);
}

static void add_metric(cJSON *o, const char *key, double x) {
  if (isfinite(x))
    cJSON_AddNumberToObject(o, key, x);
  else
    cJSON_AddNullToObject(o, key);
}

static int already_done(const char *result_path, int task) {
  char *text = rcc_read_text(result_path);
  cJSON *o = text ? cJSON_Parse(text) : NULL;
  free(text);
  cJSON *state = cJSON_GetObjectItemCaseSensitive(o, "state");
  int done = cJSON_IsString(state) && !strcmp(state->valuestring, "complete");
  if (done) printf("trial %d: complete already (%s)\n", task, result_path);
  cJSON_Delete(o);
  return done;
}

/* Runs trial `task` of sweep `s`; the sweep directory is absolute. */
static int run_trial(const rcc_sweep_t *s, const char *sweep_dir, int task) {
  char dir[4300], path[4400], run_dir[4400], result_path[4400];
  snprintf(dir, sizeof dir, "%s/trials/%d", sweep_dir, task);
  snprintf(result_path, sizeof result_path, "%s/result.json", dir);
  snprintf(run_dir, sizeof run_dir, "%s/run", dir);
  if (rcc_mkdirs(dir) != RCC_OK) return rcc_cmd_report_error();
  if (already_done(result_path, task)) return 0;

  int config = task / s->repeats, repeat = task % s->repeats, number = -1;
  rcc_param_value_t *values = calloc((size_t)s->num_params, sizeof *values);
  rcc_job_setting_t *set = calloc((size_t)s->num_params + EXTRA_SETTINGS, sizeof *set);
  char(*texts)[1024] = calloc((size_t)s->num_params, sizeof *texts);
  if (!values || !set || !texts) {
    free(values), free(set), free(texts);
    return rcc_fail(RCC_ERR_NOMEM, "trial %d: out of memory", task), rcc_cmd_report_error();
  }
  rcc_status_t st = RCC_OK;
  switch (s->sampler) {
  case RCC_SAMPLER_GRID: rcc_sampler_grid(s, config, values); break;
  case RCC_SAMPLER_RANDOM: rcc_sampler_random(s, config, values); break;
  case RCC_SAMPLER_OPTUNA:
    st = rcc_optuna_check();
    if (st == RCC_OK) st = rcc_optuna_create(sweep_dir);
    if (st == RCC_OK) st = rcc_optuna_ask(s, sweep_dir, task, &number, values);
    break;
  }
  if (st != RCC_OK) {
    free(values), free(set), free(texts);
    return rcc_cmd_report_error();
  }

  cJSON *params = cJSON_CreateObject();
  int n = 0;
  for (int i = 0; i < s->num_params; i++) {
    rcc_param_value_text(&s->params[i], &values[i], texts[i], sizeof texts[i]);
    set[n++] = (rcc_job_setting_t){s->params[i].path, texts[i]};
    add_param(params, &s->params[i], texts[i], &values[i]);
  }
  char seed[32], abs_bufs[2][4200];
  if (s->repeats > 1) {
    snprintf(seed, sizeof seed, "%lld", (long long)(s->seed + repeat));
    set[n++] = (rcc_job_setting_t){"seed", seed};
    cJSON_AddNumberToObject(params, "seed", (double)(s->seed + repeat));
  }
  set[n++] = (rcc_job_setting_t){"output", run_dir};
  n += absolute_paths(s, set + n, abs_bufs);

  char *yaml = NULL, *params_text = cJSON_Print(params);
  int bad;
  snprintf(path, sizeof path, "%s/job.yaml", dir);
  st = rcc_job_override(s->base, s->base_text, s->base_len, set, n, &yaml, &bad);
  if (st == RCC_OK) st = rcc_write_text(path, yaml);
  free(yaml);
  snprintf(path, sizeof path, "%s/params.json", dir);
  if (st == RCC_OK && params_text) st = rcc_write_text(path, params_text);
  free(params_text);

  /* The job runs as one plain process: an array task's srun may have set an MPI
   * launcher's variables, which would make the child wait for ranks that never come. */
  static const char *const mpi_vars[] = {"PMIX_RANK", "PMI_RANK", "PMI_SIZE",
                                         "OMPI_COMM_WORLD_SIZE", NULL};
  int rc = -1;
  char log[4400];
  snprintf(log, sizeof log, "%s/trial.log", dir);
  snprintf(path, sizeof path, "%s/job.yaml", dir);
  if (st == RCC_OK) {
    char *argv[] = {(char *)rcc_self_exe(), path, NULL};
    rcc_spawn_opts_t o = {.out_path = log, .err_path = log, .unset = mpi_vars};
    rc = rcc_spawn(argv, &o);
  }
  double metrics[RCC_NUM_METRICS] = {NAN, NAN, NAN}, seconds = NAN, score = NAN;
  bool feasible = false;
  const char *state = rc == 0 && read_final(run_dir, metrics, &seconds) ? "complete" : "fail";
  if (!strcmp(state, "complete")) score = rcc_objective_score(&s->objective, metrics, &feasible);
  if (number >= 0) {
    rcc_status_t told = rcc_optuna_tell(sweep_dir, number, state, score);
    if (told != RCC_OK)
      fprintf(stderr, "rcc-dist: warning: trial %d: %s\n", task, rcc_last_error());
  }

  cJSON *r = cJSON_CreateObject();
  cJSON_AddNumberToObject(r, "task", task);
  cJSON_AddNumberToObject(r, "config", config);
  cJSON_AddNumberToObject(r, "repeat", repeat);
  cJSON_AddStringToObject(r, "sampler", rcc_sampler_names[s->sampler]);
  if (number >= 0) cJSON_AddNumberToObject(r, "optuna_trial", number);
  cJSON_AddStringToObject(r, "state", state);
  cJSON_AddNumberToObject(r, "exit_status", rc);
  if (st != RCC_OK) cJSON_AddStringToObject(r, "error", rcc_last_error());
  cJSON_AddItemToObject(r, "params", params);
  add_metric(r, "compression", metrics[RCC_METRIC_COMPRESSION]);
  add_metric(r, "retention", metrics[RCC_METRIC_RETENTION]);
  add_metric(r, "metric", metrics[RCC_METRIC_TOP1]);
  add_metric(r, "seconds", seconds);
  add_metric(r, "score", score);
  cJSON_AddBoolToObject(r, "feasible", feasible);
  char *text = cJSON_Print(r);
  cJSON_Delete(r);
  rcc_status_t wrote = text ? rcc_write_text(result_path, text) : RCC_ERR_NOMEM;
  free(text);
  free(values), free(set), free(texts);
  if (wrote != RCC_OK) return rcc_cmd_report_error();
  if (!strcmp(state, "complete"))
    printf("trial %d: complete  compression %.4f  retention %.4f  score %.4f  (%.1f s)\n", task,
           metrics[RCC_METRIC_COMPRESSION], metrics[RCC_METRIC_RETENTION], score, seconds);
  else
    printf("trial %d: fail (exit status %d; see %s)\n", task, rc, log);
  return 0;
}

int rcc_cmd_trial(int argc, char **argv) {
  static const struct option opts[] = {
      {"task", required_argument, 0, 'k'},   {"sampler", required_argument, 0, 's'},
      {"trials", required_argument, 0, 'n'}, {"output", required_argument, 0, 'o'},
      {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
  rcc_sweep_overrides_t ov = {0};
  const char *task_text = getenv("SLURM_ARRAY_TASK_ID");
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'k': task_text = optarg; break;
    case 's': ov.sampler = optarg; break;
    case 'o': ov.output = optarg; break;
    case 'n':
      if ((ov.trials = rcc_cmd_parse_positive("--trials", optarg)) < 0) return 2;
      break;
    case 'h': fputs(trial_usage, stdout); return 0;
    default: fputs(trial_usage, stderr); return 2;
    }
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: expected exactly one sweep file\n%s", trial_usage);
    return 2;
  }
  char *end = NULL;
  long task = task_text ? strtol(task_text, &end, 10) : -1;
  if (!task_text || !*task_text || *end || task < 0 || task > 1000000) {
    fprintf(stderr, "rcc-dist: error: trial needs --task K (or SLURM_ARRAY_TASK_ID), got '%s'\n",
            task_text ? task_text : "nothing");
    return 2;
  }
  rcc_sweep_t *s = NULL;
  if (rcc_sweep_load(argv[optind], &ov, &s) != RCC_OK) {
    fprintf(stderr, "%s\n", rcc_sweep_errors()[0] ? rcc_sweep_errors() : rcc_last_error());
    return 1;
  }
  if (task >= s->trials) {
    fprintf(stderr, "rcc-dist: error: task %ld is past the sweep's %d trials (0 to %d)\n", task,
            s->trials, s->trials - 1);
    rcc_sweep_free(s);
    return 2;
  }
  char sweep_dir[4096];
  rcc_abs_path(s->output, sweep_dir, sizeof sweep_dir);
  int rc = run_trial(s, sweep_dir, (int)task);
  rcc_sweep_free(s);
  return rc;
}
