/* Low-rank kernels of the nullu stage, on one matrix: W (m, n) row-major float32 with
 * y = W x is approximated by U V, U (m, r) holding left singular vectors times singular
 * values and V (r, n) right singular vectors. Three methods: plain truncated SVD (exact
 * LAPACK gesdd, or randomized when only a small top part can be kept), SVD-LLM whitening by
 * the calibration statistics H = sum_x x x^T (n, n, float64), and OATS-style fitting of
 * the residual W - S that pruning left. The plain SVD computes in float, the methods that
 * use H in double; results are float. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
  int m, n, rank;
  float *U; /* (m, rank): left vectors times singular values */
  float *V; /* (rank, n) */
} rcc_lowrank_t;

/* Frees U and V and zeroes the struct; NULL is fine. */
void rcc_lowrank_free(rcc_lowrank_t *lr);
/* Keeps the leading `rank` components (1 <= rank <= lr->rank), in place: the singular
 * triplets are stored in descending order, so this is the best approximation of that rank. */
void rcc_lowrank_truncate(rcc_lowrank_t *lr, int rank);

typedef struct {
  double energy_threshold;     /* keep the smallest rank whose sum of sigma^2 >= this
                                  fraction of the total, in (0, 1] */
  double rank_reduction_ratio; /* cap: rank <= floor(ratio * min(m, n)), in (0, 1] */
  int min_rank;                /* >= 1; wins over the cap */
} rcc_rank_rule_t;

/* RCC_ERR_ARG with a message when a field is out of its range. */
rcc_status_t rcc_rank_rule_check(const rcc_rank_rule_t *rule);

/* The largest rank the rule can choose for min(m, n) = k:
 * min(k, max(min_rank, floor(ratio * k))). */
int rcc_rank_max(const rcc_rank_rule_t *rule, int k);

/* The rank the rule chooses. sigma holds singular values in descending order, at least the
 * first rcc_rank_max(rule, k) of them (no more are read); k = min(m, n); total_energy =
 * ||W||_F^2. The energy rank is capped, then raised to min_rank (never above k). When the
 * threshold is not reached within the cap, the cap is the answer. The rule must be valid. */
int rcc_rank_select(const double *sigma, int k, double total_energy, const rcc_rank_rule_t *rule);

/* Which SVD a truncation uses. AUTO: randomized when rcc_rank_max(rule, k) <= k / 4 and
 * k = min(m, n) >= 256 (only the top of the spectrum is needed), exact otherwise. */
typedef enum { RCC_SVD_AUTO, RCC_SVD_EXACT, RCC_SVD_RANDOMIZED } rcc_svd_path_t;

/* Truncated SVD of W under the rule, path AUTO. out is overwritten (free it with
 * rcc_lowrank_free). discarded_energy (may be NULL) = ||W||_F^2 - sum of the kept sigma^2,
 * which is ||W - U V||_F^2 up to rounding; ||W||_F^2 is computed exactly, not from the
 * (possibly partial) spectrum. Randomized settings: oversampling max(10, k / 2) for a
 * sketch of rank k = rcc_rank_max(rule, min(m, n)), 2 power iterations. */
rcc_status_t rcc_lowrank_svd(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                             rcc_lowrank_t *out, double *discarded_energy);
/* The same with the path chosen by the caller (tests, comparisons). */
rcc_status_t rcc_lowrank_svd_path(const float *W, int m, int n, const rcc_rank_rule_t *rule,
                                  rcc_svd_path_t path, rcc_lowrank_t *out,
                                  double *discarded_energy);

/* Randomized rank-k SVD (Halko, Martinsson, Tropp 2011, algorithms 4.4 and 5.1): a Gaussian
 * sketch of k + oversample columns from `seed`, power_iters rounds of W^T / W with a QR
 * after each product, then the exact SVD of the small projected matrix. sigma_out (k) gets
 * the approximate top singular values; out gets rank k. 1 <= k <= min(m, n). */
rcc_status_t rcc_lowrank_svd_randomized(const float *W, int m, int n, int k, int oversample,
                                        int power_iters, uint64_t seed, double *sigma_out,
                                        rcc_lowrank_t *out);

/* SVD-LLM (Wang et al. 2024): L = Cholesky factor of H + damp * mean(diag H) * I
 * (= L L^T), truncated SVD of W L under the rule (path AUTO; energies are those of W L,
 * i.e. of the outputs on the calibration data), U = U_r Sigma_r, V = V_r^T L^{-1} (by a
 * triangular solve, never forming L^{-1}). With damp = 0 this minimises
 * ||(W - U V) X||_F^2 over rank-r factorisations. H (n, n) symmetric, damp >= 0. */
rcc_status_t rcc_lowrank_whitened(const float *W, int m, int n, const double *H, double damp,
                                  const rcc_rank_rule_t *rule, rcc_lowrank_t *out);

/* out (n, n) = H + damp * mean(diag H) * I, the damped statistics SVD-LLM factors;
 * RCC_ERR_NUMERIC when the mean diagonal is not positive and finite (no calibration data). */
rcc_status_t rcc_damped_copy(const double *H, int n, double damp, double *out);

/* OATS-style sparse + low rank: U V fitted to R = W - S, S (m, n) the sparse part kept by
 * pruning; plain truncated SVD of R when H is NULL, whitened by H otherwise. */
rcc_status_t rcc_lowrank_residual(const float *W, const float *S, int m, int n, const double *H,
                                  double damp, const rcc_rank_rule_t *rule, rcc_lowrank_t *out);

/* ---- building blocks shared by the lowrank_*.c and subspace.c files ----
 * Each SVD kernel exists in double (_d) and float (_s, used by the plain SVD method), both
 * from svd_template.h. LAPACK and BLAS inside them run on omp_get_max_threads() threads. */

/* Thin SVD A = U diag(sigma) V of a row-major A (m, n), k = min(m, n): sigma (k)
 * descending, U (m, k), V (k, n), both row-major. A is not modified. */
rcc_status_t rcc_svd_exact_d(const double *A, int m, int n, double *sigma, double *U, double *V);
rcc_status_t rcc_svd_exact_s(const float *A, int m, int n, float *sigma, float *U, float *V);

/* Randomized rank-k SVD of A (m, n) row-major, as rcc_lowrank_svd_randomized:
 * sigma (k), U (m, k), V (k, n). Both types draw the same sketch for the same seed. */
rcc_status_t rcc_svd_randomized_d(const double *A, int m, int n, int k, int oversample,
                                  int power_iters, uint64_t seed, double *sigma, double *U,
                                  double *V);
rcc_status_t rcc_svd_randomized_s(const float *A, int m, int n, int k, int oversample,
                                  int power_iters, uint64_t seed, float *sigma, float *U, float *V);

/* Truncation of A (m, n) under the rule: *U (m, *rank) = left vectors times sigma and
 * *V (*rank, n), both malloc'ed for the caller. discarded and total (may be NULL) get the
 * discarded and total energy (||A||_F^2, summed in double). */
rcc_status_t rcc_svd_truncated_d(const double *A, int m, int n, const rcc_rank_rule_t *rule,
                                 rcc_svd_path_t path, double **U, double **V, int *rank,
                                 double *discarded, double *total);
rcc_status_t rcc_svd_truncated_s(const float *A, int m, int n, const rcc_rank_rule_t *rule,
                                 rcc_svd_path_t path, float **U, float **V, int *rank,
                                 double *discarded, double *total);

/* count standard normal draws (Box-Muller on splitmix64) from seed: the sketch. */
void rcc_fill_gaussian(double *x, size_t count, uint64_t seed);

/* The whitened factorisation of a double A (m, n), as rcc_lowrank_whitened. */
rcc_status_t rcc_lowrank_whitened_d(const double *A, int m, int n, const double *H, double damp,
                                    const rcc_rank_rule_t *rule, rcc_lowrank_t *out);

/* Fills out with float copies of U (m, r) and V (r, n). */
rcc_status_t rcc_lowrank_from_double(rcc_lowrank_t *out, int m, int n, int r, const double *U,
                                     const double *V);

/* A double copy of a float (m, n) matrix, or NULL when out of memory. */
double *rcc_lowrank_to_double(const float *W, int m, int n);
