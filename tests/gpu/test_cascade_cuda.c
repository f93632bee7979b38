/* The whole cascade on the tiny fixture checkpoint on `backend: cuda` against the same job on
 * `backend: cpu`: forward, calibration statistics (accumulated on the GPU), the stages and
 * validation. What must agree, and why these bounds:
 *  - every stage's attempts and decisions, exactly: the "same decisions";
 *  - every layer's kept weights (nnz) exactly, and its rank within 1: wanda ranks by |w|
 *    times a column norm (ties need equal products), while the rank follows an energy
 *    threshold on singular values whose sums differ in their last bits between cuBLAS and
 *    OpenBLAS, which may move a borderline cut by one;
 *  - the baseline, each attempt's top-1 and the final one within 1 validation image (FP32
 *    on both sides, no TF32; a near-tie between two classes may flip);
 *  - the image features of the two compressed/ models, both evaluated on the CPU backend,
 *    within normalized error 1e-3.
 * Without a GPU it prints "skipped: no GPU" and exits 77. RCC_TEST_CASCADE_BACKEND names
 * the second backend instead of "cuda:0": with "cpu" this test's own checks run anywhere,
 * the second run taking the stages' device code path (compress/device.h) on the CPU. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/clip.h"
#include "rcc_version.h"
#include "tests/harness.h"
#include "tests/tiny_cascade.h"

static const char *second_backend(void) {
  const char *env = getenv("RCC_TEST_CASCADE_BACKEND");
  return env && *env ? env : "cuda:0";
}

/* Run 0 is the CPU reference, run 1 the backend under test. */
static const char *backend_of(int run) { return run ? second_backend() : "cpu"; }

static const char *run_dir(int run) {
  static char path[2][4200];
  snprintf(path[run], sizeof path[run], "%s/run-%d", rcc_scratch_dir(), run);
  return path[run];
}

static int run_both(void **state) {
  rcc_test_run_tiny_job(run_dir(0), backend_of(0), "", RCC_TEST_TINY_CASCADE, 0);
  /* CPU against CPU: the second run takes the stages' device path. */
  rcc_test_run_tiny_job(run_dir(1), backend_of(1), "", RCC_TEST_TINY_CASCADE,
                        !strcmp(backend_of(1), "cpu"));
  return 0;
}

static void expect_top1_close(double cpu, double gpu, double one_image, const char *what) {
  print_message("  %-32s cpu %.4f  %s %.4f\n", what, cpu, second_backend(), gpu);
  if (!(fabs(cpu - gpu) <= one_image * 1.0001)) fail_msg("%s differs by more than one image", what);
}

static void test_same_decisions(void **state) {
  cJSON *a = rcc_test_read_report(run_dir(0)), *b = rcc_test_read_report(run_dir(1));
  /* top-1 is reported in percent */
  const double one_image =
      100.0 / rcc_test_json_number(cJSON_GetObjectItem(a, "data"), "validation_samples");
  expect_top1_close(rcc_test_json_number(cJSON_GetObjectItem(a, "baseline"), "value"),
                    rcc_test_json_number(cJSON_GetObjectItem(b, "baseline"), "value"), one_image,
                    "baseline");
  const cJSON *sa = cJSON_GetObjectItem(a, "stages"), *sb = cJSON_GetObjectItem(b, "stages");
  assert_int_equal(cJSON_GetArraySize(sa), cJSON_GetArraySize(sb));
  for (int i = 0; i < cJSON_GetArraySize(sa); i++) {
    const cJSON *ta = cJSON_GetObjectItem(cJSON_GetArrayItem(sa, i), "attempts");
    const cJSON *tb = cJSON_GetObjectItem(cJSON_GetArrayItem(sb, i), "attempts");
    assert_int_equal(cJSON_GetArraySize(ta), cJSON_GetArraySize(tb));
    for (int k = 0; k < cJSON_GetArraySize(ta); k++) {
      const cJSON *xa = cJSON_GetArrayItem(ta, k), *xb = cJSON_GetArrayItem(tb, k);
      assert_string_equal(cJSON_GetObjectItem(xa, "decision")->valuestring,
                          cJSON_GetObjectItem(xb, "decision")->valuestring);
      char what[64];
      snprintf(what, sizeof what, "stage %d attempt %d top-1", i + 1, k + 1);
      expect_top1_close(rcc_test_json_number(xa, "metric"), rcc_test_json_number(xb, "metric"),
                        one_image, what);
    }
  }
  expect_top1_close(rcc_test_json_number(cJSON_GetObjectItem(a, "final"), "metric"),
                    rcc_test_json_number(cJSON_GetObjectItem(b, "final"), "metric"), one_image,
                    "final");
  cJSON_Delete(a);
  cJSON_Delete(b);
}

static void test_same_layers(void **state) {
  cJSON *a = rcc_test_read_report(run_dir(0)), *b = rcc_test_read_report(run_dir(1));
  const cJSON *la = cJSON_GetObjectItem(a, "layers"), *lb = cJSON_GetObjectItem(b, "layers");
  assert_int_equal(cJSON_GetArraySize(la), cJSON_GetArraySize(lb));
  int rank_moves = 0;
  for (int i = 0; i < cJSON_GetArraySize(la); i++) {
    const cJSON *xa = cJSON_GetArrayItem(la, i), *xb = cJSON_GetArrayItem(lb, i);
    const char *name = cJSON_GetObjectItem(xa, "name")->valuestring;
    assert_string_equal(name, cJSON_GetObjectItem(xb, "name")->valuestring);
    if (rcc_test_json_number(xa, "nnz") != rcc_test_json_number(xb, "nnz"))
      fail_msg("%s: nnz %.0f on cpu, %.0f on %s", name, rcc_test_json_number(xa, "nnz"),
               rcc_test_json_number(xb, "nnz"), second_backend());
    const double dr = fabs(rcc_test_json_number(xa, "rank") - rcc_test_json_number(xb, "rank"));
    if (dr > 1) fail_msg("%s: rank differs by %.0f", name, dr);
    rank_moves += dr > 0;
  }
  print_message("  %d layers, %d rank(s) moved by one\n", cJSON_GetArraySize(la), rank_moves);
  cJSON_Delete(a);
  cJSON_Delete(b);
}

/* The two compressed/ exports, both run on the CPU backend on the same random images. */
static void test_same_weights(void **state) {
  rcc_backend_t be;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  char pa[4400], pb[4400];
  snprintf(pa, sizeof pa, "%s/compressed", run_dir(0));
  snprintf(pb, sizeof pb, "%s/compressed", run_dir(1));
  rcc_clip_model_t *ma, *mb;
  if (rcc_clip_load(pa, be, &ma) != RCC_OK || rcc_clip_load(pb, be, &mb) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  const rcc_clip_config_t *cfg = rcc_clip_get_config(ma);
  const int B = 4, S = cfg->vision.image_size, P = cfg->projection_dim;
  float *px = malloc((size_t)B * 3 * S * S * sizeof *px);
  float *fa = malloc((size_t)B * P * sizeof *fa), *fb = malloc((size_t)B * P * sizeof *fb);
  assert_true(px && fa && fb);
  uint64_t seed = 11;
  rcc_fill_uniform(px, (size_t)B * 3 * S * S, -2.0f, 2.0f, &seed);
  assert_int_equal(rcc_clip_image_features(ma, px, B, fa), RCC_OK);
  assert_int_equal(rcc_clip_image_features(mb, px, B, fb), RCC_OK);
  const double err = rcc_normalized_error(fb, fa, (size_t)B * P);
  print_message("  compressed/ image features: normalized error %.2e (bound 1e-3)\n", err);
  assert_true(err <= 1e-3);
  free(px);
  free(fa);
  free(fb);
  rcc_clip_free(ma);
  rcc_clip_free(mb);
  rcc_backend_free(be);
}

int main(void) {
  if (strncmp(second_backend(), "cuda", 4) == 0 &&
      (!RCC_HAVE_CUDA || rcc_backend_cuda_device_count() == 0)) {
    printf("skipped: no GPU\n");
    return 77;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_same_decisions),
      cmocka_unit_test(test_same_layers),
      cmocka_unit_test(test_same_weights),
  };
  return cmocka_run_group_tests(tests, run_both, NULL);
}
