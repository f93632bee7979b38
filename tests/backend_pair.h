/* Shared helpers of the backend tests: the CPU backend and, for the gpu-labelled programs,
 * the first CUDA device as CMocka group fixtures; host buffers of random values or NaN from
 * one fixed-seed generator; device copies, NaN-poisoned device buffers (an entry a kernel
 * forgets to write then fails its comparison) and downloads that start from NaN. Every
 * helper fails the running test (assert) instead of returning NULL. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

/* Set by the group setups; rcc_test_gpu stays NULL in CPU-only programs. */
extern rcc_backend_t rcc_test_cpu, rcc_test_gpu;

/* CMocka group setup: the "cpu" backend. */
int rcc_test_open_cpu(void **state);
/* CMocka group setup: "cpu" and "cuda:0"; prints "comparing <gpu> with <cpu>". */
int rcc_test_open_cpu_and_gpu(void **state);
/* CMocka group teardown for either setup. */
int rcc_test_close_backends(void **state);
/* 77 after printing "skipped: no GPU" when the build has no CUDA or no GPU is visible (a
 * gpu test's main returns it: CTest counts the test as skipped), else 0. */
int rcc_test_gpu_missing(void);

void *rcc_test_malloc(size_t bytes);
/* Uniform in [lo, hi), from the program's one fixed-seed generator. */
float *rcc_test_random_floats(size_t n, float lo, float hi);
/* Uniform in [-1, 1), with random bits below float precision too. */
double *rcc_test_random_doubles(size_t n);
float *rcc_test_nan_floats(size_t n);

/* A device copy of host data (on rcc_test_gpu). */
void *rcc_test_to_gpu(const void *host, size_t bytes);
/* Device buffers of n NaNs. */
float *rcc_test_gpu_nan_floats(size_t n);
double *rcc_test_gpu_nan_doubles(size_t n);
/* Waits for the GPU, then downloads n floats into a fresh host buffer that starts as NaN. */
float *rcc_test_from_gpu(const float *d, size_t n);
/* The same for any data: the host buffer starts as 0xFF bytes (NaN for floats and doubles,
 * not a mask value). */
void *rcc_test_from_gpu_bytes(const void *d, size_t bytes);

/* Masks of n bytes, all 0xAB (neither 0 nor 1: an entry the op forgot to write fails), on
 * the host and on rcc_test_gpu. */
uint8_t *rcc_test_poisoned_mask(size_t n);
uint8_t *rcc_test_gpu_poisoned_mask(size_t n);

/* max |got - want| / max |want| over n doubles; a NaN in either gives infinity. */
double rcc_test_normalized_error_f64(const double *got, const double *want, size_t n);
/* Prints the error against its bound; fails the test unless err <= bound (NaN fails). */
void rcc_test_expect_below(double err, double bound, const char *what);

/* The operands of one strided-batched GEMM test in floats: op(A) (M,K), op(B) (K,N) and C
 * (M,N) with rows padded by `pad` and a gap after each matrix, so that a write outside the
 * matrices shows; with shared_b one B serves every batch entry (stride 0). */
typedef struct {
  int lda, ldb, ldc;
  int64_t sa, sb, sc;
  size_t na, nb, nc;
} rcc_test_gemm_layout_t;
rcc_test_gemm_layout_t rcc_test_gemm_layout(bool ta, bool tb, int M, int N, int K, int pad,
                                            int batch, bool shared_b);
