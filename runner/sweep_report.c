/* The report of a sweep directory (runner/sweep_report.h): trials/K/result.json of every
 * trial -> one table with the Pareto front marked, repeat statistics, a gnuplot PNG and
 * the best trial's job file. */
#include "runner/sweep_report.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job_override.h"
#include "jobs/pareto.h"
#include "runner/spawn.h"
#include "runner/sweep_util.h"

enum { MAX_COLUMNS = 32 };

typedef struct {
  int task;
  char state[16];
  double compression, retention, seconds, score;
  bool feasible;
  cJSON *result; /* the whole result.json */
  cJSON *params; /* inside result */
} trial_t;

static double number(cJSON *o, const char *key) {
  cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int by_task(const void *a, const void *b) {
  return ((const trial_t *)a)->task - ((const trial_t *)b)->task;
}

/* Every trials/K/result.json that parses, sorted by K. */
static rcc_status_t load_trials(const char *dir, trial_t **out, int *count) {
  char path[4400];
  snprintf(path, sizeof path, "%s/trials", dir);
  DIR *d = opendir(path);
  if (!d) return rcc_fail(RCC_ERR_IO, "%s: not a sweep directory: %s", path, strerror(errno));
  trial_t *t = NULL;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    char *end;
    long k = strtol(e->d_name, &end, 10);
    if (!e->d_name[0] || *end || k < 0) continue;
    snprintf(path, sizeof path, "%s/trials/%s/result.json", dir, e->d_name);
    char *text = rcc_read_text(path);
    cJSON *r = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!r) continue;
    if (n == cap) {
      trial_t *g = realloc(t, (size_t)(cap = cap * 2 + 16) * sizeof *t);
      if (!g) {
        cJSON_Delete(r);
        break;
      }
      t = g;
    }
    trial_t *x = &t[n++];
    *x = (trial_t){.task = (int)k, .result = r};
    cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "state");
    snprintf(x->state, sizeof x->state, "%s", cJSON_IsString(st) ? st->valuestring : "?");
    x->params = cJSON_GetObjectItemCaseSensitive(r, "params");
    x->compression = number(r, "compression");
    x->retention = number(r, "retention");
    x->seconds = number(r, "seconds");
    x->score = number(r, "score");
    x->feasible = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "feasible"));
  }
  closedir(d);
  if (n == 0) {
    free(t);
    return rcc_fail(RCC_ERR_IO, "%s/trials: no trial has a result.json yet", dir);
  }
  qsort(t, (size_t)n, sizeof *t, by_task);
  *out = t;
  *count = n;
  return RCC_OK;
}

static bool complete(const trial_t *t) {
  return !strcmp(t->state, "complete") && isfinite(t->compression) && isfinite(t->retention);
}

/* A parameter value as the table shows it. */
static void value_text(cJSON *v, char *buf, size_t size) {
  if (cJSON_IsNumber(v))
    snprintf(buf, size, "%.4g", v->valuedouble);
  else if (cJSON_IsString(v))
    snprintf(buf, size, "%s", v->valuestring);
  else
    snprintf(buf, size, "-");
}

/* Column names: each path's last key, or the whole path where two last keys clash. */
static void column_names(const char **paths, int n, const char **names) {
  for (int i = 0; i < n; i++) {
    const char *dot = strrchr(paths[i], '.');
    names[i] = dot ? dot + 1 : paths[i];
  }
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++)
      if (i != j && !strcmp(names[i], names[j]) && names[i] != paths[i]) names[i] = paths[i];
}

static void print_fixed(FILE *out, double x, int width) {
  if (isfinite(x))
    fprintf(out, "  %*.4f", width, x);
  else
    fprintf(out, "  %*s", width, "-");
}

/* The table, one row per trial; front[] marks the Pareto front. */
static void print_table(FILE *out, const trial_t *t, int n, const bool *front, const char **paths,
                        int np) {
  const char *names[MAX_COLUMNS];
  int width[MAX_COLUMNS];
  column_names(paths, np, names);
  for (int j = 0; j < np; j++) {
    width[j] = (int)strlen(names[j]);
    for (int i = 0; i < n; i++) {
      char v[256];
      value_text(cJSON_GetObjectItemCaseSensitive(t[i].params, paths[j]), v, sizeof v);
      if ((int)strlen(v) > width[j]) width[j] = (int)strlen(v);
    }
  }
  fprintf(out, "%5s", "trial");
  for (int j = 0; j < np; j++)
    fprintf(out, "  %-*s", width[j], names[j]);
  fprintf(out, "  %11s  %9s  %8s  %8s  %-8s  %s\n", "compression", "retention", "score", "seconds",
          "state", "pareto");
  for (int i = 0; i < n; i++) {
    fprintf(out, "%5d", t[i].task);
    for (int j = 0; j < np; j++) {
      char v[256];
      value_text(cJSON_GetObjectItemCaseSensitive(t[i].params, paths[j]), v, sizeof v);
      fprintf(out, "  %-*s", width[j], v);
    }
    print_fixed(out, t[i].compression, 11);
    print_fixed(out, t[i].retention, 9);
    print_fixed(out, t[i].score, 8);
    if (isfinite(t[i].seconds))
      fprintf(out, "  %8.1f", t[i].seconds);
    else
      fprintf(out, "  %8s", "-");
    fprintf(out, "  %-8s  %s\n", t[i].state, front[i] ? "pareto" : "");
  }
  for (int j = 0; j < np; j++)
    if (names[j] != paths[j]) fprintf(out, "  %s = %s\n", names[j], paths[j]);
}

/* The configuration of a trial without its seed, as text: trials with equal keys are
 * repeats of one configuration. */
static void config_key(const trial_t *t, const char **paths, int np, char *buf, size_t size) {
  buf[0] = '\0';
  for (int j = 0; j < np; j++) {
    if (!strcmp(paths[j], "seed")) continue;
    char v[256];
    value_text(cJSON_GetObjectItemCaseSensitive(t->params, paths[j]), v, sizeof v);
    size_t used = strlen(buf);
    snprintf(buf + used, size - used, "%s%s", used ? "  " : "", v);
  }
}

/* Mean ± std and 95% CI of configurations that ran more than once (seeds). */
static void print_repeats(FILE *out, const trial_t *t, int n, const char **paths, int np) {
  bool has_seed = false;
  for (int j = 0; j < np; j++)
    has_seed |= !strcmp(paths[j], "seed");
  if (!has_seed) return;
  bool *done = calloc((size_t)n, sizeof *done);
  double *c = malloc((size_t)n * sizeof *c), *r = malloc((size_t)n * sizeof *r);
  if (!done || !c || !r) {
    free(done), free(c), free(r);
    return;
  }
  bool header = false;
  for (int i = 0; i < n; i++) {
    if (done[i] || !complete(&t[i])) continue;
    char key[2048], other[2048];
    config_key(&t[i], paths, np, key, sizeof key);
    int m = 0;
    for (int k = i; k < n; k++) {
      if (done[k] || !complete(&t[k])) continue;
      config_key(&t[k], paths, np, other, sizeof other);
      if (strcmp(key, other)) continue;
      done[k] = true;
      c[m] = t[k].compression;
      r[m++] = t[k].retention;
    }
    if (m < 2) continue;
    if (!header) {
      fprintf(out, "\nrepeats over seed (mean ± std, 95%% confidence interval of the mean):\n");
      header = true;
    }
    double cm, cs, cci, rm, rs, rci;
    rcc_mean_std_ci(c, m, &cm, &cs, &cci);
    rcc_mean_std_ci(r, m, &rm, &rs, &rci);
    fprintf(out,
            "  %s  n=%d  compression %.4f ± %.4f [%.4f, %.4f]  retention %.4f ± %.4f "
            "[%.4f, %.4f]\n",
            key[0] ? key : "(base)", m, cm, cs, cm - cci, cm + cci, rm, rs, rm - rci, rm + rci);
  }
  free(done), free(c), free(r);
}

/* SWEEP_DIR/pareto.gp (data inline) and, when gnuplot is there, SWEEP_DIR/pareto.png. */
static void plot(FILE *out, const char *dir, const trial_t *t, int n, const bool *front) {
  char gp[4400], png[4400];
  snprintf(gp, sizeof gp, "%s/pareto.gp", dir);
  snprintf(png, sizeof png, "%s/pareto.png", dir);
  FILE *f = fopen(gp, "w");
  if (!f) {
    fprintf(out, "note: cannot write %s: %s\n", gp, strerror(errno));
    return;
  }
  fprintf(f, "# Written by `rcc-dist report`: retention vs compression of the sweep's trials.\n"
             "$trials << EOD\n");
  for (int i = 0; i < n; i++)
    if (complete(&t[i])) fprintf(f, "%.6f %.6f %d\n", t[i].compression, t[i].retention, t[i].task);
  fprintf(f, "EOD\n$front << EOD\n");
  /* The front from low to high compression, so that its line does not zigzag. */
  bool *used = calloc((size_t)n, sizeof *used);
  for (int k = 0; used && k < n; k++) {
    int best = -1;
    for (int i = 0; i < n; i++)
      if (front[i] && !used[i] && (best < 0 || t[i].compression < t[best].compression)) best = i;
    if (best < 0) break;
    used[best] = true;
    fprintf(f, "%.6f %.6f %d\n", t[best].compression, t[best].retention, t[best].task);
  }
  free(used);
  fprintf(f,
          "EOD\n"
          "set terminal pngcairo size 800,600\n"
          "set output '%s'\n"
          "set title 'rcc-dist sweep: retention vs compression'\n"
          "set xlabel 'compression (fraction of parameters removed)'\n"
          "set ylabel 'retention (final metric / dense metric)'\n"
          "set key below\n"
          "set grid\n"
          "plot $trials using 1:2 with points pt 7 ps 1.2 title 'trials', \\\n"
          "     $trials using 1:2:3 with labels offset 1,0.6 notitle, \\\n"
          "     $front using 1:2 with linespoints lw 2 pt 6 ps 2 title 'Pareto front'\n",
          png);
  fclose(f);
  if (!rcc_have_program("gnuplot")) {
    fprintf(out,
            "note: gnuplot is not installed (apt-get install gnuplot-nox): no plot; "
            "the plot script is %s\n",
            gp);
    return;
  }
  char log[4400];
  snprintf(log, sizeof log, "%s/gnuplot.log", dir);
  char *argv[] = {"gnuplot", gp, NULL};
  rcc_spawn_opts_t o = {.out_path = log, .err_path = log};
  int rc = rcc_spawn(argv, &o);
  if (rc == 0)
    fprintf(out, "plot: %s\n", png);
  else
    fprintf(out, "note: gnuplot %s failed (exit status %d, see %s)\n", gp, rc, log);
}

/* SWEEP_DIR/best.yaml: the best trial's job, its output moved to SWEEP_DIR/best. */
static rcc_status_t write_best(FILE *out, const char *dir, const trial_t *t, int n) {
  int best = -1;
  for (int i = 0; i < n; i++)
    if (complete(&t[i]) && isfinite(t[i].score) && (best < 0 || t[i].score > t[best].score))
      best = i;
  if (best < 0) {
    fprintf(out, "no complete trial: no best.yaml\n");
    return RCC_OK;
  }
  char job[4400], path[4400], abs_dir[4096], run[4200];
  snprintf(job, sizeof job, "%s/trials/%d/job.yaml", dir, t[best].task);
  snprintf(path, sizeof path, "%s/best.yaml", dir);
  rcc_abs_path(dir, abs_dir, sizeof abs_dir);
  snprintf(run, sizeof run, "%s/best", abs_dir);
  char *text = rcc_read_text(job);
  if (!text) return rcc_fail(RCC_ERR_IO, "%s: cannot read: %s", job, strerror(errno));
  rcc_job_setting_t set = {"output", run};
  char *yaml = NULL;
  int bad;
  rcc_status_t st = rcc_job_override(job, text, strlen(text), &set, 1, &yaml, &bad);
  free(text);
  if (st == RCC_OK) {
    char *head = malloc(strlen(yaml) + 512);
    if (!head)
      st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
    else {
      sprintf(head,
              "# The best trial of the sweep in %s: trial %d (score %.4f, compression "
              "%.4f, retention %.4f%s).\n%s",
              dir, t[best].task, t[best].score, t[best].compression, t[best].retention,
              t[best].feasible ? "" : "; breaks a constraint: no trial kept them all", yaml);
      st = rcc_write_text(path, head);
      free(head);
    }
  }
  free(yaml);
  if (st == RCC_OK)
    fprintf(out, "best: trial %d (score %.4f, compression %.4f, retention %.4f) -> %s\n",
            t[best].task, t[best].score, t[best].compression, t[best].retention, path);
  return st;
}

rcc_status_t rcc_sweep_report(const char *dir, FILE *out) {
  trial_t *t = NULL;
  int n = 0;
  rcc_status_t st = load_trials(dir, &t, &n);
  if (st != RCC_OK) return st;
  const char *paths[MAX_COLUMNS];
  int np = 0;
  for (int i = 0; i < n; i++)
    for (cJSON *p = t[i].params ? t[i].params->child : NULL; p && np < MAX_COLUMNS; p = p->next) {
      bool seen = false;
      for (int j = 0; j < np; j++)
        seen |= !strcmp(paths[j], p->string);
      if (!seen) paths[np++] = p->string;
    }
  double *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
  bool *valid = malloc((size_t)n * sizeof *valid), *front = malloc((size_t)n * sizeof *front);
  if (!x || !y || !valid || !front) {
    st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", dir);
  } else {
    int done = 0;
    for (int i = 0; i < n; i++) {
      x[i] = t[i].compression;
      y[i] = t[i].retention;
      valid[i] = complete(&t[i]);
      done += valid[i];
    }
    rcc_pareto_front(x, y, valid, n, front);
    fprintf(out, "sweep %s: %d trial%s, %d complete\n\n", dir, n, n == 1 ? "" : "s", done);
    print_table(out, t, n, front, paths, np);
    print_repeats(out, t, n, paths, np);
    fputc('\n', out);
    plot(out, dir, t, n, front);
    st = write_best(out, dir, t, n);
  }
  free(x), free(y), free(valid), free(front);
  for (int i = 0; i < n; i++)
    cJSON_Delete(t[i].result);
  free(t);
  return st;
}
