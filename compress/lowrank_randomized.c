/* Randomized SVD (Halko, Martinsson, Tropp 2011): when the rank rule can keep only a small
 * top part of a large layer's spectrum, a sketch of k + p columns costs O(m n (k + p)) per
 * pass instead of the O(m n min(m, n)) of a full SVD. The sketch's Gaussian draws and the
 * float entry point; the kernel itself is in svd_template.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/lowrank.h"

/* splitmix64: a small, well-mixed generator; the sketch only needs independent draws. */
static uint64_t next_u64(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Box-Muller, two draws at a time. */
void rcc_fill_gaussian(double *x, size_t count, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < count; i += 2) {
    double u1 = ((double)(next_u64(&s) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1]: log is finite */
    double u2 = (double)(next_u64(&s) >> 11) * 0x1.0p-53;
    double radius = sqrt(-2.0 * log(u1));
    x[i] = radius * cos(2.0 * M_PI * u2);
    if (i + 1 < count) x[i + 1] = radius * sin(2.0 * M_PI * u2);
  }
}

rcc_status_t rcc_lowrank_svd_randomized(const float *W, int m, int n, int k, int oversample,
                                        int power_iters, uint64_t seed, double *sigma_out,
                                        rcc_lowrank_t *out) {
  if (!W || !sigma_out || !out)
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_randomized.c: W, sigma_out or out is NULL");
  if (m < 1 || n < 1 || k < 1 || k > (m < n ? m : n))
    return rcc_fail(RCC_ERR_ARG, "compress/lowrank_randomized.c: rank %d for a %d x %d matrix", k,
                    m, n);
  double *A = rcc_lowrank_to_double(W, m, n);
  double *U = malloc((size_t)m * k * sizeof *U);
  double *V = malloc((size_t)k * n * sizeof *V);
  rcc_status_t st = RCC_OK;
  if (!A || !U || !V)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/lowrank_randomized.c: rank %d of %d x %d", k, m, n);
  else
    st = rcc_svd_randomized_d(A, m, n, k, oversample, power_iters, seed, sigma_out, U, V);
  if (st == RCC_OK) {
    for (size_t i = 0; i < (size_t)m; i++)
      for (int j = 0; j < k; j++)
        U[i * k + j] *= sigma_out[j];
    st = rcc_lowrank_from_double(out, m, n, k, U, V);
  }
  free(A);
  free(U);
  free(V);
  return st;
}
