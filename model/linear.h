/* A linear layer y = x W^T + b as the model computes it, named by its Hugging Face
 * parameter prefix ("vision_model.encoder.layers.0.self_attn.q_proj"). After compression
 * the layer computes y = x S^T + (x V^T) U^T + b, where S is the sparse part stored
 * densely with zeros (NULL when absent), U V the low-rank part (rank 0 when absent), and
 * any per-channel scaling alpha already folded into S and U. */
#pragma once
#include "backend/backend.h"

typedef struct {
  char name[128];
  int index; /* position in the model's list of linear layers */
  int out_features, in_features;
  float *weight; /* S or dense W (out_features, in_features), backend memory; may be NULL */
  float *bias;   /* (out_features) or NULL */
  int rank;
  float *U; /* (out_features, rank), backend memory */
  float *V; /* (rank, in_features), backend memory */
} rcc_linear_t;

/* y (N, out_features) = x (N, in_features) W^T + b. `scratch` holds N * rank floats in
 * backend memory (unused when rank is 0). */
rcc_status_t rcc_linear_forward(rcc_backend_t be, const rcc_linear_t *lin, const float *x, int N,
                                float *y, float *scratch);
