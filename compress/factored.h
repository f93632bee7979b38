/* What one compressed linear layer stores: W ~ diag(alpha) (S + U V).
 * S is the sparse part (zeros where `mask` is 0) or absent, U V the low-rank part or
 * absent, alpha the per-output-channel scale or absent. Host memory, owned. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
  int m, n;      /* out_features, in_features */
  float *S;      /* (m, n) or NULL */
  uint8_t *mask; /* (m, n), 1 = kept; NULL when S is dense (or absent) */
  int rank;
  float *U;     /* (m, rank) */
  float *V;     /* (rank, n) */
  float *alpha; /* (m) or NULL */
} rcc_factored_t;

/* A dense layer: S = a copy of W, nothing else. */
rcc_status_t rcc_factored_init_dense(rcc_factored_t *f, const float *W, int m, int n);
void rcc_factored_free(rcc_factored_t *f);
rcc_status_t rcc_factored_copy(rcc_factored_t *dst, const rcc_factored_t *src);
/* Swaps the contents of a and b (used to commit or roll back an attempt). */
void rcc_factored_swap(rcc_factored_t *a, rcc_factored_t *b);

/* Nonzeros kept in S: nnz(mask), m*n for a dense S, 0 without S. */
int64_t rcc_factored_nnz(const rcc_factored_t *f);
/* Weight parameters as stored: nnz(S) + rank*(m+n) + (alpha ? m : 0). Biases are not
 * included: the caller counts them, compressed or not. */
int64_t rcc_factored_params(const rcc_factored_t *f);
/* W (m, n) = diag(alpha) (S + U V). */
void rcc_factored_dense(const rcc_factored_t *f, float *W);
/* The parts the model computes with, alpha folded in: S' = diag(alpha) S (NULL when S is
 * absent) and U' = diag(alpha) U. Caller frees *S_out and *U_out. */
rcc_status_t rcc_factored_folded(const rcc_factored_t *f, float **S_out, float **U_out);
/* ||W - dense(f)||_F / ||W||_F. */
double rcc_factored_rel_error(const rcc_factored_t *f, const float *W);
