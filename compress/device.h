/* The nullu, alphaedit and dare kernels of compress/ on a compute backend (backend.h): twins
 * of rcc_lowrank_svd, rcc_lowrank_whitened, rcc_lowrank_residual, rcc_alpha_closed_form,
 * rcc_null_space_projector + rcc_alpha_closed_form_null_space, rcc_prune_magnitude,
 * rcc_prune_threshold, rcc_prune_wanda and rcc_prune_sparsegpt with the same arguments and
 * meaning, the backend first. Inputs and
 * outputs are host arrays, as the stages own them; each call moves its data to the backend
 * and back. The host functions stay the CPU path: these are for `backend: cuda` (and for
 * tests, through the CPU backend's ops).
 *
 * Where the twins may differ:
 *   lowrank   the device SVD is the exact one in float64 for every size (no randomized
 *             path, and the host's svd method computes in float32), so U V and, near a tie
 *             of the energy rule, the rank can differ by that rounding (residual too: its
 *             R = W - S is the host's to the bit);
 *   alpha     sums in another order: alpha within ~1e-12 relative;
 *   null space the eigenvectors come from an SVD of the PSD H (no eigensolver on the
 *             backend) and W_hat Q as W_hat - W_hat P in one GEMM: alpha within ~1e-10
 *             relative; a kept/dropped eigenvalue flips only at a tie of the energy rule;
 *   sparsegpt the inverse-Hessian factor by chol -> inverse -> chol (the host's route is
 *             a cheaper one to the same unique factor) and other GEMM sums: weights within
 *             ~1e-9 relative; unstructured blocks select on the host in float64 and N:M
 *             groups in the sweep, so masks flip only at a saliency tie within that
 *             rounding (never seen on random data);
 *   wanda     the backend ranks float32 scores, rounded from the host's float64 products:
 *             two scores that round to the same float are ordered by index, so a mask can
 *             differ where such a pair straddles the cut (never seen on random data).
 *   magnitude identical masks and weights (|W| is exact in float32; the element-wise
 *             passes after the selection run on the host, as in the host twin); the same
 *             for the global scope's threshold step. */
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
/* rcc_lowrank_residual on `be`: U V fitted to W - S, whitened by H or (H NULL) plain. */
rcc_status_t rcc_lowrank_residual_on(rcc_backend_t be, const float *W, const float *S, int m, int n,
                                     const double *H, double damp, const rcc_rank_rule_t *rule,
                                     rcc_lowrank_t *out);
/* rcc_null_space_projector(H, n, keep_energy, P, null_dim) then
 * rcc_alpha_closed_form_null_space with that P, on `be` (P never leaves the backend). */
rcc_status_t rcc_alpha_null_space_on(rcc_backend_t be, const float *W, const float *W_hat, int m,
                                     int n, const double *H, double keep_energy, double lambda,
                                     float *alpha, int *null_dim);
/* rcc_prune_threshold on `be` (global scope: the threshold is chosen over all layers). */
rcc_status_t rcc_prune_threshold_on(rcc_backend_t be, float *W, uint8_t *mask, int64_t numel,
                                    float threshold);
/* rcc_prune_sparsegpt on `be` (same damping, block size, selection and tie order). */
rcc_status_t rcc_prune_sparsegpt_on(rcc_backend_t be, float *W, uint8_t *mask, int m, int n,
                                    const double *H, double sparsity, rcc_nm_t nm, int block_size,
                                    double damp_percent);

/* ---- shared by the *_device.c files ---- */

/* The backend buffers of one call, released together whatever path the call leaves by. */
enum { RCC_DEV_BUFS_MAX = 12 };
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
