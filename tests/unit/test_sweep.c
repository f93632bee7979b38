/* Sweeps without running jobs: sweep files fail with the exact file:line:col; job key
 * paths set nested keys, list items, new last keys and stage orders; the grid sampler
 * covers its grid and wraps; the random sampler is deterministic, in bounds and spread;
 * objective scores with constraints; the Pareto front of a hand-made set; mean, std and
 * 95% CI against hand-computed values. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job.h"
#include "jobs/job_override.h"
#include "jobs/pareto.h"
#include "jobs/sampler.h"
#include "jobs/sweep.h"
#include "tests/harness.h"

static const char base_job[] =
    "model: models/clip-fmnist\n"
    "output: runs/x\n"
    "data: {calibration: fmnist:train, validation: fmnist:test, validation_samples: 100}\n"
    "cascade:\n"
    "  stages:\n"
    "    - name: dare\n"
    "      config: {method: wanda, target_sparsity: 0.5}\n"
    "    - name: nullu\n"
    "      config: {method: residual, energy_threshold: 0.9}\n"
    "    - name: alphaedit\n"
    "      config: {method: closed_form}\n";

/* The sweep file's path in the scratch directory, next to base.yaml. */
static const char *sweep_path(void) {
  static char path[4200];
  if (!path[0]) {
    char base[4200];
    snprintf(base, sizeof base, "%s/base.yaml", rcc_scratch_dir());
    FILE *f = fopen(base, "w");
    assert_non_null(f);
    fputs(base_job, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/sweep.yaml", rcc_scratch_dir());
  }
  return path;
}

static rcc_sweep_t *parse(const char *text) {
  rcc_sweep_t *s = NULL;
  if (rcc_sweep_parse(sweep_path(), text, strlen(text), NULL, &s) != RCC_OK)
    fail_msg("sweep refused:\n%s", rcc_sweep_errors());
  return s;
}

/* The sweep must fail, and its messages contain "sweep.yaml:LINE:COL: error: WANT". */
static void expect_error(const char *text, const char *where_what) {
  rcc_sweep_t *s = NULL;
  assert_int_equal(rcc_sweep_parse(sweep_path(), text, strlen(text), NULL, &s), RCC_ERR_ARG);
  assert_null(s);
  char want[8192];
  snprintf(want, sizeof want, "%s:%s", sweep_path(), where_what);
  if (!strstr(rcc_sweep_errors(), want)) fail_msg("want '%s' in:\n%s", want, rcc_sweep_errors());
}

static void test_parse_errors(void **state) {
  (void)state;
  expect_error("base: base.yaml\noutput: o\nspace:\n  seed: {low: 1, high: 3}\nsampler: gird\n",
               "5:10: error: sampler: unknown value 'gird' (did you mean 'grid'?)");
  expect_error("base: base.yaml\noutput: o\nspace:\n  cascade.stages[0].config.target_sparsity:"
               " {low: 0.8, high: 0.2}\n",
               "4:51: error: low (0.8) is above high (0.2)");
  expect_error("base: base.yaml\noutput: o\nspace:\n  seed: {choices: []}\n",
               "4:19: error: choices is empty");
  expect_error("base: base.yaml\noutput: o\nspace:\n  data.validaton_samples: {low: 10, high: "
               "20, type: int}\n",
               "4:3: error: data.validaton_samples = 10: the base job refuses it: unknown key "
               "'validaton_samples'");
  expect_error("base: base.yaml\noutput: o\nspace:\n  cascade.stages[3].config.x: {low: 0, high: "
               "1}\n",
               "4:3: error: cascade.stages[3].config.x: index 3 is past the end of "
               "cascade.stages (3 items)");
  expect_error("base: base.yaml\noutput: o\nspace:\n  data.calibraton.x: {low: 0, high: 1}\n",
               "4:3: error: data.calibraton.x: no key 'calibraton' in data (did you mean "
               "'calibration'?)");
  expect_error("base: base.yaml\noutput: o\nspace:\n  seed: {low: 0, high: 1, log: true}\n",
               "4:32: error: log: true needs low > 0 (low is 0)");
  expect_error("base: missing.yaml\noutput: o\nspace:\n  seed: {low: 0, high: 1}\n",
               "1:7: error: cannot open base job");
  expect_error("output: o\nspace:\n  seed: {low: 0, high: 1}\n", "1:1: error: missing key 'base'");
}

static void test_parse_good(void **state) {
  (void)state;
  rcc_sweep_t *s = parse("base: base.yaml\n"
                         "output: out\n"
                         "space:\n"
                         "  cascade.stages[0].config.target_sparsity: {low: 0.3, high: 0.9}\n"
                         "  cascade.order: {choices: [[dare, nullu], [nullu]]}\n"
                         "objective:\n"
                         "  weighted_product: {retention: 2, compression: 1}\n"
                         "  constraints: {compression: {min: 0.3}}\n"
                         "trials: 12\nparallelism: 3\nsampler: grid\nseed: 7\n");
  assert_int_equal(s->num_params, 2);
  assert_int_equal(s->params[1].kind, RCC_PARAM_CHOICE);
  assert_string_equal(s->params[1].choices[0], "[dare, nullu]");
  assert_int_equal(s->params[0].pos.line, 4);
  assert_int_equal(s->trials, 12);
  assert_int_equal(s->parallelism, 3);
  assert_int_equal(s->sampler, RCC_SAMPLER_GRID);
  assert_int_equal(s->objective.kind, RCC_OBJECTIVE_WEIGHTED_PRODUCT);
  assert_true(strstr(s->base, "/base.yaml") != NULL);
  rcc_sweep_free(s);
}

static rcc_job_t * override(const rcc_job_setting_t *set, int n) {
  char *yaml = NULL;
  int bad;
  if (rcc_job_override("base", base_job, strlen(base_job), set, n, &yaml, &bad) != RCC_OK)
    fail_msg("override failed at %d: %s", bad, rcc_last_error());
  rcc_job_t *job = NULL;
  if (rcc_job_parse("trial", yaml, strlen(yaml), &job) != RCC_OK)
    fail_msg("%s\n---\n%s", rcc_job_errors(), yaml);
  free(yaml);
  return job;
}

static void test_override(void **state) {
  (void)state;
  rcc_job_setting_t set[] = {{"cascade.stages[1].config.energy_threshold", "0.77"},
                             {"cascade.stages[0].config.target_sparsity", "0.25"},
                             {"data.validation_samples", "321"},
                             {"seed", "5"}, /* not in the base: added */
                             {"output", "/tmp/a b: c"}};
  rcc_job_t *job = override(set, 5);
  assert_float_equal(job->stages[1].config.nullu.energy_threshold, 0.77, 1e-12);
  assert_float_equal(job->stages[0].config.dare.target_sparsity, 0.25, 1e-12);
  assert_int_equal(job->data.validation_samples, 321);
  assert_int_equal(job->seed, 5);
  assert_string_equal(job->output, "/tmp/a b: c");
  rcc_job_free(job);

  rcc_job_setting_t order[] = {{RCC_JOB_ORDER_PATH, "[alphaedit, dare]"}};
  job = override(order, 1);
  assert_int_equal(job->num_stages, 2);
  assert_int_equal(job->stages[0].kind, RCC_STAGE_ALPHAEDIT);
  assert_int_equal(job->stages[1].kind, RCC_STAGE_DARE);
  rcc_job_free(job);

  /* Paths the job does not have, values of the wrong shape. */
  static const struct {
    const char *path, *value, *want;
  } bad[] = {{"cascade.stages[5].config.x", "1", "index 5 is past the end"},
             {"cascade.stage[0]", "1", "did you mean 'stages'"},
             {"data", "1", "is a mapping in the base job"},
             {"cascade.stages", "1", "the base job has a list here"},
             {"seed.x", "1", "no key 'seed'"},
             {"cascade..x", "1", "not a key path"},
             {RCC_JOB_ORDER_PATH, "[dare, dare]", "named twice"},
             {RCC_JOB_ORDER_PATH, "[pruning]", "no stage named 'pruning'"}};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    rcc_job_setting_t one = {bad[i].path, bad[i].value};
    char *yaml = NULL;
    int at = -2;
    assert_int_equal(rcc_job_override("base", base_job, strlen(base_job), &one, 1, &yaml, &at),
                     RCC_ERR_ARG);
    assert_int_equal(at, 0);
    assert_null(yaml);
    if (!strstr(rcc_last_error(), bad[i].want))
      fail_msg("%s: want '%s' in '%s'", bad[i].path, bad[i].want, rcc_last_error());
  }
}

static void test_grid(void **state) {
  (void)state;
  rcc_sweep_t *s = parse("base: base.yaml\noutput: o\nsampler: grid\nspace:\n"
                         "  cascade.stages[0].config.target_sparsity: {low: 0.1, high: 0.4, "
                         "log: true, steps: 3}\n"
                         "  cascade.stages[1].config.energy_threshold: {choices: [0.8, 0.9]}\n");
  assert_int_equal(rcc_sampler_grid_size(s), 6);
  bool seen[3][2] = {{false}};
  for (int k = 0; k < 6; k++) {
    rcc_param_value_t v[2];
    rcc_sampler_grid(s, k, v);
    int a = (int)lround(log(v[0].x / 0.1) / log(2.0)); /* 0.1, 0.2, 0.4: log spacing */
    assert_float_equal(v[0].x, 0.1 * pow(2.0, a), 1e-12);
    assert_false(seen[a][v[1].choice]);
    seen[a][v[1].choice] = true;
    rcc_param_value_t w[2];
    rcc_sampler_grid(s, k + 6, w); /* past the grid: wraps */
    assert_float_equal(w[0].x, v[0].x, 0);
    assert_int_equal(w[1].choice, v[1].choice);
  }
  rcc_sweep_free(s);
}

static void test_random(void **state) {
  (void)state;
  rcc_sweep_t *s = parse("base: base.yaml\noutput: o\nseed: 11\nspace:\n"
                         "  cascade.stages[0].config.target_sparsity: {low: 0.2, high: 0.6}\n"
                         "  data.validation_samples: {low: 10, high: 13, type: int}\n"
                         "  cascade.stages[1].config.energy_threshold: {choices: [0.8, 0.9, 1]}\n");
  int ints[4] = {0}, choices[3] = {0};
  double sum = 0;
  for (int k = 0; k < 400; k++) {
    rcc_param_value_t v[3], again[3];
    rcc_sampler_random(s, k, v);
    rcc_sampler_random(s, k, again);
    for (int i = 0; i < 3; i++) { /* field by field: the struct has padding */
      assert_true(v[i].x == again[i].x);
      assert_int_equal(v[i].choice, again[i].choice);
    }
    assert_true(v[0].x >= 0.2 && v[0].x < 0.6);
    assert_true(v[1].x >= 10 && v[1].x <= 13 && v[1].x == floor(v[1].x));
    ints[(int)v[1].x - 10]++;
    choices[v[2].choice]++;
    sum += v[0].x;
  }
  /* Spread: every integer and choice drawn often, the mean near the middle. */
  for (int i = 0; i < 4; i++)
    assert_true(ints[i] > 60);
  for (int i = 0; i < 3; i++)
    assert_true(choices[i] > 90);
  assert_float_equal(sum / 400, 0.4, 0.03);
  /* Another seed draws other values. */
  rcc_param_value_t a[3], b[3];
  rcc_sampler_random(s, 0, a);
  s->seed = 12;
  rcc_sampler_random(s, 0, b);
  assert_true(a[0].x != b[0].x);
  rcc_sweep_free(s);
}

static void test_objective(void **state) {
  (void)state;
  rcc_objective_t o = {.kind = RCC_OBJECTIVE_MAXIMIZE,
                       .metric = RCC_METRIC_RETENTION,
                       .min = {-INFINITY, 0.3, -INFINITY}};
  double m[RCC_NUM_METRICS] = {0.95, 0.4, 80};
  bool ok;
  assert_float_equal(rcc_objective_score(&o, m, &ok), 0.95, 1e-12);
  assert_true(ok);
  m[RCC_METRIC_COMPRESSION] = 0.2;
  assert_float_equal(rcc_objective_score(&o, m, &ok), -1.1, 1e-12);
  assert_false(ok);
  rcc_objective_t w = {.kind = RCC_OBJECTIVE_WEIGHTED_PRODUCT,
                       .weight = {2, 1, 0},
                       .min = {-INFINITY, -INFINITY, -INFINITY}};
  assert_float_equal(rcc_objective_score(&w, m, &ok), 0.95 * 0.95 * 0.2, 1e-12);
}

static void test_pareto(void **state) {
  (void)state;
  /* (compression, retention): 0, 2 and 4 are the front; 1 is dominated by 2; 3 equals
   * nothing better; 5 is invalid (failed) although it would dominate everything. */
  double x[] = {0.1, 0.2, 0.3, 0.25, 0.5, 0.9};
  double y[] = {0.99, 0.90, 0.95, 0.80, 0.85, 1.0};
  bool valid[] = {true, true, true, true, true, false}, front[6];
  rcc_pareto_front(x, y, valid, 6, front);
  bool want[] = {true, false, true, false, true, false};
  for (int i = 0; i < 6; i++)
    if (front[i] != want[i]) fail_msg("point %d: front %d, want %d", i, front[i], want[i]);
  /* Ties are all kept. */
  double tx[] = {0.5, 0.5}, ty[] = {0.9, 0.9};
  bool tv[] = {true, true}, tf[2];
  rcc_pareto_front(tx, ty, tv, 2, tf);
  assert_true(tf[0] && tf[1]);
}

static void test_stats(void **state) {
  (void)state;
  double v[] = {1, 2, 3}, mean, std, ci;
  rcc_mean_std_ci(v, 3, &mean, &std, &ci);
  assert_float_equal(mean, 2, 1e-12);
  assert_float_equal(std, 1, 1e-12);
  assert_float_equal(ci, 4.303 / sqrt(3.0), 1e-9);
  double one = 0.5;
  rcc_mean_std_ci(&one, 1, &mean, &std, &ci);
  assert_float_equal(mean, 0.5, 0);
  assert_true(isnan(std) && isnan(ci));
  assert_float_equal(rcc_t975(60), 2.000, 0.002);
  assert_float_equal(rcc_t975(120), 1.980, 0.002);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_parse_good),
      cmocka_unit_test(test_override),     cmocka_unit_test(test_grid),
      cmocka_unit_test(test_random),       cmocka_unit_test(test_objective),
      cmocka_unit_test(test_pareto),       cmocka_unit_test(test_stats),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
