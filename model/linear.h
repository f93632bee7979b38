/* A linear layer y = x W^T + b as the model computes it, named by its Hugging Face
 * parameter prefix ("vision_model.encoder.layers.0.self_attn.q_proj"). The compression
 * stages of later issues replace the dense W of these layers. */
#pragma once
#include "backend/backend.h"

typedef struct {
  char name[128];
  int out_features, in_features;
  float *weight; /* (out_features, in_features), backend memory */
  float *bias;   /* (out_features) or NULL */
} rcc_linear_t;

/* y (N, out_features) = x (N, in_features) W^T + b. */
rcc_status_t rcc_linear_forward(rcc_backend_t be, const rcc_linear_t *lin, const float *x, int N,
                                float *y);
