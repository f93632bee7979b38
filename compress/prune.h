/* Pruning kernels of the `dare` stage (DESIGN.md section 2) on one matrix, pure CPU:
 * magnitude (per layer, global threshold, N:M, row-L1 rescale), real DARE on deltas,
 * Wanda, SparseGPT, plus the sparsity schedules and the mask helpers they share.
 *
 * Conventions: W is (m, n) row-major float32 with y = W x (row = output channel, column =
 * input feature). mask is (m, n) uint8, 1 = kept. Every function sets the pruned W entries
 * to exactly 0 (DARE: the pruned delta entries, so W = W_base there) and writes the mask.
 * Calibration statistics are float64: H = sum_x x x^T (n, n), col_sq[j] = sum_x x_j^2.
 * Ties between equal scores are broken by index: the lower (row-major) index is pruned
 * first, so results never depend on the thread count. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"

/* Keep n of every m consecutive inputs of each row; {0, 0} = unstructured. */
typedef struct {
  int n, m;
} rcc_nm_t;

enum {
  RCC_NM_MAX_M = 64,                 /* largest group accepted for N:M */
  RCC_SPARSEGPT_BLOCK_DEFAULT = 128, /* column block of the SparseGPT reference */
};
#define RCC_SPARSEGPT_DAMP_DEFAULT 0.01 /* damping fraction of mean(diag H), as `percdamp` */

#include "compress/schedule.h" /* rcc_schedule_t */

/* Sparsity to reach at `iteration` (1..iterations) of `iterations`, reaching `target` at
 * the last one: linear s_f t/T, cosine s_f (1 - cos(pi t/T)) / 2, cubic (Zhu & Gupta 2017)
 * s_f (1 - (1 - t/T)^3). All three are non-decreasing in t. Returns NaN (and records a
 * message) for an unknown schedule, target outside [0, 1) or iteration outside 1..T. */
double rcc_schedule_sparsity(rcc_schedule_t s, double target, int iteration, int iterations);

/* Per layer magnitude pruning. mask is in/out: entries already 0 stay pruned (initialise
 * it to all 1 for a dense layer). Unstructured: exactly floor(sparsity*m*n) entries end
 * pruned (more if the mask already held more), the smallest |W| first, ties by index.
 * nm.n > 0: N:M, sparsity is implied (1 - n/m) and only checked to be in [0, 1); in each
 * group the (m - n) smallest |W| are pruned, previously pruned entries counting first.
 * rescale_rows: each row's survivors are scaled so that its L1 norm equals the row's L1
 * norm before this call (rows pruned entirely stay 0). */
rcc_status_t rcc_prune_magnitude(float *W, uint8_t *mask, int m, int n, double sparsity,
                                 rcc_nm_t nm, bool rescale_rows);

/* One threshold over `count` layers (W[l] has numel[l] entries): the k-th smallest |W| in
 * 0-based sorted order with k = floor(sparsity * total), so that exactly k entries lie
 * below it when there is no tie at it. Exact (radix selection on the float bit patterns,
 * two passes, no copy of the weights). NaN weights -> RCC_ERR_NUMERIC. */
rcc_status_t rcc_magnitude_global_threshold(const float *const *W, const int64_t *numel, int count,
                                            double sparsity, float *threshold);

/* Prunes the entries with |W| < threshold; mask is in/out like rcc_prune_magnitude's. */
rcc_status_t rcc_prune_threshold(float *W, uint8_t *mask, int64_t numel, float threshold);

/* DARE (Yu et al. 2024): delta = W - W_base; each delta entry is dropped with probability
 * p by a counter-based splitmix64 stream (entry i uses the i-th output for `seed`, so the
 * result depends only on the seed, never on threads); survivors' delta is scaled by
 * 1/(1-p) in double: W = W_base + delta * (1 / (1 - p)); dropped entries get W = W_base.
 * mask (output) = delta kept. p in [0, 1). */
rcc_status_t rcc_prune_dare(float *W, const float *W_base, uint8_t *mask, int m, int n, double p,
                            uint64_t seed);

/* Wanda (Sun et al. 2023): score_ij = |W_ij| * sqrt(col_sq[j]); floor(sparsity * n) lowest
 * scores of each row pruned, or, for N:M, the (m - n) lowest of every group of m inputs of
 * each row. mask is an output. */
rcc_status_t rcc_prune_wanda(float *W, uint8_t *mask, int m, int n, const double *col_sq,
                             double sparsity, rcc_nm_t nm);

/* SparseGPT (Frantar & Alistarh 2023), in double: dead inputs (H_jj == 0) get H_jj = 1 and
 * W[:, j] = 0; damp_percent * mean(diag H) is added to the diagonal (a fraction: 0.01 is the
 * reference's default); Hinv = upper Cholesky factor of H^-1 (dpotrf + dtrtri, half the
 * flops of the reference's dpotrf, dpotri, dpotrf; same factor). Columns are processed in
 * blocks of block_size: unstructured, each block's mask prunes exactly
 * floor(sparsity * m * block_cols) entries of lowest W^2 / diag(Hinv)^2 over the whole
 * block (all rows); N:M (block_size must be a multiple of nm.m), at every group of m
 * columns each row prunes its (m - n) lowest scores, taken from the weights updated so
 * far. Then the OBS update column by column within the block and the lazy update of the
 * remaining columns (dgemm). H is not modified. H not positive definite after damping ->
 * RCC_ERR_NUMERIC. mask is an output. */
rcc_status_t rcc_prune_sparsegpt(float *W, uint8_t *mask, int m, int n, const double *H,
                                 double sparsity, rcc_nm_t nm, int block_size, double damp_percent);

/* ---- helpers shared by the kernels (prune_pattern.c) ------------------------------- */

/* Number of entries pruned out of `count` at `sparsity`: floor(sparsity * count), with a
 * 1e-6 allowance so that binary rounding (0.57 * 100 = 56.99999999999999) does not lose
 * one; at most count. */
int64_t rcc_prune_count(double sparsity, int64_t count);

/* RCC_OK when sparsity is in [0, 1) (NaN fails); `where` names the caller in the message. */
rcc_status_t rcc_sparsity_check(double sparsity, const char *where);

/* RCC_OK for {0, 0}, or 1 <= nm.n <= nm.m <= RCC_NM_MAX_M with nm.m dividing n_cols. */
rcc_status_t rcc_nm_check(rcc_nm_t nm, int n_cols, const char *where);

/* RCC_ERR_NUMERIC when x holds a NaN or an infinity. */
rcc_status_t rcc_check_finite_f32(const float *x, int64_t count, const char *where);
rcc_status_t rcc_check_finite_f64(const double *x, int64_t count, const char *where);

/* The argument checks of rcc_prune_wanda (shared with its device twin). */
rcc_status_t rcc_wanda_check(const float *W, const uint8_t *mask, int m, int n,
                             const double *col_sq, double sparsity, rcc_nm_t nm, const char *where);

/* The argument checks of rcc_prune_sparsegpt (shared with its device twin). */
rcc_status_t rcc_sparsegpt_check(const float *W, const uint8_t *mask, int m, int n, const double *H,
                                 double sparsity, rcc_nm_t nm, int block_size, double damp_percent,
                                 const char *where);

/* Number of kept (non-zero) mask entries. */
int64_t rcc_mask_count(const uint8_t *mask, int64_t numel);

/* The row-L1 rescale of magnitude pruning: l1 (m) = sum_j |W_ij| before pruning; after it,
 * rcc_prune_l1_rescale scales each row's survivors so that its L1 norm is l1 again (rows
 * pruned to nothing stay 0). In double, one rounding to float per weight. */
void rcc_prune_row_l1(const float *W, int m, int n, double *l1);
void rcc_prune_l1_rescale(float *W, int m, int n, const double *l1);

/* true when every group of nm.m consecutive entries of each of the m rows of an (m, n)
 * mask holds exactly nm.n kept entries. */
bool rcc_mask_is_nm(const uint8_t *mask, int m, int n, rcc_nm_t nm);

/* mask[i] = 0 for exactly the k entries of smallest (score[i], i), 1 for the others.
 * scratch holds `count` doubles; scores must not be NaN. */
void rcc_mask_lowest(uint8_t *mask, const double *score, int64_t count, int64_t k, double *scratch);

/* For each group of nm.m consecutive entries (count a multiple of nm.m, nm.n > 0):
 * mask 0 for the nm.m - nm.n entries of smallest (score, index), 1 for the others. */
void rcc_mask_nm(uint8_t *mask, const double *score, int64_t count, rcc_nm_t nm);
