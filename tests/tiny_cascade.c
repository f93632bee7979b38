#include "tests/tiny_cascade.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/status.h"
#include "jobs/job.h"
#include "runner/cascade.h"
#include "runner/session.h"
#include "tests/harness.h"

void rcc_test_run_tiny_job(const char *run_dir, const char *backend, const char *options,
                           const char *stages, int device_path) {
  char job_path[4300], cmd[8600];
  snprintf(job_path, sizeof job_path, "%s.yaml", run_dir);
  FILE *f = fopen(job_path, "w");
  if (!f) fail_msg("cannot write %s", job_path);
  fprintf(f,
          "model: %s\noutput: %s\nbackend: %s\n%s"
          "data: {calibration: 'fmnist:train', calibration_samples: 64,\n"
          "       validation: 'fmnist:test', validation_samples: 200}\n"
          "layers: {include: ['*encoder.layers.*']}\n"
          "cascade:\n"
          "  stages:\n%s"
          "  validation: {performance_threshold: 0.01}\n",
          rcc_source_path("tests/fixtures/clip-tiny-a"), run_dir, backend, options, stages);
  fclose(f);
  rcc_job_t *job;
  if (rcc_job_load(job_path, &job) != RCC_OK) fail_msg("%s", rcc_job_errors());
  rcc_session_t s;
  int argc = 0;
  char **argv = NULL;
  if (rcc_session_open(&s, &argc, &argv, backend, 0) != RCC_OK)
    fail_msg("%s: %s", backend, rcc_last_error());
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", run_dir);
  if (system(cmd) != 0) fail_msg("%s failed", cmd);
  const int set_here = device_path && !getenv("RCC_STAGES_ON_BACKEND");
  if (set_here) setenv("RCC_STAGES_ON_BACKEND", "1", 1);
  rcc_status_t st = rcc_cascade_run(job, &s, true);
  if (set_here) unsetenv("RCC_STAGES_ON_BACKEND");
  if (st != RCC_OK) fail_msg("%s: %s", backend, rcc_last_error());
  rcc_session_close(&s);
  rcc_job_free(job);
}

cJSON *rcc_test_read_report(const char *run_dir) {
  char path[4400];
  snprintf(path, sizeof path, "%s/report.json", run_dir);
  FILE *f = fopen(path, "r");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  const long len = ftell(f);
  rewind(f);
  char *text = malloc((size_t)len + 1);
  if (!text) fail_msg("out of memory reading %s", path);
  const size_t n = fread(text, 1, (size_t)len, f);
  fclose(f);
  text[n] = '\0';
  cJSON *o = cJSON_Parse(text);
  free(text);
  if (!o) fail_msg("%s is not JSON", path);
  return o;
}

double rcc_test_json_number(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("report.json: no number '%s'", key);
  return v->valuedouble;
}
