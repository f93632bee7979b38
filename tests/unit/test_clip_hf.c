/* rcc-dist's CLIP against Hugging Face's own outputs (tests/fixtures/clip-tiny-*.ref.safetensors,
 * written by tools/make_fixtures.py): token ids equal, pixel values, image and text features
 * and logits within float32 accuracy, for two checkpoints of different shapes and dtypes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/features.h"
#include "io/safetensors.h"
#include "tests/harness.h"

typedef struct {
  const char *model_dir; /* relative to the source tree */
  const char *ref;
} fixture_t;

static const fixture_t fixtures[] = {
    {"tests/fixtures/clip-tiny-a", "tests/fixtures/clip-tiny-a.ref.safetensors"},
    {"tests/fixtures/clip-tiny-b", "tests/fixtures/clip-tiny-b.ref.safetensors"},
};

typedef struct {
  rcc_backend_t be;
  rcc_eval_ctx_t ctx;
  rcc_safetensors_t *ref;
  cJSON *images, *texts; /* JSON arrays from the reference metadata */
  int n_images, n_texts, P;
} state_t;

static int setup(void **s, const fixture_t *f) {
  state_t *st = calloc(1, sizeof *st);
  assert_non_null(st);
  assert_int_equal(rcc_backend_init(&st->be, "cpu"), RCC_OK);
  if (rcc_eval_ctx_open(&st->ctx, rcc_source_path(f->model_dir), st->be, 4) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  if (rcc_st_open(rcc_source_path(f->ref), &st->ref) != RCC_OK) fail_msg("%s", rcc_last_error());
  st->images = cJSON_Parse(rcc_st_metadata(st->ref, "images"));
  st->texts = cJSON_Parse(rcc_st_metadata(st->ref, "texts"));
  assert_true(cJSON_IsArray(st->images) && cJSON_IsArray(st->texts));
  st->n_images = cJSON_GetArraySize(st->images);
  st->n_texts = cJSON_GetArraySize(st->texts);
  st->P = rcc_clip_get_config(st->ctx.model)->projection_dim;
  *s = st;
  return 0;
}
static int setup_a(void **s) { return setup(s, &fixtures[0]); }
static int setup_b(void **s) { return setup(s, &fixtures[1]); }

static int teardown(void **s) {
  state_t *st = *s;
  cJSON_Delete(st->images);
  cJSON_Delete(st->texts);
  rcc_st_close(st->ref);
  rcc_eval_ctx_close(&st->ctx);
  rcc_backend_free(st->be);
  free(st);
  return 0;
}

static const rcc_tensor_t *ref_tensor(state_t *st, const char *name, rcc_dtype_t dtype) {
  const rcc_tensor_t *t = rcc_st_find(st->ref, name);
  if (!t) fail_msg("reference has no tensor '%s'", name);
  assert_int_equal(t->dtype, dtype);
  return t;
}

/* Features must agree to float32 accuracy: error normalized by the largest reference value. */
static void assert_features_close(const float *got, const float *want, size_t n, const char *what) {
  double err = rcc_normalized_error(got, want, n);
  print_message("%s: normalized max error %.2e\n", what, err);
  if (!(err <= 1e-4))
    fail_msg("%s differs from Hugging Face: normalized error %.3e > 1e-4", what, err);
}

static void test_token_ids(void **s) {
  state_t *st = *s;
  const rcc_tensor_t *ids = ref_tensor(st, "input_ids", RCC_DTYPE_I64);
  const int T = rcc_clip_get_config(st->ctx.model)->text.max_position_embeddings;
  assert_int_equal(ids->shape[0], st->n_texts);
  assert_int_equal(ids->shape[1], T);
  int32_t *got = malloc((size_t)T * sizeof *got);
  for (int i = 0; i < st->n_texts; i++) {
    const char *text = cJSON_GetArrayItem(st->texts, i)->valuestring;
    int len;
    assert_int_equal(rcc_tokenizer_encode(st->ctx.tokenizer, text, T, got, &len), RCC_OK);
    const int64_t *want = (const int64_t *)ids->data + (size_t)i * T;
    for (int t = 0; t < T; t++)
      if (got[t] != want[t])
        fail_msg("text %d \"%s\": id[%d] = %d, HF has %lld", i, text, t, got[t],
                 (long long)want[t]);
  }
  free(got);
}

static void test_pixel_values(void **s) {
  state_t *st = *s;
  const rcc_tensor_t *px = ref_tensor(st, "pixel_values", RCC_DTYPE_F32);
  const size_t per = (size_t)px->numel / st->n_images;
  float *got = malloc(per * sizeof *got);
  for (int i = 0; i < st->n_images; i++) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s", cJSON_GetArrayItem(st->images, i)->valuestring);
    rcc_image_t img;
    if (rcc_image_load(rcc_source_path(rel), &img) != RCC_OK) fail_msg("%s", rcc_last_error());
    assert_int_equal(rcc_preprocess_image(&st->ctx.preprocess, &img, got), RCC_OK);
    rcc_image_free(&img);
    assert_allclose(got, (const float *)px->data + i * per, per, 1e-5, 0.0);
  }
  free(got);
}

static void test_image_features(void **s) {
  state_t *st = *s;
  const rcc_tensor_t *px = ref_tensor(st, "pixel_values", RCC_DTYPE_F32);
  const rcc_tensor_t *want = ref_tensor(st, "image_features", RCC_DTYPE_F32);
  float *got = malloc((size_t)want->numel * sizeof *got);
  assert_int_equal(want->shape[1], st->P);
  /* Batch of all images at once, then one at a time: batching must not change results. */
  assert_int_equal(rcc_clip_image_features(st->ctx.model, px->data, st->n_images, got), RCC_OK);
  assert_features_close(got, want->data, (size_t)want->numel, "image features (batched)");
  const size_t per = (size_t)px->numel / st->n_images;
  for (int i = 0; i < st->n_images; i++)
    assert_int_equal(rcc_clip_image_features(st->ctx.model, (const float *)px->data + i * per, 1,
                                             got + (size_t)i * st->P),
                     RCC_OK);
  assert_features_close(got, want->data, (size_t)want->numel, "image features (one by one)");
  free(got);
}

static void test_text_features(void **s) {
  state_t *st = *s;
  const rcc_tensor_t *ids64 = ref_tensor(st, "input_ids", RCC_DTYPE_I64);
  const rcc_tensor_t *want = ref_tensor(st, "text_features", RCC_DTYPE_F32);
  int32_t *ids = malloc((size_t)ids64->numel * sizeof *ids);
  for (int64_t i = 0; i < ids64->numel; i++)
    ids[i] = (int32_t)((const int64_t *)ids64->data)[i];
  float *got = malloc((size_t)want->numel * sizeof *got);
  assert_int_equal(
      rcc_clip_text_features(st->ctx.model, ids, st->n_texts, (int)ids64->shape[1], got), RCC_OK);
  assert_features_close(got, want->data, (size_t)want->numel, "text features");
  free(ids);
  free(got);
}

/* The whole pipeline from files: images decoded and preprocessed, texts tokenized, then
 * HF's logits_per_image = exp(logit_scale) * cos(image, text). */
static void test_logits_end_to_end(void **s) {
  state_t *st = *s;
  const rcc_tensor_t *want = ref_tensor(st, "logits_per_image", RCC_DTYPE_F32);
  const int P = st->P, ni = st->n_images, nt = st->n_texts;
  const char **paths = malloc((size_t)ni * sizeof *paths),
             **texts = malloc((size_t)nt * sizeof *texts);
  for (int i = 0; i < ni; i++)
    paths[i] = rcc_source_path(cJSON_GetArrayItem(st->images, i)->valuestring);
  for (int i = 0; i < nt; i++)
    texts[i] = cJSON_GetArrayItem(st->texts, i)->valuestring;
  float *img = malloc((size_t)ni * P * sizeof *img), *txt = malloc((size_t)nt * P * sizeof *txt);
  float *logits = malloc((size_t)ni * nt * sizeof *logits);
  if (rcc_eval_image_file_features(&st->ctx, paths, ni, true, img) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  if (rcc_eval_text_features(&st->ctx, texts, nt, true, txt) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  const float scale = rcc_clip_logit_scale(st->ctx.model);
  for (int i = 0; i < ni; i++)
    for (int j = 0; j < nt; j++) {
      double d = 0.0;
      for (int k = 0; k < P; k++)
        d += (double)img[(size_t)i * P + k] * txt[(size_t)j * P + k];
      logits[(size_t)i * nt + j] = (float)(scale * d);
    }
  assert_features_close(logits, want->data, (size_t)want->numel, "logits_per_image");
  free(paths);
  free(texts);
  free(img);
  free(txt);
  free(logits);
}

#define FIXTURE_TESTS(setup_fn)                                                                    \
  cmocka_unit_test_setup_teardown(test_token_ids, setup_fn, teardown),                             \
      cmocka_unit_test_setup_teardown(test_pixel_values, setup_fn, teardown),                      \
      cmocka_unit_test_setup_teardown(test_image_features, setup_fn, teardown),                    \
      cmocka_unit_test_setup_teardown(test_text_features, setup_fn, teardown),                     \
      cmocka_unit_test_setup_teardown(test_logits_end_to_end, setup_fn, teardown)

int main(void) {
  const struct CMUnitTest tests[] = {FIXTURE_TESTS(setup_a), FIXTURE_TESTS(setup_b)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
