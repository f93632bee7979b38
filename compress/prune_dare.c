/* DARE (Yu et al. 2024, "Language Models are Super Mario"): drop each delta parameter
 * W - W_base with probability p and rescale the survivors by 1/(1-p), so that the expected
 * delta is unchanged. The random stream is counter based (splitmix64 evaluated at the
 * entry's index) so the result depends on the seed alone, not on the thread count. */
#include <stdlib.h>

#include "compress/prune.h"

/* The i-th output of splitmix64 seeded with `seed` (its state after i+1 steps, mixed). */
static inline uint64_t splitmix64_at(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

rcc_status_t rcc_prune_dare(float *W, const float *W_base, uint8_t *mask, int m, int n, double p,
                            uint64_t seed) {
  const char *where = "prune_dare.c: rcc_prune_dare";
  if (!W || !W_base || !mask || m < 1 || n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: need W, W_base, mask and m, n >= 1 (got %d x %d)", where, m,
                    n);
  if (!(p >= 0.0 && p < 1.0))
    return rcc_fail(RCC_ERR_ARG, "%s: drop rate p = %g outside [0, 1)", where, p);
  const int64_t numel = (int64_t)m * n;
  const double scale = 1.0 / (1.0 - p);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < numel; i++) {
    /* 53 random bits -> u uniform in [0, 1); drop when u < p. */
    const double u = (double)(splitmix64_at(seed, (uint64_t)i) >> 11) * 0x1.0p-53;
    const double base = (double)W_base[i];
    if (u < p) {
      mask[i] = 0;
      W[i] = W_base[i];
    } else {
      mask[i] = 1;
      W[i] = (float)(base + ((double)W[i] - base) * scale);
    }
  }
  return RCC_OK;
}
