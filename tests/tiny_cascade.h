/* Jobs on the tiny fixture checkpoint for the end-to-end tests: the encoder layers of
 * tests/fixtures/clip-tiny-a, calibrated on 64 Fashion-MNIST images and validated on 200,
 * run in-process as one rank. Kept in one place so that the CPU end-to-end tests and the
 * cuda-vs-cpu tests always run the same jobs. */
#pragma once
#include <cjson/cJSON.h>

/* The cascade of the end-to-end tests: wanda 50 %, nullu residual, alphaedit closed form. */
#define RCC_TEST_TINY_CASCADE                                                                      \
  "    - {name: dare, config: {method: wanda, target_sparsity: 0.5}}\n"                            \
  "    - {name: nullu, config: {method: residual, energy_threshold: 0.9,\n"                        \
  "                             rank_reduction_ratio: 0.25}}\n"                                    \
  "    - {name: alphaedit, config: {method: closed_form, regularization: 0.001}}\n"

/* Writes <run_dir>.yaml for `backend` ("cpu", "cuda:0") with the given stage list (YAML
 * items indented by four spaces, as RCC_TEST_TINY_CASCADE) and `options` (top-level YAML
 * lines, may be ""), opens a single-rank session on that backend, runs the cascade into
 * run_dir and closes the session. With device_path, the stages and distillation take
 * their device code path even on the CPU backend (RCC_STAGES_ON_BACKEND=1 for this run).
 * Fails the running CMocka test on any error, with the library's message. */
void rcc_test_run_tiny_job(const char *run_dir, const char *backend, const char *options,
                           const char *stages, int device_path);

/* <run_dir>/report.json, parsed (free with cJSON_Delete); fails the test when it is missing
 * or not JSON. */
cJSON *rcc_test_read_report(const char *run_dir);
/* The number o[key]; fails the test when there is none. */
double rcc_test_json_number(const cJSON *o, const char *key);
