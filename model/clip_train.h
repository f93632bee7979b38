/* A trainable copy of a CLIP model for distillation: float32 in the memory of any backend
 * with training ops (backend_train.h): cpu, cuda.
 * Forward passes that keep their activations, backward passes that accumulate the
 * gradients of the trainable parameters (per-channel alpha of compressed layers, biases,
 * LayerNorms, U and V of low-rank parts, the kept values of sparse parts) given the
 * gradient of the projected embeddings. Patch, token and position embeddings, the
 * logit scale and the weights of layers left dense stay frozen.
 *
 * Memory: inputs (pixels, token ids) are host arrays, uploaded by the model; embeddings,
 * their gradients, params and grads are in the backend's memory (host memory on the cpu
 * backend, where nothing is copied). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "common/status.h"
#include "compress/factored.h"
#include "model/clip.h"

typedef struct rcc_clip_train rcc_clip_train_t;

typedef struct {
  bool alpha;         /* per-output-channel scale of every compressed linear layer */
  bool bias;          /* biases of all linear layers (both towers) */
  bool layernorm;     /* weights and biases of every LayerNorm */
  bool lowrank;       /* U and V of low-rank layers */
  bool sparse_values; /* the kept entries of S; the mask is frozen (pruned entries stay 0, and
                         their gradient is 0) */
} rcc_clip_trainable_t;

typedef enum {
  RCC_PARAM_ALPHA,
  RCC_PARAM_BIAS,
  RCC_PARAM_LN_WEIGHT,
  RCC_PARAM_LN_BIAS,
  RCC_PARAM_U,
  RCC_PARAM_V,
  RCC_PARAM_S
} rcc_param_kind_t;

typedef struct {
  /* HF-style: "vision_model.encoder.layers.0.mlp.fc1.alpha", "...fc1.bias",
   * "...layer_norm1.weight", "...fc1.U", "...fc1.V", "...fc1.weight" (S values) */
  char name[160];
  rcc_param_kind_t kind;
  int layer;             /* linear layer index (rcc_clip_linear order) or -1 */
  int64_t offset, count; /* into the flat params/grads arrays. An S group holds the whole
                            (m,n) matrix, pruned entries included: they stay 0 and so do
                            their gradients (the forward re-applies the mask) */
} rcc_clip_param_group_t;

/* model_dir: the original HF model directory (config.json + model.safetensors).
 * layers: num_layers (== the number of linear layers, rcc_clip_linear order: per vision
 * block k, v, q, out_proj, fc1, fc2, then visual_projection, the text blocks,
 * text_projection) pointers; NULL = the layer stays dense as in the file (only its bias
 * may train); non-NULL = that compressed form, copied (alpha NULL means alpha = 1 and, when
 * alpha trains, alpha starts at 1; S NULL: no sparse part; mask NULL with S: S dense;
 * rank 0: no U V). The layers' arrays are host memory, copied into the backend's. */
rcc_status_t rcc_clip_train_create(const char *model_dir, rcc_backend_t be,
                                   rcc_factored_t *const *layers, int num_layers,
                                   rcc_clip_trainable_t which, rcc_clip_train_t **out);
void rcc_clip_train_free(rcc_clip_train_t *t);
const rcc_clip_config_t *rcc_clip_train_config(const rcc_clip_train_t *t);

/* All trainable parameters in ONE flat float array, gradients in a second one of the same
 * layout (one buffer for an optimizer and an all-reduce), both in backend memory. */
int64_t rcc_clip_train_num_params(const rcc_clip_train_t *t);
float *rcc_clip_train_params(rcc_clip_train_t *t);
float *rcc_clip_train_grads(rcc_clip_train_t *t);
rcc_status_t rcc_clip_train_zero_grads(rcc_clip_train_t *t);
int rcc_clip_train_num_groups(const rcc_clip_train_t *t);
const rcc_clip_param_group_t *rcc_clip_train_group(const rcc_clip_train_t *t, int g);

/* Forward keeping activations; pixels (B, C, S, S) host; emb (B, projection_dim, backend
 * memory) = what get_image_features returns.
 * Values written into params between steps take effect on the next forward. */
rcc_status_t rcc_clip_train_image_forward(rcc_clip_train_t *t, const float *pixels, int B,
                                          float *emb);
/* Accumulates (+=) d loss / d params into grads, given d_emb (B, projection_dim) for the
 * last image forward (backend memory). */
rcc_status_t rcc_clip_train_image_backward(rcc_clip_train_t *t, const float *d_emb);
/* ids (B,T) host, padded as HF's tokenizer does; emb backend memory; attention is causal (as
 * rcc_clip_text_features: the pooled EOS token never sees the padding after it, so no padding mask
 * is needed). */
rcc_status_t rcc_clip_train_text_forward(rcc_clip_train_t *t, const int32_t *ids, int B, int T,
                                         float *emb);
rcc_status_t rcc_clip_train_text_backward(rcc_clip_train_t *t, const float *d_emb);

/* exp(logit_scale) of the model (frozen). */
float rcc_clip_train_logit_scale(const rcc_clip_train_t *t);
/* Bytes of activations kept for the backward by the last forwards (both towers). */
size_t rcc_clip_train_activation_bytes(const rcc_clip_train_t *t);

/* Writes the current values of compressed linear layer i into f, which must have the
 * layer's shape and form (alpha allocated with malloc if it was NULL and alpha trains; U, V,
 * S values; host memory, downloaded). Error for a layer created dense. */
rcc_status_t rcc_clip_train_export_layer(const rcc_clip_train_t *t, int i, rcc_factored_t *f);
/* The current value of a tensor that is not a linear weight, by HF name
 * ("text_model.final_layer_norm.weight", "vision_model.encoder.layers.0.mlp.fc1.bias",
 * embeddings), and its element count; NULL if unknown. Backend memory: on a device backend
 * only the trainable tensors (parameter groups) are found, frozen ones give NULL. */
const float *rcc_clip_train_tensor(const rcc_clip_train_t *t, const char *name, int64_t *count);
