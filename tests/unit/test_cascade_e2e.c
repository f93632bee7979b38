/* The whole cascade on the tiny fixture checkpoint: the run directory is complete, the
 * report's counts equal an independent recount of packed.safetensors, and the packed model
 * computes what the dense compressed/ model computes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/zeroshot.h"
#include "io/safetensors.h"
#include "tests/harness.h"
#include "tests/tiny_cascade.h"

static char run_dir[4096];

static int run_cascade(void **state) {
  (void)state;
  snprintf(run_dir, sizeof run_dir, "%s/run", rcc_scratch_dir());
  rcc_test_run_tiny_job(run_dir, "cpu", "", RCC_TEST_TINY_CASCADE, 0);
  return 0;
}

static const char *run_file(const char *name) {
  static char path[8][4400];
  static int slot;
  slot = (slot + 1) % 8;
  snprintf(path[slot], sizeof path[slot], "%s/%s", run_dir, name);
  return path[slot];
}

static void test_run_directory_complete(void **state) {
  (void)state;
  static const char *files[] = {"report.json",
                                "report.md",
                                "packed.safetensors",
                                "compressed/config.json",
                                "compressed/model.safetensors",
                                "compressed/vocab.json",
                                "compressed/preprocessor_config.json"};
  struct stat sb;
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    if (stat(run_file(files[i]), &sb) != 0 || sb.st_size == 0) fail_msg("missing %s", files[i]);
  cJSON *r = rcc_test_read_report(run_dir);
  cJSON *stages = cJSON_GetObjectItem(r, "stages");
  assert_int_equal(cJSON_GetArraySize(stages), 3);
  static const char *names[] = {"dare", "nullu", "alphaedit"};
  for (int i = 0; i < 3; i++) {
    cJSON *st = cJSON_GetArrayItem(stages, i);
    assert_string_equal(cJSON_GetObjectItem(st, "name")->valuestring, names[i]);
    cJSON *att = cJSON_GetArrayItem(cJSON_GetObjectItem(st, "attempts"), 0);
    assert_non_null(cJSON_GetObjectItem(att, "decision"));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(att, "retention")));
  }
  assert_int_equal(strlen(cJSON_GetObjectItem(r, "job_sha256")->valuestring), 64);
  cJSON_Delete(r);
}

/* params_stored recounted from the packed file: every tensor in full, except the bit masks
 * (index overhead, not parameters). */
static void test_report_counts_match_packed(void **state) {
  (void)state;
  cJSON *r = rcc_test_read_report(run_dir);
  rcc_safetensors_t *st;
  if (rcc_st_open(run_file("packed.safetensors"), &st) != RCC_OK) fail_msg("%s", rcc_last_error());
  int64_t params = 0;
  for (int i = 0; i < rcc_st_count(st); i++) {
    const rcc_tensor_t *t = rcc_st_tensor(st, i);
    size_t n = strlen(t->name);
    if (n > 7 && !strcmp(t->name + n - 7, ".S.mask")) continue;
    params += t->numel;
  }
  cJSON *fin = cJSON_GetObjectItem(r, "final");
  assert_int_equal((int64_t)cJSON_GetObjectItem(fin, "params_stored")->valuedouble, params);
  double compression = cJSON_GetObjectItem(fin, "compression")->valuedouble;
  double total = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "model"), "params_total")->valuedouble;
  assert_true(fabs(compression - (1.0 - params / total)) < 1e-12);
  /* Per layer: nnz from the mask bits, rank from U. */
  cJSON *layer;
  cJSON_ArrayForEach(layer, cJSON_GetObjectItem(r, "layers")) {
    const char *name = cJSON_GetObjectItem(layer, "name")->valuestring;
    char key[300];
    snprintf(key, sizeof key, "%s.S.mask", name);
    const rcc_tensor_t *mask = rcc_st_find(st, key);
    int64_t nnz = 0;
    for (int64_t b = 0; mask && b < mask->numel; b++)
      nnz += __builtin_popcount(((const uint8_t *)mask->data)[b]);
    assert_int_equal(nnz, (int64_t)cJSON_GetObjectItem(layer, "nnz")->valuedouble);
    snprintf(key, sizeof key, "%s.U", name);
    const rcc_tensor_t *U = rcc_st_find(st, key);
    assert_int_equal(U ? U->shape[1] : 0, cJSON_GetObjectItem(layer, "rank")->valueint);
  }
  rcc_st_close(st);
  cJSON_Delete(r);
}

/* The packed model (sparse and low-rank layers as such) equals the dense compressed/ one. */
static void test_packed_equals_compressed(void **state) {
  (void)state;
  rcc_backend_t be;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  rcc_clip_model_t *packed, *dense;
  if (rcc_clip_load(run_file("packed.safetensors"), be, &packed) != RCC_OK ||
      rcc_clip_load(run_file("compressed"), be, &dense) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  const rcc_clip_config_t *cfg = rcc_clip_get_config(dense);
  const int B = 3, S = cfg->vision.image_size, P = cfg->projection_dim, T = 8;
  float *px = malloc((size_t)B * 3 * S * S * sizeof *px);
  float *a = malloc((size_t)B * P * sizeof *a), *b = malloc((size_t)B * P * sizeof *b);
  uint64_t seed = 7;
  rcc_fill_uniform(px, (size_t)B * 3 * S * S, -2.0f, 2.0f, &seed);
  assert_int_equal(rcc_clip_image_features(packed, px, B, a), RCC_OK);
  assert_int_equal(rcc_clip_image_features(dense, px, B, b), RCC_OK);
  double err = rcc_normalized_error(a, b, (size_t)B * P);
  print_message("packed vs compressed/: image features normalized error %.2e\n", err);
  assert_true(err < 1e-4);
  int32_t ids[3 * 8];
  for (int i = 0; i < B * T; i++)
    ids[i] = (i * 37) % (cfg->text.vocab_size - 2);
  for (int i = 0; i < B; i++)
    ids[i * T + T - 1] = cfg->text.vocab_size - 1;
  assert_int_equal(rcc_clip_text_features(packed, ids, B, T, a), RCC_OK);
  assert_int_equal(rcc_clip_text_features(dense, ids, B, T, b), RCC_OK);
  err = rcc_normalized_error(a, b, (size_t)B * P);
  print_message("packed vs compressed/: text features normalized error %.2e\n", err);
  assert_true(err < 1e-4);
  free(px);
  free(a);
  free(b);
  rcc_clip_free(packed);
  rcc_clip_free(dense);
  rcc_backend_free(be);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_run_directory_complete),
                                     cmocka_unit_test(test_report_counts_match_packed),
                                     cmocka_unit_test(test_packed_equals_compressed)};
  return cmocka_run_group_tests(tests, run_cascade, NULL);
}
