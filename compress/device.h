/* The nullu, alphaedit and dare kernels of compress/ on a compute backend (backend.h): twins
 * of rcc_lowrank_svd, rcc_lowrank_whitened, rcc_alpha_closed_form, rcc_prune_magnitude and
 * rcc_prune_wanda with the same arguments and meaning, the backend first. Inputs and
 * outputs are host arrays, as the stages own them; each call moves its data to the backend
 * and back. The host functions stay the CPU path: these are for `backend: cuda` (and for
 * tests, through the CPU backend's ops).
 *
 * Where the twins may differ:
 *   lowrank   the device SVD is the exact one in float64 for every size (no randomized
 *             path, and the host's svd method computes in float32), so U V and, near a tie
 *             of the energy rule, the rank can differ by that rounding;
 *   alpha     sums in another order: alpha within ~1e-12 relative;
 *   wanda     the backend ranks float32 scores, rounded from the host's float64 products:
 *             two scores that round to the same float are ordered by index, so a mask can
 *             differ where such a pair straddles the cut (never seen on random data).
 *   magnitude identical masks and weights (|W| is exact in float32; the element-wise
 *             passes after the selection run on the host, as in the host twin). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "backend/backend.h"
#include "compress/lowrank.h"
#include "compress/prune.h"

/* rcc_lowrank_svd on `be` (discarded_energy from the float64 spectrum). */
rcc_status_t rcc_lowrank_svd_on(rcc_backend_t be, const float *W, int m, int n,
                                const rcc_rank_rule_t *rule, rcc_lowrank_t *out,
                                double *discarded_energy);
/* rcc_lowrank_whitened on `be`: same damping (damp * mean(diag H) on the diagonal), same
 * triangular solve for V. */
rcc_status_t rcc_lowrank_whitened_on(rcc_backend_t be, const float *W, int m, int n,
                                     const double *H, double damp, const rcc_rank_rule_t *rule,
                                     rcc_lowrank_t *out);
/* rcc_alpha_closed_form on `be`: same degenerate-row rule (rcc_alpha_from_forms). */
rcc_status_t rcc_alpha_closed_form_on(rcc_backend_t be, const float *W, const float *W_hat, int m,
                                      int n, const double *H, double lambda, float *alpha);
/* rcc_prune_magnitude on `be` (per layer or N:M; m * n below 2^31). */
rcc_status_t rcc_prune_magnitude_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                    double sparsity, rcc_nm_t nm, bool rescale_rows);
/* rcc_prune_wanda on `be`. */
rcc_status_t rcc_prune_wanda_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                const double *col_sq, double sparsity, rcc_nm_t nm);

/* ---- shared by the *_device.c files ---- */

/* The backend buffers of one call, released together whatever path the call leaves by. */
enum { RCC_DEV_BUFS_MAX = 8 };
typedef struct {
  rcc_backend_t be;
  void *p[RCC_DEV_BUFS_MAX];
  int count;
} rcc_dev_bufs_t;

/* A buffer of `bytes` on the backend, or NULL with rcc_fail. */
static inline void *rcc_dev_alloc(rcc_dev_bufs_t *b, size_t bytes) {
  if (b->count == RCC_DEV_BUFS_MAX) {
    rcc_fail(RCC_ERR_ARG, "compress/device.h: more than %d buffers in one call", RCC_DEV_BUFS_MAX);
    return NULL;
  }
  void *p = rcc_backend_alloc(b->be, bytes ? bytes : 1);
  if (p) b->p[b->count++] = p;
  return p;
}

static inline void rcc_dev_release(rcc_dev_bufs_t *b) {
  for (int i = 0; i < b->count; i++)
    rcc_backend_release(b->be, b->p[i]);
  b->count = 0;
}
