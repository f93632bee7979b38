/* Biases and LayerNorms of the inference model set by name (model/clip.h): they change what
 * the model computes, read back as set, return to the file's values on reset, and unknown
 * names or wrong counts are refused; the tensor list; and the export writing them in place
 * of the original ones into compressed/ and packed.safetensors (compress/export.h). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/status.h"
#include "compress/export.h"
#include "model/clip.h"
#include "tests/harness.h"

#define MODEL "tests/fixtures/clip-tiny-a"
#define LN "vision_model.post_layernorm.weight"         /* (64) */
#define BIAS "text_model.encoder.layers.1.mlp.fc2.bias" /* (64) */
#define D 64
#define B 2
#define T 8

typedef struct {
  rcc_backend_t be;
  rcc_clip_model_t *m;
  float pixels[B * 3 * 32 * 32];
  int32_t ids[B * T];
} state_t;

static int setup(void **s) {
  state_t *st = calloc(1, sizeof *st);
  assert_non_null(st);
  assert_int_equal(rcc_backend_init(&st->be, "cpu"), RCC_OK);
  if (rcc_clip_load(rcc_source_path(MODEL), st->be, &st->m) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  uint64_t seed = 7;
  rcc_fill_uniform(st->pixels, sizeof st->pixels / sizeof *st->pixels, -1.0f, 1.0f, &seed);
  for (int i = 0; i < B * T; i++)
    st->ids[i] = 1 + (i * 37) % 50;
  *s = st;
  return 0;
}

static int teardown(void **s) {
  state_t *st = *s;
  rcc_clip_free(st->m);
  rcc_backend_free(st->be);
  free(st);
  return 0;
}

/* out (B, P) image features, then (B, P) text features. */
static void features(rcc_clip_model_t *m, const state_t *st, float *out) {
  const int P = rcc_clip_get_config(m)->projection_dim;
  assert_int_equal(rcc_clip_image_features(m, st->pixels, B, out), RCC_OK);
  assert_int_equal(rcc_clip_text_features(m, st->ids, B, T, out + B * P), RCC_OK);
}

static bool same(const float *a, const float *b, size_t n) { return !memcmp(a, b, n * sizeof *a); }

static void test_set_get_reset(void **s) {
  state_t *st = *s;
  const int P = rcc_clip_get_config(st->m)->projection_dim;
  float f0[2 * B * 64], f1[2 * B * 64], ln0[D], ln[D], bias0[D], bias[D], got[D];
  assert_true(P <= 64);
  features(st->m, st, f0);
  assert_int_equal(rcc_clip_get_tensor(st->m, LN, ln0, D), RCC_OK);
  assert_int_equal(rcc_clip_get_tensor(st->m, BIAS, bias0, D), RCC_OK);
  for (int i = 0; i < D; i++) {
    ln[i] = 1.5f * ln0[i] + 0.01f * (float)i;
    bias[i] = bias0[i] - 0.2f;
  }
  /* the LayerNorm after the vision encoder moves image features only */
  assert_int_equal(rcc_clip_set_tensor(st->m, LN, ln, D), RCC_OK);
  features(st->m, st, f1);
  assert_false(same(f0, f1, (size_t)B * P));
  assert_true(same(f0 + B * P, f1 + B * P, (size_t)B * P));
  assert_int_equal(rcc_clip_get_tensor(st->m, LN, got, D), RCC_OK);
  assert_true(same(got, ln, D));
  /* a text bias moves text features only; setting twice reuses the model's buffer */
  assert_int_equal(rcc_clip_set_tensor(st->m, BIAS, bias0, D), RCC_OK);
  assert_int_equal(rcc_clip_set_tensor(st->m, BIAS, bias, D), RCC_OK);
  float f2[2 * B * 64];
  features(st->m, st, f2);
  assert_true(same(f1, f2, (size_t)B * P));
  assert_false(same(f1 + B * P, f2 + B * P, (size_t)B * P));
  /* reset: the file's values, the original features to the bit */
  rcc_clip_reset_tensors(st->m);
  assert_int_equal(rcc_clip_get_tensor(st->m, LN, got, D), RCC_OK);
  assert_true(same(got, ln0, D));
  features(st->m, st, f1);
  assert_true(same(f0, f1, (size_t)2 * B * P));
}

static void test_refused(void **s) {
  state_t *st = *s;
  float v[D] = {0};
  static const char *const not_settable[] = {"vision_model.embeddings.class_embedding",
                                             "visual_projection.weight", "visual_projection.bias",
                                             "vision_model.encoder.layers.0.mlp.fc1.weight", ""};
  for (size_t i = 0; i < sizeof not_settable / sizeof *not_settable; i++) {
    assert_int_equal(rcc_clip_set_tensor(st->m, not_settable[i], v, D), RCC_ERR_ARG);
    assert_non_null(strstr(rcc_last_error(), "no such tensor"));
  }
  assert_int_equal(rcc_clip_set_tensor(st->m, LN, v, D - 1), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "63 values given, the model's has 64"));
  assert_int_equal(rcc_clip_get_tensor(st->m, BIAS, v, D + 1), RCC_ERR_ARG);
  /* a refused set leaves the model as it was */
  float got[D];
  assert_int_equal(rcc_clip_get_tensor(st->m, LN, got, D), RCC_OK);
  assert_true(got[0] != 0.0f);
}

static void test_list(void **s) {
  rcc_clip_tensors_t l = {0};
  const float a[3] = {1, 2, 3}, b[2] = {4, 5};
  assert_int_equal(rcc_clip_tensors_put(&l, "x.bias", a, 3), RCC_OK);
  assert_int_equal(rcc_clip_tensors_put(&l, "y.weight", b, 2), RCC_OK);
  assert_int_equal(rcc_clip_tensors_put(&l, "x.bias", b, 2), RCC_OK); /* overwrites */
  assert_int_equal(l.n, 2);
  const rcc_clip_tensor_t *x = rcc_clip_tensors_find(&l, "x.bias");
  assert_non_null(x);
  assert_int_equal(x->count, 2);
  assert_true(same(x->values, b, 2));
  assert_null(rcc_clip_tensors_find(&l, "z"));
  char longname[200];
  memset(longname, 'n', sizeof longname - 1);
  longname[sizeof longname - 1] = '\0';
  assert_int_equal(rcc_clip_tensors_put(&l, longname, a, 3), RCC_ERR_ARG);
  rcc_clip_tensors_free(&l);
  assert_int_equal(l.n, 0);
  assert_null(l.items);
}

/* The export writes the list's values in place of the file's: both outputs load back with
 * them and compute what the model with them set computes. */
static void test_export(void **s) {
  state_t *st = *s;
  const int P = rcc_clip_get_config(st->m)->projection_dim;
  const int n = rcc_clip_num_linears(st->m);
  bool *compressed = calloc((size_t)n, sizeof *compressed);
  assert_non_null(compressed);
  float ln[D], bias[D], other0[D], other[D];
  assert_int_equal(rcc_clip_get_tensor(st->m, LN, ln, D), RCC_OK);
  assert_int_equal(rcc_clip_get_tensor(st->m, BIAS, bias, D), RCC_OK);
  for (int i = 0; i < D; i++) {
    ln[i] *= 0.75f;
    bias[i] += 0.1f;
  }
  rcc_clip_tensors_t l = {0};
  assert_int_equal(rcc_clip_tensors_put(&l, LN, ln, D), RCC_OK);
  assert_int_equal(rcc_clip_tensors_put(&l, BIAS, bias, D), RCC_OK);
  assert_int_equal(rcc_clip_set_tensors(st->m, &l), RCC_OK);
  float want[2 * B * 64];
  features(st->m, st, want);
  rcc_clip_reset_tensors(st->m);
  const char *other_name = "vision_model.pre_layrnorm.bias";
  assert_int_equal(rcc_clip_get_tensor(st->m, other_name, other0, D), RCC_OK);

  rcc_export_t e = {
      .model_dir = rcc_source_path(MODEL), .model = st->m, .compressed = compressed, .tensors = &l};
  char dir[4200], packed[4200];
  snprintf(dir, sizeof dir, "%s/compressed", rcc_scratch_dir());
  snprintf(packed, sizeof packed, "%s/packed.safetensors", rcc_scratch_dir());
  if (rcc_export_hf_dir(&e, dir) != RCC_OK) fail_msg("%s", rcc_last_error());
  if (rcc_export_packed(&e, packed, NULL) != RCC_OK) fail_msg("%s", rcc_last_error());
  const char *outputs[2] = {dir, packed};
  for (int k = 0; k < 2; k++) {
    rcc_clip_model_t *m;
    if (rcc_clip_load(outputs[k], st->be, &m) != RCC_OK) fail_msg("%s", rcc_last_error());
    float got[D], f[2 * B * 64];
    assert_int_equal(rcc_clip_get_tensor(m, LN, got, D), RCC_OK);
    assert_true(same(got, ln, D));
    assert_int_equal(rcc_clip_get_tensor(m, BIAS, got, D), RCC_OK);
    assert_true(same(got, bias, D));
    assert_int_equal(rcc_clip_get_tensor(m, other_name, other, D), RCC_OK);
    assert_true(same(other, other0, D));
    features(m, st, f);
    assert_true(same(f, want, (size_t)2 * B * P));
    rcc_clip_free(m);
  }

  /* a name the file lacks, or a wrong count: refused, and compressed/ stays as it was */
  rcc_clip_tensors_t bad = {0};
  assert_int_equal(rcc_clip_tensors_put(&bad, "vision_model.no_such_norm.weight", ln, D), RCC_OK);
  e.tensors = &bad;
  assert_int_equal(rcc_export_hf_dir(&e, dir), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "no tensor 'vision_model.no_such_norm.weight'"));
  assert_int_equal(rcc_export_packed(&e, packed, NULL), RCC_ERR_ARG);
  rcc_clip_tensors_free(&bad);
  assert_int_equal(rcc_clip_tensors_put(&bad, LN, ln, D - 1), RCC_OK);
  assert_int_equal(rcc_export_hf_dir(&e, dir), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "replacement has 63 floats"));
  rcc_clip_tensors_free(&bad);
  rcc_clip_model_t *m;
  if (rcc_clip_load(dir, st->be, &m) != RCC_OK) fail_msg("%s", rcc_last_error());
  float got[D];
  assert_int_equal(rcc_clip_get_tensor(m, LN, got, D), RCC_OK);
  assert_true(same(got, ln, D));
  rcc_clip_free(m);
  rcc_clip_tensors_free(&l);
  free(compressed);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_set_get_reset, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test(test_list),
      cmocka_unit_test_setup_teardown(test_export, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
