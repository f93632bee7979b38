/* The nullu kernels of compress/lowrank.h: the rank rule (energy, cap and min_rank each
 * binding), truncated SVD (reconstruction error = discarded energy), randomized SVD against
 * gesdd and the automatic switch, SVD-LLM whitening (never worse on the calibration loss
 * than plain SVD at the same rank, identical for H = I), sparse + low rank residual fits,
 * argument errors; and the time of rcc_lowrank_svd on CLIP ViT-B MLP shapes (printed). */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compress/lowrank.h"
#include "tests/harness.h"

static uint64_t rng = 0x1234abcd5678ef01ULL;

static float *random_floats(size_t count, float lo, float hi) {
  float *x = malloc(count * sizeof *x);
  assert_non_null(x);
  rcc_fill_uniform(x, count, lo, hi, &rng);
  return x;
}

/* Q (rows, cols) row-major with orthonormal columns, cols <= rows: QR of a random matrix. */
static double *random_orthonormal(int rows, int cols) {
  float *x = random_floats((size_t)rows * cols, -1.0f, 1.0f);
  double *q = malloc((size_t)rows * cols * sizeof *q);
  double *tau = malloc((size_t)cols * sizeof *tau);
  assert_non_null(q);
  assert_non_null(tau);
  for (size_t i = 0; i < (size_t)rows * cols; i++)
    q[i] = x[i];
  assert_int_equal(LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, rows, cols, q, cols, tau), 0);
  assert_int_equal(LAPACKE_dorgqr(LAPACK_ROW_MAJOR, rows, cols, cols, q, cols, tau), 0);
  free(x);
  free(tau);
  return q;
}

/* W (m, n) = A diag(s) B^T with orthonormal A (m, k), B (n, k), k = min(m, n): a matrix
 * whose singular values are exactly s (descending). */
static float *matrix_with_spectrum(int m, int n, const double *s) {
  int k = m < n ? m : n;
  double *A = random_orthonormal(m, k), *B = random_orthonormal(n, k);
  float *W = malloc((size_t)m * n * sizeof *W);
  assert_non_null(W);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < k; j++)
      A[(size_t)i * k + j] *= s[j];
  double *row = malloc((size_t)n * sizeof *row);
  assert_non_null(row);
  for (int i = 0; i < m; i++) {
    for (int c = 0; c < n; c++) {
      double acc = 0.0;
      for (int j = 0; j < k; j++)
        acc += A[(size_t)i * k + j] * B[(size_t)c * k + j];
      row[c] = acc;
    }
    for (int c = 0; c < n; c++)
      W[(size_t)i * n + c] = (float)row[c];
  }
  free(row);
  free(A);
  free(B);
  return W;
}

/* E (m, n) = W - S - U V in double; S may be NULL. */
static double *residual(const float *W, const float *S, const rcc_lowrank_t *lr) {
  int m = lr->m, n = lr->n, r = lr->rank;
  double *E = malloc((size_t)m * n * sizeof *E);
  assert_non_null(E);
  for (int i = 0; i < m; i++)
    for (int c = 0; c < n; c++) {
      double uv = 0.0;
      for (int j = 0; j < r; j++)
        uv += (double)lr->U[(size_t)i * r + j] * (double)lr->V[(size_t)j * n + c];
      size_t at = (size_t)i * n + c;
      E[at] = (double)W[at] - (S ? (double)S[at] : 0.0) - uv;
    }
  return E;
}

static double frobenius2(const double *E, size_t count) {
  double sum = 0.0;
  for (size_t i = 0; i < count; i++)
    sum += E[i] * E[i];
  return sum;
}

/* ||W - U V||_F^2 */
static double reconstruction_error(const float *W, const rcc_lowrank_t *lr) {
  double *E = residual(W, NULL, lr);
  double err = frobenius2(E, (size_t)lr->m * lr->n);
  free(E);
  return err;
}

/* tr(E H E^T) = ||E X||_F^2 for E (m, n), H (n, n). */
static double calibration_error(const double *E, int m, int n, const double *H) {
  double sum = 0.0;
  for (int i = 0; i < m; i++)
    for (int a = 0; a < n; a++)
      for (int b = 0; b < n; b++)
        sum += E[(size_t)i * n + a] * H[(size_t)a * n + b] * E[(size_t)i * n + b];
  return sum;
}

/* H (n, n) = X X^T for correlated inputs X = M Z, M (n, n) mixing with decaying column
 * scales, Z (n, samples) uniform: a strongly anisotropic, full-rank H. */
static double *correlated_h(int n, int samples) {
  float *M = random_floats((size_t)n * n, -1.0f, 1.0f);
  float *Z = random_floats((size_t)n * samples, -1.0f, 1.0f);
  double *X = calloc((size_t)n * samples, sizeof *X), *H = calloc((size_t)n * n, sizeof *H);
  assert_non_null(X);
  assert_non_null(H);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double scale = exp(-0.25 * j);
      for (int s = 0; s < samples; s++)
        X[(size_t)i * samples + s] += M[(size_t)i * n + j] * scale * Z[(size_t)j * samples + s];
    }
  for (int a = 0; a < n; a++)
    for (int b = 0; b < n; b++) {
      double acc = 0.0;
      for (int s = 0; s < samples; s++)
        acc += X[(size_t)a * samples + s] * X[(size_t)b * samples + s];
      H[(size_t)a * n + b] = acc;
    }
  free(M);
  free(Z);
  free(X);
  return H;
}

static double seconds_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- rank rule ---- */

static void test_rank_rule_each_binding(void **state) {
  /* sigma^2 = 16, 9, 4, 1, 1, 1 (total 32) */
  const double sigma[] = {4, 3, 2, 1, 1, 1};
  const int k = 6;
  const double total = 32.0;
  /* energy binds: 16 + 9 = 25 >= 0.75 * 32 = 24 */
  rcc_rank_rule_t energy = {.energy_threshold = 0.75, .rank_reduction_ratio = 1.0, .min_rank = 1};
  assert_int_equal(rcc_rank_select(sigma, k, total, &energy), 2);
  /* exactly reaching the target counts: 16 / 32 */
  rcc_rank_rule_t exact = {.energy_threshold = 0.5, .rank_reduction_ratio = 1.0, .min_rank = 1};
  assert_int_equal(rcc_rank_select(sigma, k, total, &exact), 1);
  /* cap binds: energy asks 4 (30 >= 0.9 * 32), floor(0.5 * 6) = 3 */
  rcc_rank_rule_t cap = {.energy_threshold = 0.9, .rank_reduction_ratio = 0.5, .min_rank = 1};
  assert_int_equal(rcc_rank_select(sigma, k, total, &cap), 3);
  assert_int_equal(rcc_rank_max(&cap, k), 3);
  /* min_rank binds, over both the energy rank (1) and the cap (floor(0.2 * 6) = 1) */
  rcc_rank_rule_t minr = {.energy_threshold = 0.1, .rank_reduction_ratio = 0.2, .min_rank = 4};
  assert_int_equal(rcc_rank_select(sigma, k, total, &minr), 4);
  /* min_rank never exceeds min(m, n) */
  minr.min_rank = 10;
  assert_int_equal(rcc_rank_select(sigma, k, total, &minr), 6);
  /* threshold 1 keeps everything even when rounding leaves the sum a hair short */
  rcc_rank_rule_t all = {.energy_threshold = 1.0, .rank_reduction_ratio = 1.0, .min_rank = 1};
  assert_int_equal(rcc_rank_select(sigma, k, total * (1 + 1e-15), &all), 6);

  rcc_rank_rule_t bad[] = {
      {.energy_threshold = 0.0, .rank_reduction_ratio = 0.5, .min_rank = 1},
      {.energy_threshold = 1.5, .rank_reduction_ratio = 0.5, .min_rank = 1},
      {.energy_threshold = 0.9, .rank_reduction_ratio = 0.0, .min_rank = 1},
      {.energy_threshold = 0.9, .rank_reduction_ratio = NAN, .min_rank = 1},
      {.energy_threshold = 0.9, .rank_reduction_ratio = 0.5, .min_rank = 0},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    assert_int_equal(rcc_rank_rule_check(&bad[i]), RCC_ERR_ARG);
    assert_non_null(strstr(rcc_last_error(), "rank rule"));
  }
  assert_int_equal(rcc_rank_rule_check(&cap), RCC_OK);
}

/* ---- truncated SVD ---- */

static void check_discarded_energy(int m, int n) {
  float *W = random_floats((size_t)m * n, -1.0f, 1.0f);
  rcc_rank_rule_t rule = {.energy_threshold = 0.6, .rank_reduction_ratio = 1.0, .min_rank = 1};
  rcc_lowrank_t lr;
  double discarded = -1.0;
  assert_int_equal(rcc_lowrank_svd(W, m, n, &rule, &lr, &discarded), RCC_OK);
  assert_int_equal(lr.m, m);
  assert_int_equal(lr.n, n);
  assert_true(lr.rank > 1 && lr.rank < (m < n ? m : n));
  double total = 0.0;
  for (size_t i = 0; i < (size_t)m * n; i++)
    total += (double)W[i] * W[i];
  /* the rule held (at least 60% kept); the bookkeeping must match the real error */
  assert_true(discarded <= 0.4 * total);
  double err = reconstruction_error(W, &lr);
  assert_true(fabs(err - discarded) <= 1e-6 * discarded);
  rcc_lowrank_free(&lr);
  assert_null(lr.U);
  free(W);
}

static void test_svd_error_is_discarded_energy(void **state) {
  check_discarded_energy(60, 40);
  check_discarded_energy(40, 60);
}

/* Both types and both orientations of the exact SVD (a tall A is handed to LAPACK
 * transposed): A = U diag(sigma) V to rounding, U^T U = I, V V^T = I, sigma descending, and
 * float's singular values equal double's to float rounding. */
static void check_exact_svd(int m, int n) {
  const int k = m < n ? m : n;
  const size_t mn = (size_t)m * n;
  float *Af = random_floats(mn, -1.0f, 1.0f);
  double *Ad = malloc(mn * sizeof *Ad), *sd = malloc(k * sizeof *sd);
  double *Ud = malloc((size_t)m * k * sizeof *Ud), *Vd = malloc((size_t)k * n * sizeof *Vd);
  float *sf = malloc(k * sizeof *sf), *Uf = malloc((size_t)m * k * sizeof *Uf);
  float *Vf = malloc((size_t)k * n * sizeof *Vf);
  assert_true(Ad && sd && Ud && Vd && sf && Uf && Vf);
  for (size_t i = 0; i < mn; i++)
    Ad[i] = Af[i];
  assert_int_equal(rcc_svd_exact_d(Ad, m, n, sd, Ud, Vd), RCC_OK);
  assert_int_equal(rcc_svd_exact_s(Af, m, n, sf, Uf, Vf), RCC_OK);
  double rec_d = 0.0, rec_f = 0.0, norm = 0.0, orth = 0.0, sig = 0.0;
  for (int i = 0; i < m; i++)
    for (int c = 0; c < n; c++) {
      double yd = 0.0, yf = 0.0;
      for (int j = 0; j < k; j++) {
        yd += Ud[(size_t)i * k + j] * sd[j] * Vd[(size_t)j * n + c];
        yf += (double)Uf[(size_t)i * k + j] * sf[j] * Vf[(size_t)j * n + c];
      }
      const double a = Ad[(size_t)i * n + c];
      rec_d = fmax(rec_d, fabs(yd - a));
      rec_f = fmax(rec_f, fabs(yf - a));
      norm = fmax(norm, fabs(a));
    }
  for (int p = 0; p < k; p++)
    for (int q = 0; q < k; q++) {
      double uu = 0.0, vv = 0.0;
      for (int i = 0; i < m; i++)
        uu += Ud[(size_t)i * k + p] * Ud[(size_t)i * k + q];
      for (int c = 0; c < n; c++)
        vv += Vd[(size_t)p * n + c] * Vd[(size_t)q * n + c];
      orth = fmax(orth, fmax(fabs(uu - (p == q)), fabs(vv - (p == q))));
    }
  for (int j = 0; j < k; j++) {
    if (j > 0) assert_true(sd[j] <= sd[j - 1] && sf[j] <= sf[j - 1]);
    sig = fmax(sig, fabs(sf[j] - sd[j]) / sd[0]);
  }
  printf("exact SVD %d x %d: |A - U S V| %.1e (double) %.1e (float), orthogonality %.1e, "
         "sigma float vs double %.1e\n",
         m, n, rec_d / norm, rec_f / norm, orth, sig);
  assert_true(rec_d <= 1e-12 * norm && orth <= 1e-12);
  assert_true(rec_f <= 1e-5 * norm && sig <= 1e-6);
  free(Af);
  free(Ad);
  free(sd);
  free(Ud);
  free(Vd);
  free(sf);
  free(Uf);
  free(Vf);
}

static void test_exact_svd_both_types_and_orientations(void **state) {
  check_exact_svd(70, 30);
  check_exact_svd(30, 70);
  check_exact_svd(45, 45);
}

static void test_randomized_matches_gesdd(void **state) {
  const int m = 512, n = 768, k = 32;
  double s[512];
  for (int j = 0; j < m; j++)
    s[j] = exp(-j / 20.0);
  float *W = matrix_with_spectrum(m, n, s);

  double *A = malloc((size_t)m * n * sizeof *A), *sig = malloc(m * sizeof *sig);
  double *U = malloc((size_t)m * m * sizeof *U), *V = malloc((size_t)m * n * sizeof *V);
  assert_true(A && sig && U && V);
  for (size_t i = 0; i < (size_t)m * n; i++)
    A[i] = W[i];
  assert_int_equal(rcc_svd_exact_d(A, m, n, sig, U, V), RCC_OK);

  /* The settings of the automatic path: oversampling max(10, k / 2), 2 power iterations
   * (p = 10 is not enough for 1e-3 on the trailing values of this spectrum). */
  double rsig[32];
  rcc_lowrank_t lr;
  assert_int_equal(rcc_lowrank_svd_randomized(W, m, n, k, 16, 2, 42, rsig, &lr), RCC_OK);
  assert_int_equal(lr.rank, k);
  double worst = 0.0;
  for (int j = 0; j < k; j++) {
    double rel = fabs(rsig[j] - sig[j]) / sig[j];
    if (rel > worst) worst = rel;
  }
  printf("randomized SVD 512 x 768, k = 32: worst relative sigma error %.2e\n", worst);
  assert_true(worst <= 1e-3);
  rcc_lowrank_free(&lr);

  /* Automatic switch: cap floor(0.1 * 512) = 51 <= 512 / 4 takes the randomized path. */
  rcc_rank_rule_t rule = {.energy_threshold = 0.999, .rank_reduction_ratio = 0.1, .min_rank = 1};
  rcc_lowrank_t fast, exact;
  double d_fast, d_exact;
  assert_int_equal(rcc_lowrank_svd(W, m, n, &rule, &fast, &d_fast), RCC_OK);
  assert_int_equal(rcc_lowrank_svd_path(W, m, n, &rule, RCC_SVD_EXACT, &exact, &d_exact), RCC_OK);
  assert_int_equal(fast.rank, 51);
  assert_int_equal(exact.rank, fast.rank);
  double e_fast = reconstruction_error(W, &fast), e_exact = reconstruction_error(W, &exact);
  printf("auto switch, rank 51: reconstruction error %.6e (randomized) vs %.6e (gesdd)\n", e_fast,
         e_exact);
  assert_true(fabs(e_fast - e_exact) <= 1e-3 * e_exact);
  assert_true(fabs(d_fast - e_fast) <= 1e-3 * e_fast);
  assert_true(fabs(d_exact - e_exact) <= 1e-6 * e_exact);
  rcc_lowrank_free(&fast);
  rcc_lowrank_free(&exact);
  free(A);
  free(sig);
  free(U);
  free(V);
  free(W);
}

/* ---- whitened ---- */

static void test_whitened_beats_plain_on_calibration(void **state) {
  const int m = 48, n = 32;
  float *W = random_floats((size_t)m * n, -1.0f, 1.0f);
  double *H = correlated_h(n, 400);
  rcc_rank_rule_t rule = {.energy_threshold = 1.0, .rank_reduction_ratio = 0.25, .min_rank = 1};
  rcc_lowrank_t plain, white;
  assert_int_equal(rcc_lowrank_svd(W, m, n, &rule, &plain, NULL), RCC_OK);
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 0.0, &rule, &white), RCC_OK);
  assert_int_equal(plain.rank, 8);
  assert_int_equal(white.rank, 8);
  double *Ep = residual(W, NULL, &plain), *Ew = residual(W, NULL, &white);
  double cp = calibration_error(Ep, m, n, H), cw = calibration_error(Ew, m, n, H);
  printf("calibration error at rank 8: whitened %.6e, plain SVD %.6e\n", cw, cp);
  assert_true(cw <= cp * (1.0 + 1e-9));
  assert_true(cw < 0.9 * cp); /* on a correlated H the gain is not marginal */
  /* with a small damp it stays (nearly) as good */
  rcc_lowrank_t damped;
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 1e-6, &rule, &damped), RCC_OK);
  double *Ed = residual(W, NULL, &damped);
  assert_true(calibration_error(Ed, m, n, H) <= cp);
  free(Ep);
  free(Ew);
  free(Ed);
  rcc_lowrank_free(&plain);
  rcc_lowrank_free(&white);
  rcc_lowrank_free(&damped);
  free(H);
  free(W);
}

static void test_whitened_identity_is_plain(void **state) {
  const int m = 30, n = 20;
  float *W = random_floats((size_t)m * n, -1.0f, 1.0f);
  double *H = calloc((size_t)n * n, sizeof *H);
  assert_non_null(H);
  for (int i = 0; i < n; i++)
    H[(size_t)i * n + i] = 1.0;
  rcc_rank_rule_t rule = {.energy_threshold = 0.8, .rank_reduction_ratio = 1.0, .min_rank = 1};
  rcc_lowrank_t plain, white;
  assert_int_equal(rcc_lowrank_svd(W, m, n, &rule, &plain, NULL), RCC_OK);
  /* damp scales H to (1 + damp) I: L = sqrt(1 + damp) I cancels in U V */
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 0.01, &rule, &white), RCC_OK);
  assert_int_equal(white.rank, plain.rank);
  double *Ep = residual(W, NULL, &plain), *Ew = residual(W, NULL, &white);
  float *ep = malloc((size_t)m * n * sizeof *ep), *ew = malloc((size_t)m * n * sizeof *ew);
  assert_true(ep && ew);
  for (size_t i = 0; i < (size_t)m * n; i++) {
    ep[i] = (float)Ep[i];
    ew[i] = (float)Ew[i];
  }
  assert_allclose(ew, ep, (size_t)m * n, 1e-5, 1e-5);
  free(ep);
  free(ew);
  free(Ep);
  free(Ew);
  rcc_lowrank_free(&plain);
  rcc_lowrank_free(&white);
  free(H);
  free(W);
}

static void test_whitened_errors(void **state) {
  const int m = 4, n = 3;
  float W[12] = {0};
  double H[9] = {0};
  rcc_rank_rule_t rule = {.energy_threshold = 0.9, .rank_reduction_ratio = 1.0, .min_rank = 1};
  rcc_lowrank_t lr;
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 0.01, &rule, &lr), RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "lowrank_whitened.c"));
  /* singular H without damping cannot be factored */
  H[0] = 1.0;
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, 0.0, &rule, &lr), RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "raise damp"));
  assert_int_equal(rcc_lowrank_whitened(W, m, n, NULL, 0.0, &rule, &lr), RCC_ERR_ARG);
  assert_int_equal(rcc_lowrank_whitened(W, m, n, H, -1.0, &rule, &lr), RCC_ERR_ARG);
}

/* ---- residual (sparse + low rank) ---- */

static void test_residual_fits_what_pruning_removed(void **state) {
  const int m = 40, n = 24;
  size_t count = (size_t)m * n;
  float *W = random_floats(count, -1.0f, 1.0f);
  float *S = malloc(count * sizeof *S);
  assert_non_null(S);
  for (size_t i = 0; i < count; i++)
    S[i] = fabsf(W[i]) >= 0.5f ? W[i] : 0.0f; /* ~50% kept */
  double base = 0.0;
  for (size_t i = 0; i < count; i++)
    base += ((double)W[i] - S[i]) * ((double)W[i] - S[i]);

  rcc_rank_rule_t low = {.energy_threshold = 1.0, .rank_reduction_ratio = 0.25, .min_rank = 1};
  rcc_lowrank_t lr;
  assert_int_equal(rcc_lowrank_residual(W, S, m, n, NULL, 0.0, &low, &lr), RCC_OK);
  assert_int_equal(lr.rank, 6);
  double *E = residual(W, S, &lr);
  double err = frobenius2(E, count);
  printf("residual rank 6: ||W - S - UV||^2 = %.4f vs ||W - S||^2 = %.4f\n", err, base);
  assert_true(err < 0.8 * base);
  free(E);
  rcc_lowrank_free(&lr);

  /* whitened residual: better than S alone on the calibration loss */
  double *H = correlated_h(n, 200);
  assert_int_equal(rcc_lowrank_residual(W, S, m, n, H, 0.01, &low, &lr), RCC_OK);
  E = residual(W, S, &lr);
  double *E0 = malloc(count * sizeof *E0);
  assert_non_null(E0);
  for (size_t i = 0; i < count; i++)
    E0[i] = (double)W[i] - S[i];
  assert_true(calibration_error(E, m, n, H) < 0.8 * calibration_error(E0, m, n, H));
  free(E);
  free(E0);
  rcc_lowrank_free(&lr);

  /* full rank: S + U V is W (to float rounding), plain and whitened */
  rcc_rank_rule_t full = {.energy_threshold = 1.0, .rank_reduction_ratio = 1.0, .min_rank = 1};
  float *rebuilt = malloc(count * sizeof *rebuilt);
  assert_non_null(rebuilt);
  for (int pass = 0; pass < 2; pass++) {
    assert_int_equal(rcc_lowrank_residual(W, S, m, n, pass ? H : NULL, 0.0, &full, &lr), RCC_OK);
    assert_int_equal(lr.rank, n);
    E = residual(W, S, &lr);
    for (size_t i = 0; i < count; i++)
      rebuilt[i] = (float)((double)W[i] - E[i]);
    assert_allclose(rebuilt, W, count, 1e-5, 1e-5);
    free(E);
    rcc_lowrank_free(&lr);
  }
  free(rebuilt);
  free(H);
  free(S);
  free(W);
}

/* ---- argument errors ---- */

static void test_svd_argument_errors(void **state) {
  float W[6] = {1, 2, 3, 4, 5, 6};
  rcc_rank_rule_t rule = {.energy_threshold = 0.9, .rank_reduction_ratio = 1.0, .min_rank = 1};
  rcc_lowrank_t lr;
  double sig[2];
  assert_int_equal(rcc_lowrank_svd(NULL, 2, 3, &rule, &lr, NULL), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "lowrank_svd.c"));
  assert_int_equal(rcc_lowrank_svd(W, 0, 3, &rule, &lr, NULL), RCC_ERR_ARG);
  assert_int_equal(rcc_lowrank_svd(W, 2, 3, NULL, &lr, NULL), RCC_ERR_ARG);
  assert_int_equal(rcc_lowrank_svd_randomized(W, 2, 3, 3, 0, 0, 1, sig, &lr), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "lowrank_randomized.c"));
  assert_int_equal(rcc_lowrank_residual(W, NULL, 2, 3, NULL, 0.0, &rule, &lr), RCC_ERR_ARG);
  rcc_lowrank_free(NULL);
}

/* ---- timing (printed, not asserted) ---- */

static void time_shape(int m, int n, double ratio) {
  float *W = random_floats((size_t)m * n, -1.0f, 1.0f);
  rcc_rank_rule_t rule = {.energy_threshold = 0.9, .rank_reduction_ratio = ratio, .min_rank = 1};
  rcc_lowrank_t lr;
  double t0 = seconds_now();
  assert_int_equal(rcc_lowrank_svd(W, m, n, &rule, &lr, NULL), RCC_OK);
  double t = seconds_now() - t0;
  int kmin = m < n ? m : n;
  printf("rcc_lowrank_svd %4d x %4d, ratio %.2f (%s path): rank %d, %.3f s\n", m, n, ratio,
         rcc_rank_max(&rule, kmin) <= kmin / 4 ? "randomized" : "exact", lr.rank, t);
  rcc_lowrank_free(&lr);
  free(W);
}

static void test_timing(void **state) {
  time_shape(768, 3072, 1.0);
  time_shape(3072, 768, 1.0);
  time_shape(768, 3072, 0.1);
  time_shape(3072, 768, 0.1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rank_rule_each_binding),
      cmocka_unit_test(test_svd_error_is_discarded_energy),
      cmocka_unit_test(test_exact_svd_both_types_and_orientations),
      cmocka_unit_test(test_randomized_matches_gesdd),
      cmocka_unit_test(test_whitened_beats_plain_on_calibration),
      cmocka_unit_test(test_whitened_identity_is_plain),
      cmocka_unit_test(test_whitened_errors),
      cmocka_unit_test(test_residual_fits_what_pruning_removed),
      cmocka_unit_test(test_svd_argument_errors),
      cmocka_unit_test(test_timing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
