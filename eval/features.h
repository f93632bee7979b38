/* Batched CLIP features for evaluation: texts through the tokenizer, images through
 * CLIPImageProcessor's preprocessing, both through the model; optionally L2-normalized. */
#pragma once
#include <stdbool.h>

#include "io/dataset.h"
#include "io/image.h"
#include "model/clip.h"
#include "model/tokenizer.h"

typedef struct {
  rcc_clip_model_t *model;
  rcc_tokenizer_t *tokenizer;
  rcc_preprocess_t preprocess;
  int batch; /* images or texts per forward call */
} rcc_eval_ctx_t;

/* Loads model, tokenizer and preprocessor config from one HF directory, or the model from
 * a packed.safetensors file and the rest from its folder (or the run's compressed/). */
rcc_status_t rcc_eval_ctx_open(rcc_eval_ctx_t *ctx, const char *model_path, rcc_backend_t be,
                               int batch);
void rcc_eval_ctx_close(rcc_eval_ctx_t *ctx);

/* out (n, projection_dim): text features of texts[0..n), padded to max_position_embeddings. */
rcc_status_t rcc_eval_text_features(rcc_eval_ctx_t *ctx, const char *const *texts, int n,
                                    bool normalize, float *out);
/* out (n, projection_dim): image features of dataset samples idx[0..n). */
rcc_status_t rcc_eval_dataset_features(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds,
                                       const int *idx, int n, bool normalize, float *out);
/* pixels (n, 3, S, S): samples idx[0..n) of ds preprocessed as the model expects
 * (CLIPImageProcessor), without running the model (training feeds its own forward). */
rcc_status_t rcc_eval_dataset_pixels(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds, const int *idx,
                                     int n, float *pixels);
/* out (n, projection_dim): image features of image files. */
rcc_status_t rcc_eval_image_file_features(rcc_eval_ctx_t *ctx, const char *const *paths, int n,
                                          bool normalize, float *out);
/* Scales each row of x (n, d) to unit L2 norm on the host. */
void rcc_eval_normalize_rows(float *x, int n, int d);
