/* Kernels of the alphaedit stage, on one matrix: per-output-channel scales alpha (m) such
 * that diag(alpha) W_hat reproduces the original layer W on the calibration data, from
 * H = X X^T = sum_x x x^T (n, n, float64) alone. W and W_hat are (m, n) row-major float32
 * with y = W x; W_hat is what the earlier stages left (S + U V, densified by the caller).
 *
 * Closed form. Row i, w = w_i, v = w_hat_i, residual r = w - v:
 *   J(a) = ||(w - a v)^T X||^2 + lambda (a - 1)^2
 *        = w^T H w - 2 a w^T H v + a^2 v^T H v + lambda (a - 1)^2,
 *   J'(a) = 0  =>  a = (w^T H v + lambda) / (v^T H v + lambda).
 * The ridge pulls alpha toward 1 (leave the layer as it is), not toward 0 as DESIGN.md's
 * (w^T H v) / (v^T H v + lambda) does (that is the minimiser of J with lambda a^2, which
 * shrinks the channel to nothing as lambda grows).
 *
 * Null space (AlphaEdit, Fang et al. 2025). AlphaEdit projects a weight update Delta onto
 * the null space of preserved keys K0 (Delta P, P K0 = 0) so that the outputs on K0 cannot
 * change. A per-row scale cannot be confined that way: the update diag(alpha - 1) W_hat
 * changes row i's output on a preserved k by (alpha_i - 1) v^T k, which is zero for every
 * k only if alpha_i = 1 or v is orthogonal to all of K0. Projecting the update (fitting
 * W_hat + diag(beta) W_hat P) would give a layer that the stored form diag(alpha) W_hat
 * cannot hold, and storing diag(1 + beta) W_hat instead can be worse than alpha = 1. So the
 * preservation becomes part of the objective, in the stored form, as in MEMIT from which
 * AlphaEdit starts: split each calibration input into its free part P x and its preserved
 * part Q x (Q = I - P), ask for the original outputs on the free part and for the current
 * (W_hat) outputs on the preserved part:
 *   J(a) = ||(w - a v)^T P X||^2 + ||(v - a v)^T Q X||^2 + lambda (a - 1)^2
 *   a = (w^T P H P v + v^T Q H Q v + lambda) / (v^T P H P v + v^T Q H Q v + lambda).
 * Stored: exactly diag(alpha) W_hat, the exact minimiser of J. Guaranteed: alpha_i = 1 for
 * a row with P v = 0 (it acts only on preserved directions), so its outputs everywhere,
 * K0 included, are unchanged; P = I gives the closed form above; P = 0 gives alpha = 1; for
 * every row the relative change of its outputs on K0 is |alpha_i - 1|
 *   <= sqrt(r^T P H P r) sqrt(e) / (e + f + lambda),  e = v^T P H P v, f = v^T Q H Q v,
 * so rows whose calibration energy lies in the preserved subspace (large f) barely move.
 * Not guaranteed: zero change on K0 for rows that have both a free and a preserved part.
 *
 * Degenerate rows (v = 0, or a denominator <= 1e-12 v^T v max(diag H)) get alpha = 1. */
#pragma once
#include "common/status.h"

/* alpha (m) by the closed form; lambda >= 0. One GEMM W_hat H (O(m n^2)), then row dots. */
rcc_status_t rcc_alpha_closed_form(const float *W, const float *W_hat, int m, int n,
                                   const double *H, double lambda, float *alpha);

/* P (n, n) = I - U U^T, U the eigenvectors of K = K0 K0^T (n, n, symmetric PSD) with the
 * largest eigenvalues, as few as make up keep_energy (in (0, 1]) of the trace; eigenvalues
 * below n * DBL_EPSILON * max eigenvalue count as zero and are never kept, so keep_energy
 * = 1 keeps exactly the numerical range of K0. P is exactly symmetric; *null_dim =
 * n - (number of kept directions). */
rcc_status_t rcc_null_space_projector(const double *K, int n, double keep_energy, double *P,
                                      int *null_dim);

/* alpha (m) by the null-space form above, P from rcc_null_space_projector (symmetric
 * idempotent); lambda >= 0. Four GEMMs of O(m n^2). */
rcc_status_t rcc_alpha_closed_form_null_space(const float *W, const float *W_hat, int m, int n,
                                              const double *H, const double *P, double lambda,
                                              float *alpha);

/* The scale of one row from its quadratic forms, shared by the two fits:
 * (num + lambda) / (den + lambda), or 1 for a degenerate row; `scale` =
 * v^T v max(diag H) bounds |den| for the degeneracy test. */
float rcc_alpha_from_forms(double num, double den, double lambda, double scale);
