/* The coordinator's decisions on the embedded model: a stage that destroys accuracy
 * (95% magnitude pruning of every encoder layer) is retried with halved sparsity, rolled
 * back (the model and its counts return to the state before the stage), or aborts the job
 * with the report still written - as `cascade.validation` says. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/job.h"
#include "runner/cascade.h"
#include "tests/harness.h"

/* Runs a one-stage job with the given validation block; returns the cascade's status and
 * the parsed report.json (caller frees). */
static rcc_status_t run_job(const char *name, const char *validation, cJSON **report) {
  char dir[4200], job_path[4300], path[4400];
  snprintf(dir, sizeof dir, "%s/%s", rcc_scratch_dir(), name);
  snprintf(job_path, sizeof job_path, "%s.yaml", dir);
  FILE *f = fopen(job_path, "w");
  assert_non_null(f);
  fprintf(f,
          "model: %s\noutput: %s\nbackend: cpu\n"
          "data: {validation: fmnist:test, validation_samples: 500}\n"
          "layers: {include: ['*encoder.layers.*']}\n"
          "cascade:\n"
          "  stages:\n"
          "    - name: dare\n"
          "      config: {method: magnitude, target_sparsity: 0.95}\n"
          "  validation: %s\n",
          rcc_source_path("models/clip-fmnist"), dir, validation);
  fclose(f);
  rcc_job_t *job;
  if (rcc_job_load(job_path, &job) != RCC_OK) fail_msg("%s", rcc_job_errors());
  snprintf(path, sizeof path, "mkdir -p '%s'", dir);
  assert_int_equal(system(path), 0);
  rcc_session_t s;
  int argc = 0;
  char **argv = NULL;
  assert_int_equal(rcc_session_open(&s, &argc, &argv, "cpu", 0), RCC_OK);
  rcc_status_t st = rcc_cascade_run(job, &s, true);
  rcc_session_close(&s);
  rcc_job_free(job);
  snprintf(path, sizeof path, "%s/report.json", dir);
  f = fopen(path, "r");
  if (!f) fail_msg("no report.json after the run (status %d: %s)", st, rcc_last_error());
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  *report = cJSON_Parse(text);
  assert_non_null(*report);
  return st;
}

static cJSON *attempts_of(cJSON *report) {
  cJSON *stage = cJSON_GetArrayItem(cJSON_GetObjectItem(report, "stages"), 0);
  assert_non_null(stage);
  return cJSON_GetObjectItem(stage, "attempts");
}

static const char *decision(cJSON *attempts, int i) {
  return cJSON_GetObjectItem(cJSON_GetArrayItem(attempts, i), "decision")->valuestring;
}

static double sparsity(cJSON *attempts, int i) {
  cJSON *cfg = cJSON_GetObjectItem(cJSON_GetArrayItem(attempts, i), "config");
  return cJSON_GetObjectItem(cfg, "target_sparsity")->valuedouble;
}

static double final_value(cJSON *report, const char *key) {
  return cJSON_GetObjectItem(cJSON_GetObjectItem(report, "final"), key)->valuedouble;
}

static void test_retry_halves_sparsity(void **state) {
  (void)state;
  cJSON *r;
  assert_int_equal(
      run_job("retry", "{performance_threshold: 0.9, on_fail: retry, max_retries: 3}", &r), RCC_OK);
  cJSON *att = attempts_of(r);
  int n = cJSON_GetArraySize(att);
  assert_true(n >= 2);
  assert_string_equal(decision(att, 0), "retry");
  for (int i = 1; i < n; i++)
    assert_true(fabs(sparsity(att, i) - sparsity(att, i - 1) / 2) < 1e-12);
  /* Every attempt but the last is a retry; the last commits or rolls back. */
  for (int i = 0; i + 1 < n; i++)
    assert_string_equal(decision(att, i), "retry");
  const char *last = decision(att, n - 1);
  assert_true(!strcmp(last, "commit") || !strcmp(last, "rollback"));
  if (!strcmp(last, "commit"))
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(att, n - 1), "retention")->valuedouble >=
                0.9);
  cJSON_Delete(r);
}

static void test_rollback_restores_the_model(void **state) {
  (void)state;
  cJSON *r;
  assert_int_equal(run_job("rollback", "{performance_threshold: 0.9, on_fail: rollback}", &r),
                   RCC_OK);
  cJSON *att = attempts_of(r);
  assert_int_equal(cJSON_GetArraySize(att), 1);
  assert_string_equal(decision(att, 0), "rollback");
  assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(att, 0), "retention")->valuedouble < 0.9);
  /* Nothing committed: stored parameters are the dense count and the metric the baseline. */
  double total = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "params_total")->valuedouble;
  assert_true(final_value(r, "params_stored") == total);
  assert_true(final_value(r, "compression") == 0.0);
  assert_true(final_value(r, "retention") == 1.0);
  cJSON *layer;
  cJSON_ArrayForEach(layer, cJSON_GetObjectItem(r, "layers"))
      assert_true(cJSON_GetObjectItem(layer, "rel_error")->valuedouble == 0.0);
  cJSON_Delete(r);
}

static void test_abort_stops_with_report(void **state) {
  (void)state;
  cJSON *r;
  rcc_status_t st = run_job("abort", "{performance_threshold: 0.9, on_fail: abort}", &r);
  assert_int_equal(st, RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "on_fail is abort"));
  assert_string_equal(cJSON_GetObjectItem(r, "outcome")->valuestring, "aborted");
  assert_string_equal(decision(attempts_of(r), 0), "abort");
  cJSON_Delete(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_retry_halves_sparsity),
                                     cmocka_unit_test(test_rollback_restores_the_model),
                                     cmocka_unit_test(test_abort_stops_with_report)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
