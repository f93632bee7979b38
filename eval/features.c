/* Feature extraction shared by zero-shot, retrieval and `rcc-dist embed`. */
#include "eval/features.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The directory with the tokenizer and preprocessor files of `model`: the model directory
 * itself, or for a packed.safetensors file its folder, or the run directory's compressed/. */
static void aux_dir(const char *model, char *dir, size_t cap) {
  struct stat sb;
  if (stat(model, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    snprintf(dir, cap, "%s", model);
    return;
  }
  const char *slash = strrchr(model, '/');
  if (slash)
    snprintf(dir, cap, "%.*s", (int)(slash - model), model);
  else
    snprintf(dir, cap, ".");
  char probe[4200];
  snprintf(probe, sizeof probe, "%s/vocab.json", dir);
  if (stat(probe, &sb) != 0) {
    size_t n = strlen(dir);
    snprintf(dir + n, cap - n, "/compressed");
  }
}

rcc_status_t rcc_eval_ctx_open(rcc_eval_ctx_t *ctx, const char *model_path, rcc_backend_t be,
                               int batch) {
  *ctx = (rcc_eval_ctx_t){.batch = batch > 0 ? batch : 32};
  char model_dir[4096];
  aux_dir(model_path, model_dir, sizeof model_dir);
  RCC_TRY(rcc_clip_load(model_path, be, &ctx->model));
  rcc_status_t st = rcc_tokenizer_load(model_dir, &ctx->tokenizer);
  if (st == RCC_OK)
    st = rcc_preprocess_load(model_dir, rcc_clip_get_config(ctx->model)->vision.image_size,
                             &ctx->preprocess);
  if (st == RCC_OK &&
      (ctx->preprocess.crop_height != rcc_clip_get_config(ctx->model)->vision.image_size ||
       ctx->preprocess.crop_width != rcc_clip_get_config(ctx->model)->vision.image_size))
    st = rcc_fail(RCC_ERR_FORMAT,
                  "%s/preprocessor_config.json: crop size %dx%d does not match the model's "
                  "image_size %d",
                  model_dir, ctx->preprocess.crop_height, ctx->preprocess.crop_width,
                  rcc_clip_get_config(ctx->model)->vision.image_size);
  if (st != RCC_OK) rcc_eval_ctx_close(ctx);
  return st;
}

void rcc_eval_ctx_close(rcc_eval_ctx_t *ctx) {
  rcc_clip_free(ctx->model);
  rcc_tokenizer_free(ctx->tokenizer);
  ctx->model = NULL;
  ctx->tokenizer = NULL;
}

void rcc_eval_normalize_rows(float *x, int n, int d) {
  for (int i = 0; i < n; i++) {
    float *r = x + (size_t)i * d;
    double ss = 0.0;
    for (int j = 0; j < d; j++)
      ss += (double)r[j] * r[j];
    if (ss <= 0.0) continue;
    float inv = (float)(1.0 / sqrt(ss));
    for (int j = 0; j < d; j++)
      r[j] *= inv;
  }
}

rcc_status_t rcc_eval_text_features(rcc_eval_ctx_t *ctx, const char *const *texts, int n,
                                    bool normalize, float *out) {
  const rcc_clip_config_t *cfg = rcc_clip_get_config(ctx->model);
  const int T = cfg->text.max_position_embeddings, P = cfg->projection_dim;
  int32_t *ids = malloc((size_t)ctx->batch * T * sizeof *ids);
  if (!ids) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  rcc_status_t st = RCC_OK;
  for (int start = 0; start < n && st == RCC_OK; start += ctx->batch) {
    int b = n - start < ctx->batch ? n - start : ctx->batch;
    for (int i = 0; i < b && st == RCC_OK; i++) {
      int len;
      st = rcc_tokenizer_encode(ctx->tokenizer, texts[start + i], T, ids + (size_t)i * T, &len);
    }
    if (st == RCC_OK) st = rcc_clip_text_features(ctx->model, ids, b, T, out + (size_t)start * P);
  }
  free(ids);
  if (st == RCC_OK && normalize) rcc_eval_normalize_rows(out, n, P);
  return st;
}

/* Runs the vision tower over n images produced by `load(i)`, ctx->batch at a time. */
typedef rcc_status_t (*image_loader_t)(const void *src, int i, rcc_image_t *img);

/* pixels (b, 3, S, S) of images start .. start+b-1 from `load`, preprocessed. */
static rcc_status_t load_pixels(rcc_eval_ctx_t *ctx, image_loader_t load, const void *src,
                                int start, int b, float *pixels) {
  const size_t S = (size_t)rcc_clip_get_config(ctx->model)->vision.image_size;
  rcc_status_t st = RCC_OK;
  for (int i = 0; i < b && st == RCC_OK; i++) {
    rcc_image_t img = {0};
    st = load(src, start + i, &img);
    if (st == RCC_OK) st = rcc_preprocess_image(&ctx->preprocess, &img, pixels + i * 3 * S * S);
    rcc_image_free(&img);
  }
  return st;
}

static rcc_status_t image_features(rcc_eval_ctx_t *ctx, image_loader_t load, const void *src, int n,
                                   bool normalize, float *out) {
  const rcc_clip_config_t *cfg = rcc_clip_get_config(ctx->model);
  const int S = cfg->vision.image_size, P = cfg->projection_dim;
  const size_t per_image = (size_t)3 * S * S;
  if (cfg->vision.num_channels != 3)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "vision tower with %d channels: image preprocessing "
                    "produces RGB (3 channels)",
                    cfg->vision.num_channels);
  float *pixels = malloc((size_t)ctx->batch * per_image * sizeof *pixels);
  if (!pixels) return rcc_fail(RCC_ERR_NOMEM, "out of memory for a batch of %d images", ctx->batch);
  rcc_status_t st = RCC_OK;
  for (int start = 0; start < n && st == RCC_OK; start += ctx->batch) {
    int b = n - start < ctx->batch ? n - start : ctx->batch;
    st = load_pixels(ctx, load, src, start, b, pixels);
    if (st == RCC_OK) st = rcc_clip_image_features(ctx->model, pixels, b, out + (size_t)start * P);
  }
  free(pixels);
  if (st == RCC_OK && normalize) rcc_eval_normalize_rows(out, n, P);
  return st;
}

typedef struct {
  const rcc_dataset_t *ds;
  const int *idx;
} dataset_src_t;

static rcc_status_t load_dataset_image(const void *src, int i, rcc_image_t *img) {
  const dataset_src_t *d = src;
  return rcc_dataset_image(d->ds, d->idx[i], img);
}

static rcc_status_t load_image_file(const void *src, int i, rcc_image_t *img) {
  const char *const *paths = src;
  return rcc_image_load(paths[i], img);
}

rcc_status_t rcc_eval_dataset_features(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds, const int *idx,
                                       int n, bool normalize, float *out) {
  dataset_src_t src = {ds, idx};
  return image_features(ctx, load_dataset_image, &src, n, normalize, out);
}

rcc_status_t rcc_eval_dataset_pixels(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds, const int *idx,
                                     int n, float *pixels) {
  if (rcc_clip_get_config(ctx->model)->vision.num_channels != 3)
    return rcc_fail(RCC_ERR_UNSUPPORTED, "image preprocessing produces RGB (3 channels) only");
  dataset_src_t src = {ds, idx};
  return load_pixels(ctx, load_dataset_image, &src, 0, n, pixels);
}

rcc_status_t rcc_eval_image_file_features(rcc_eval_ctx_t *ctx, const char *const *paths, int n,
                                          bool normalize, float *out) {
  return image_features(ctx, load_image_file, paths, n, normalize, out);
}
