/* CLIPModel (Hugging Face layout) in float32 on any backend: vision tower, text tower,
 * projections and logit scale, loaded from a model directory (config.json +
 * model.safetensors). Inputs and outputs of the public calls are host arrays. */
#pragma once
#include <stdint.h>

#include "backend/backend.h"
#include "common/status.h"

typedef struct {
  int hidden_size, intermediate_size, num_layers, num_heads;
  float layer_norm_eps;
  rcc_activation_t act;
  /* vision tower only */
  int image_size, patch_size, num_channels;
  /* text tower only */
  int vocab_size, max_position_embeddings;
  int eos_token_id; /* 2 means HF's legacy pooling: argmax of input_ids */
  int bos_token_id, pad_token_id;
} rcc_clip_tower_config_t;

typedef struct {
  rcc_clip_tower_config_t vision, text;
  int projection_dim;
  float logit_scale_init;
} rcc_clip_config_t;

/* Parses a CLIPModel config.json (vision_config, text_config, projection_dim, ...) with
 * transformers' defaults for absent keys; errors name the file and the key. */
rcc_status_t rcc_clip_config_load(const char *config_json_path, rcc_clip_config_t *out);
/* The same from text; `source` names it in messages. */
rcc_status_t rcc_clip_config_parse(const char *json_text, const char *source,
                                   rcc_clip_config_t *out);

typedef struct rcc_clip_model rcc_clip_model_t;

/* `path`: a Hugging Face model directory, or a packed.safetensors file written by
 * rcc-dist (config in its metadata; sparse and low-rank layers computed as such). */
rcc_status_t rcc_clip_load(const char *path, rcc_backend_t be, rcc_clip_model_t **out);
void rcc_clip_free(rcc_clip_model_t *m);
const rcc_clip_config_t *rcc_clip_get_config(const rcc_clip_model_t *m);

/* pixels (B, C, H, W) as CLIPImageProcessor's pixel_values -> out (B, projection_dim):
 * what HF's get_image_features returns (projected, not normalized). */
rcc_status_t rcc_clip_image_features(rcc_clip_model_t *m, const float *pixels, int B, float *out);
/* ids (B, T) token ids, T <= max_position_embeddings, padded as HF's tokenizer does ->
 * out (B, projection_dim): what get_text_features returns. */
rcc_status_t rcc_clip_text_features(rcc_clip_model_t *m, const int32_t *ids, int B, int T,
                                    float *out);
/* exp(logit_scale): the factor HF applies to cosine similarities. */
float rcc_clip_logit_scale(const rcc_clip_model_t *m);

/* Every linear layer of both towers and the two projections, in HF parameter order
 * (vision encoder, visual_projection, text encoder, text_projection). */
#include "model/linear.h"
int rcc_clip_num_linears(const rcc_clip_model_t *m);
rcc_linear_t *rcc_clip_linear(rcc_clip_model_t *m, int i);

/* Parameter counts as stored in the checkpoint: all, those of linear layers (weights and
 * biases), and embeddings (token, position, class, patch). */
typedef struct {
  int64_t total, linear, embeddings;
} rcc_clip_param_counts_t;
rcc_clip_param_counts_t rcc_clip_count_params(const rcc_clip_model_t *m);

/* Called with the input x (N, in_features), in backend memory, of every linear layer just
 * before it runs; calibration uses it to accumulate statistics. A non-OK status stops the
 * forward. q, k and v of one attention block see the same x. */
typedef rcc_status_t (*rcc_clip_input_hook_t)(void *ctx, const rcc_linear_t *lin, const float *x,
                                              int N);
void rcc_clip_set_input_hook(rcc_clip_model_t *m, rcc_clip_input_hook_t hook, void *ctx);

/* Replaces what linear layer i computes with y = x S^T + (x V^T) U^T + b: S (out, in) host
 * array or NULL, U (out, rank) and V (rank, in) host arrays when rank > 0. The arrays are
 * copied into model-owned backend memory; the bias is kept. */
rcc_status_t rcc_clip_replace_linear(rcc_clip_model_t *m, int i, const float *S, int rank,
                                     const float *U, const float *V);
/* Copies the effective dense weight of layer i, S + U V, into host memory W (out, in). */
rcc_status_t rcc_clip_linear_dense(rcc_clip_model_t *m, int i, float *W);

/* The tensors that are not linear weights and that training may change, by HF name: the
 * bias of every linear layer ("vision_model.encoder.layers.0.mlp.fc1.bias") and the weight
 * and bias of every LayerNorm (pre_layrnorm, layer_norm1, layer_norm2, post_layernorm,
 * final_layer_norm). values are host arrays of count floats, copied into model-owned
 * backend memory. RCC_ERR_ARG for another name or a wrong count. */
rcc_status_t rcc_clip_set_tensor(rcc_clip_model_t *m, const char *name, const float *values,
                                 int64_t count);
/* The current value of such a tensor into host memory out (count floats). */
rcc_status_t rcc_clip_get_tensor(rcc_clip_model_t *m, const char *name, float *out, int64_t count);
/* Every tensor set by rcc_clip_set_tensor back to the value in the model's file. */
void rcc_clip_reset_tensors(rcc_clip_model_t *m);

/* A host copy of one such tensor, and a list of them: what distillation changed, carried
 * through checkpoints into the outputs. */
typedef struct {
  char name[160];
  int64_t count;
  float *values; /* (count) */
} rcc_clip_tensor_t;

typedef struct {
  rcc_clip_tensor_t *items;
  int n;
} rcc_clip_tensors_t;

/* Adds a copy of values under name, or overwrites the entry of that name. */
rcc_status_t rcc_clip_tensors_put(rcc_clip_tensors_t *l, const char *name, const float *values,
                                  int64_t count);
const rcc_clip_tensor_t *rcc_clip_tensors_find(const rcc_clip_tensors_t *l, const char *name);
void rcc_clip_tensors_free(rcc_clip_tensors_t *l);
/* rcc_clip_set_tensor for every entry of l. */
rcc_status_t rcc_clip_set_tensors(rcc_clip_model_t *m, const rcc_clip_tensors_t *l);
