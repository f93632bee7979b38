/* The alphaedit kernels of compress/alpha.h: the closed form against a brute-force 1-D
 * minimisation per row and against alpha = 1, the ridge pulling alpha to 1, degenerate rows;
 * the null-space projector (symmetric, idempotent, annihilating K0, keep_energy); and the
 * null-space fit: brute force on its objective, its limits P = I and P = 0, rows inside the
 * preserved span left unchanged, and the stated bound on the change of preserved outputs. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/alpha.h"
#include "tests/harness.h"

enum { M = 12, N = 10, SAMPLES = 200 };
static uint64_t rng = 0xa1fa0123456789abULL;

/* H (N, N) = X X^T for correlated inputs: mixing of uniform draws with decaying scales. */
static void correlated_h(double *H) {
  float mix[N * N], z[N * SAMPLES];
  double x[N * SAMPLES];
  rcc_fill_uniform(mix, N * N, -1.0f, 1.0f, &rng);
  rcc_fill_uniform(z, N * SAMPLES, -1.0f, 1.0f, &rng);
  memset(x, 0, sizeof x);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      for (int s = 0; s < SAMPLES; s++)
        x[i * SAMPLES + s] += mix[i * N + j] * exp(-0.3 * j) * z[j * SAMPLES + s];
  for (int a = 0; a < N; a++)
    for (int b = 0; b < N; b++) {
      double acc = 0.0;
      for (int s = 0; s < SAMPLES; s++)
        acc += x[a * SAMPLES + s] * x[b * SAMPLES + s];
      H[a * N + b] = acc;
    }
}

/* W random; W_hat = 0.8 W + noise: what a lossy compression leaves, shrunk and perturbed. */
static void layer_pair(float *W, float *W_hat) {
  float noise[M * N];
  rcc_fill_uniform(W, M * N, -1.0f, 1.0f, &rng);
  rcc_fill_uniform(noise, M * N, -0.2f, 0.2f, &rng);
  for (int i = 0; i < M * N; i++)
    W_hat[i] = 0.8f * W[i] + noise[i];
}

/* a^T H b for vectors of length N. */
static double form(const double *a, const double *H, const double *b) {
  double sum = 0.0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      sum += a[i] * H[i * N + j] * b[j];
  return sum;
}

static void to_double(const float *x, double *y) {
  for (int i = 0; i < N; i++)
    y[i] = x[i];
}

/* y = P x for P (N, N). */
static void apply(const double *P, const double *x, double *y) {
  for (int i = 0; i < N; i++) {
    y[i] = 0.0;
    for (int j = 0; j < N; j++)
      y[i] += P[i * N + j] * x[j];
  }
}

/* The objectives of alpha.h for one row; P == NULL is the plain closed form's. */
typedef struct {
  double w[N], v[N], H[N * N], P[N * N], lambda;
  int null_space;
} row_problem_t;

static double objective(const row_problem_t *p, double a) {
  double d[N], q[N];
  if (!p->null_space) {
    for (int c = 0; c < N; c++)
      d[c] = p->w[c] - a * p->v[c];
    return form(d, p->H, d) + p->lambda * (a - 1) * (a - 1);
  }
  /* ||(w - a v)^T P X||^2 + ||(v - a v)^T Q X||^2 + lambda (a - 1)^2 */
  double pd[N], qv[N];
  for (int c = 0; c < N; c++)
    d[c] = p->w[c] - a * p->v[c];
  apply(p->P, d, pd);
  apply(p->P, p->v, q);
  for (int c = 0; c < N; c++)
    qv[c] = (1 - a) * (p->v[c] - q[c]);
  return form(pd, p->H, pd) + form(qv, p->H, qv) + p->lambda * (a - 1) * (a - 1);
}

/* Golden-section search on [-20, 20]: the objectives are convex quadratics in a. */
static double brute_force_min(const row_problem_t *p) {
  const double g = (sqrt(5.0) - 1.0) / 2.0;
  double lo = -20.0, hi = 20.0;
  for (int it = 0; it < 200; it++) {
    double a = hi - g * (hi - lo), b = lo + g * (hi - lo);
    if (objective(p, a) < objective(p, b))
      hi = b;
    else
      lo = a;
  }
  return 0.5 * (lo + hi);
}

static void row_of(row_problem_t *p, const float *W, const float *W_hat, int i) {
  to_double(W + i * N, p->w);
  to_double(W_hat + i * N, p->v);
}

/* ---- closed form ---- */

static void test_closed_form_matches_brute_force(void **state) {
  float W[M * N], W_hat[M * N], alpha[M];
  static row_problem_t p;
  layer_pair(W, W_hat);
  correlated_h(p.H);
  p.null_space = 0;
  const double lambdas[] = {0.0, 5.0, 500.0};
  for (int l = 0; l < 3; l++) {
    p.lambda = lambdas[l];
    assert_int_equal(rcc_alpha_closed_form(W, W_hat, M, N, p.H, p.lambda, alpha), RCC_OK);
    double loss = 0.0, loss_one = 0.0;
    for (int i = 0; i < M; i++) {
      row_of(&p, W, W_hat, i);
      double best = brute_force_min(&p);
      assert_true(fabs(alpha[i] - best) <= 1e-5 * (1.0 + fabs(best)));
      double at_alpha = objective(&p, alpha[i]), at_one = objective(&p, 1.0);
      assert_true(at_alpha <= at_one * (1.0 + 1e-7));
      loss += at_alpha;
      loss_one += at_one;
    }
    printf("lambda %g: calibration loss %.4f with alpha, %.4f with alpha = 1\n", p.lambda, loss,
           loss_one);
    assert_true(loss < loss_one);
    if (p.lambda == 0.0) assert_true(loss < 0.9 * loss_one); /* 0.8 W + noise: a real gain */
  }
}

static void test_ridge_pulls_alpha_to_one(void **state) {
  float W[M * N], W_hat[M * N], alpha[M];
  double H[N * N];
  layer_pair(W, W_hat);
  correlated_h(H);
  double previous[M];
  for (int i = 0; i < M; i++)
    previous[i] = INFINITY;
  const double lambdas[] = {0.0, 10.0, 1e3, 1e5, 1e12};
  for (int l = 0; l < 5; l++) {
    assert_int_equal(rcc_alpha_closed_form(W, W_hat, M, N, H, lambdas[l], alpha), RCC_OK);
    for (int i = 0; i < M; i++) {
      double dist = fabs(alpha[i] - 1.0);
      assert_true(dist <= previous[i] + 1e-7); /* monotone in lambda */
      previous[i] = dist;
    }
  }
  for (int i = 0; i < M; i++)
    assert_true(fabs(alpha[i] - 1.0) <= 1e-6);
}

static void test_degenerate_rows(void **state) {
  float W[M * N], W_hat[M * N], alpha[M];
  double H[N * N];
  layer_pair(W, W_hat);
  correlated_h(H);
  /* input 0 is never active: a row of W_hat that reads only it is invisible to the data */
  for (int j = 0; j < N; j++)
    H[j] = H[j * N] = 0.0;
  memset(W_hat, 0, N * sizeof *W_hat); /* row 0: zero */
  memset(W_hat + N, 0, N * sizeof *W_hat);
  W_hat[N] = 3.0f; /* row 1: e_0 only */
  assert_int_equal(rcc_alpha_closed_form(W, W_hat, M, N, H, 0.0, alpha), RCC_OK);
  assert_true(alpha[0] == 1.0f);
  assert_true(alpha[1] == 1.0f);
  for (int i = 2; i < M; i++)
    assert_true(isfinite(alpha[i]) && alpha[i] != 1.0f);
}

static void test_closed_form_errors(void **state) {
  float W[M * N] = {0}, alpha[M];
  double H[N * N] = {0};
  assert_int_equal(rcc_alpha_closed_form(W, W, M, N, NULL, 0.0, alpha), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "alpha_closed_form.c"));
  assert_int_equal(rcc_alpha_closed_form(W, W, M, N, H, -1.0, alpha), RCC_ERR_ARG);
  assert_int_equal(rcc_alpha_closed_form(W, W, 0, N, H, 0.0, alpha), RCC_ERR_ARG);
  assert_int_equal(rcc_alpha_closed_form_null_space(W, W, M, N, H, NULL, 0.0, alpha), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "alpha_null_space.c"));
}

/* ---- null-space projector ---- */

/* K0 (N, cols) random and K = K0 K0^T. */
static void preserved_keys(float *K0, int cols, double *K) {
  rcc_fill_uniform(K0, (size_t)N * cols, -1.0f, 1.0f, &rng);
  for (int a = 0; a < N; a++)
    for (int b = 0; b < N; b++) {
      double acc = 0.0;
      for (int j = 0; j < cols; j++)
        acc += (double)K0[a * cols + j] * K0[b * cols + j];
      K[a * N + b] = acc;
    }
}

static void test_projector_properties(void **state) {
  enum { COLS = 4 };
  float K0[N * COLS];
  double K[N * N], P[N * N], P2[N * N];
  int null_dim = -1;
  preserved_keys(K0, COLS, K);
  assert_int_equal(rcc_null_space_projector(K, N, 1.0, P, &null_dim), RCC_OK);
  assert_int_equal(null_dim, N - COLS);
  double trace = 0.0, worst_idem = 0.0, pk = 0.0, k0 = 0.0;
  for (int i = 0; i < N; i++) {
    trace += P[i * N + i];
    for (int j = 0; j < N; j++) {
      assert_true(P[i * N + j] == P[j * N + i]); /* exactly symmetric */
      P2[i * N + j] = 0.0;
      for (int l = 0; l < N; l++)
        P2[i * N + j] += P[i * N + l] * P[l * N + j];
      worst_idem = fmax(worst_idem, fabs(P2[i * N + j] - P[i * N + j]));
    }
  }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < COLS; j++) {
      double acc = 0.0;
      for (int l = 0; l < N; l++)
        acc += P[i * N + l] * K0[l * COLS + j];
      pk += acc * acc;
      k0 += (double)K0[i * COLS + j] * K0[i * COLS + j];
    }
  assert_true(fabs(trace - (N - COLS)) <= 1e-12);
  assert_true(worst_idem <= 1e-12);
  assert_true(sqrt(pk) <= 1e-10 * sqrt(k0));

  /* nothing preserved: P = I */
  memset(K, 0, sizeof K);
  assert_int_equal(rcc_null_space_projector(K, N, 1.0, P, &null_dim), RCC_OK);
  assert_int_equal(null_dim, N);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      assert_true(P[i * N + j] == (i == j ? 1.0 : 0.0));

  assert_int_equal(rcc_null_space_projector(K, N, 0.0, P, &null_dim), RCC_ERR_ARG);
  assert_int_equal(rcc_null_space_projector(K, N, 1.5, P, &null_dim), RCC_ERR_ARG);
}

static void test_projector_keep_energy(void **state) {
  /* eigenvalues 100, 1, 0.01 (trace 101.01) on the first three axes, zero elsewhere */
  double K[N * N] = {0}, P[N * N];
  K[0] = 100.0;
  K[1 * N + 1] = 1.0;
  K[2 * N + 2] = 0.01;
  const double keep[] = {0.98, 0.995, 1.0};
  const int expect_null[] = {N - 1, N - 2, N - 3};
  for (int t = 0; t < 3; t++) {
    int null_dim = -1;
    assert_int_equal(rcc_null_space_projector(K, N, keep[t], P, &null_dim), RCC_OK);
    assert_int_equal(null_dim, expect_null[t]);
    /* the kept axes are removed, the others pass */
    for (int i = 0; i < N; i++)
      assert_true(fabs(P[i * N + i] - (i < N - null_dim ? 0.0 : 1.0)) <= 1e-12);
  }
}

/* ---- null-space alpha ---- */

static void test_null_space_alpha(void **state) {
  enum { COLS = 4 };
  float W[M * N], W_hat[M * N], K0[N * COLS], alpha[M], plain[M];
  double K[N * N];
  static row_problem_t p;
  int null_dim;
  layer_pair(W, W_hat);
  correlated_h(p.H);
  preserved_keys(K0, COLS, K);
  assert_int_equal(rcc_null_space_projector(K, N, 1.0, p.P, &null_dim), RCC_OK);
  /* rows 0 and 1 of W_hat lie in span(K0): they act only on preserved directions */
  for (int c = 0; c < N; c++) {
    W_hat[c] = K0[c * COLS] - 0.5f * K0[c * COLS + 2];
    W_hat[N + c] = 2.0f * K0[c * COLS + 1];
  }
  p.null_space = 1;
  const double lambdas[] = {0.0, 5.0};
  for (int l = 0; l < 2; l++) {
    p.lambda = lambdas[l];
    assert_int_equal(rcc_alpha_closed_form_null_space(W, W_hat, M, N, p.H, p.P, p.lambda, alpha),
                     RCC_OK);
    for (int i = 0; i < M; i++) {
      row_of(&p, W, W_hat, i);
      /* the exact minimiser of the stated objective, which never loses to alpha = 1 */
      double best = brute_force_min(&p);
      assert_true(fabs(alpha[i] - best) <= 1e-5 * (1.0 + fabs(best)));
      assert_true(objective(&p, alpha[i]) <= objective(&p, 1.0) * (1.0 + 1e-7));
      /* the bound on the relative change of the outputs on K0:
       * |alpha - 1| <= sqrt(r^T PHP r) sqrt(e) / (e + f + lambda) */
      double r[N], pr[N], pv[N], qv[N];
      for (int c = 0; c < N; c++)
        r[c] = p.w[c] - p.v[c];
      apply(p.P, r, pr);
      apply(p.P, p.v, pv);
      for (int c = 0; c < N; c++)
        qv[c] = p.v[c] - pv[c];
      double e = form(pv, p.H, pv), f = form(qv, p.H, qv);
      double bound = sqrt(fmax(form(pr, p.H, pr), 0.0)) * sqrt(fmax(e, 0.0)) / (e + f + p.lambda);
      assert_true(fabs(alpha[i] - 1.0) <= bound * (1.0 + 1e-5) + 1e-6);
    }
    /* rows inside span(K0): alpha = 1, so their outputs on K0 are exactly those of W_hat */
    assert_true(fabs(alpha[0] - 1.0) <= 1e-6);
    assert_true(fabs(alpha[1] - 1.0) <= 1e-6);
    float before[2 * COLS], after[2 * COLS];
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < COLS; j++) {
        double acc = 0.0;
        for (int c = 0; c < N; c++)
          acc += (double)W_hat[i * N + c] * K0[c * COLS + j];
        before[i * COLS + j] = (float)acc;
        after[i * COLS + j] = (float)(alpha[i] * acc);
      }
    assert_allclose(after, before, 2 * COLS, 1e-6, 1e-5);
  }

  /* P = I: nothing preserved, the plain closed form */
  double I[N * N] = {0};
  for (int i = 0; i < N; i++)
    I[i * N + i] = 1.0;
  assert_int_equal(rcc_alpha_closed_form_null_space(W, W_hat, M, N, p.H, I, 2.0, alpha), RCC_OK);
  assert_int_equal(rcc_alpha_closed_form(W, W_hat, M, N, p.H, 2.0, plain), RCC_OK);
  assert_allclose(alpha, plain, M, 1e-6, 1e-6);

  /* P = 0: everything preserved, nothing moves */
  double Z[N * N] = {0};
  float ones[M];
  for (int i = 0; i < M; i++)
    ones[i] = 1.0f;
  assert_int_equal(rcc_alpha_closed_form_null_space(W, W_hat, M, N, p.H, Z, 0.0, alpha), RCC_OK);
  assert_allclose(alpha, ones, M, 1e-6, 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_closed_form_matches_brute_force),
      cmocka_unit_test(test_ridge_pulls_alpha_to_one),
      cmocka_unit_test(test_degenerate_rows),
      cmocka_unit_test(test_closed_form_errors),
      cmocka_unit_test(test_projector_properties),
      cmocka_unit_test(test_projector_keep_energy),
      cmocka_unit_test(test_null_space_alpha),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
