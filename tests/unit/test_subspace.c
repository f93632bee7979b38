/* The subspace analysis of compress/subspace.h: principal angles of identical, orthogonal,
 * nested and rotated subspaces (with non-orthonormal bases), the Grassmann distance, the
 * row-space basis of a matrix with a known SVD, and the argument checks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compress/subspace.h"
#include "tests/harness.h"

enum { N = 12 };
static uint64_t rng = 0x5b5ace0000000001ULL;

/* B (N, k) = A (N, k) G with G (k, k) random: the same span, another (non-orthonormal) basis. */
static void remix(const float *A, int k, float *B) {
  float G[N * N];
  rcc_fill_uniform(G, (size_t)k * k, -1.0f, 1.0f, &rng);
  for (int j = 0; j < k; j++)
    G[j * k + j] += 2.0f; /* diagonally dominant: invertible */
  for (int i = 0; i < N; i++)
    for (int j = 0; j < k; j++) {
      double acc = 0.0;
      for (int l = 0; l < k; l++)
        acc += (double)A[i * k + l] * G[l * k + j];
      B[i * k + j] = (float)acc;
    }
}

/* A random orthogonal Q (N, N): Gram-Schmidt (twice) on a random matrix. */
static void random_rotation(double *Q) {
  float x[N * N];
  rcc_fill_uniform(x, N * N, -1.0f, 1.0f, &rng);
  for (int j = 0; j < N; j++) {
    for (int i = 0; i < N; i++)
      Q[i * N + j] = x[i * N + j];
    for (int pass = 0; pass < 2; pass++)
      for (int l = 0; l < j; l++) {
        double dot = 0.0;
        for (int i = 0; i < N; i++)
          dot += Q[i * N + l] * Q[i * N + j];
        for (int i = 0; i < N; i++)
          Q[i * N + j] -= dot * Q[i * N + l];
      }
    double norm = 0.0;
    for (int i = 0; i < N; i++)
      norm += Q[i * N + j] * Q[i * N + j];
    for (int i = 0; i < N; i++)
      Q[i * N + j] /= sqrt(norm);
  }
}

/* Y (N, k) = Q X for X (N, k) given in double. */
static void rotate(const double *Q, const double *X, int k, float *Y) {
  for (int i = 0; i < N; i++)
    for (int j = 0; j < k; j++) {
      double acc = 0.0;
      for (int l = 0; l < N; l++)
        acc += Q[i * N + l] * X[l * k + j];
      Y[i * k + j] = (float)acc;
    }
}

static void test_identical_subspaces(void **state) {
  enum { K = 5 };
  float A[N * K], B[N * K];
  double angles[K];
  rcc_fill_uniform(A, N * K, -1.0f, 1.0f, &rng);
  remix(A, K, B);
  assert_int_equal(rcc_principal_angles(A, N, K, B, K, angles), RCC_OK);
  for (int j = 0; j < K; j++)
    assert_true(angles[j] >= 0.0 && angles[j] <= 1e-5);
  assert_true(rcc_grassmann_distance(angles, K) <= 1e-5);
  /* the very same basis: float-exact inputs, angles at the arccos resolution */
  assert_int_equal(rcc_principal_angles(A, N, K, A, K, angles), RCC_OK);
  for (int j = 0; j < K; j++)
    assert_true(angles[j] <= 1e-7);
}

static void test_orthogonal_subspaces(void **state) {
  enum { K = 3 };
  double Q[N * N], X[N * K] = {0}, Y[N * K] = {0};
  float A[N * K], B[N * K], A2[N * K], B2[N * K];
  double angles[K];
  random_rotation(Q);
  for (int j = 0; j < K; j++) {
    X[j * K + j] = 1.0;           /* e_0 .. e_2 */
    Y[(K + j) * K + j] = 1.0 + j; /* e_3 .. e_5, scaled */
  }
  rotate(Q, X, K, A);
  rotate(Q, Y, K, B);
  remix(A, K, A2);
  remix(B, K, B2);
  assert_int_equal(rcc_principal_angles(A2, N, K, B2, K, angles), RCC_OK);
  for (int j = 0; j < K; j++)
    assert_true(fabs(angles[j] - M_PI / 2) <= 1e-5);
  assert_true(fabs(rcc_grassmann_distance(angles, K) - sqrt(3.0) * M_PI / 2) <= 1e-5);
}

static void test_known_rotation(void **state) {
  enum { K = 3 };
  const double theta[K] = {0.7, 0.1, 0.35}; /* expected back in ascending order */
  double Q[N * N], X[N * K] = {0}, Y[N * K] = {0};
  float A[N * K], B[N * K];
  double angles[K];
  random_rotation(Q);
  /* span(e_j) against span(cos t_j e_j + sin t_j e_{K+j}), j < K, then both rotated by Q */
  for (int j = 0; j < K; j++) {
    X[j * K + j] = 1.0;
    Y[j * K + j] = cos(theta[j]);
    Y[(K + j) * K + j] = sin(theta[j]);
  }
  rotate(Q, X, K, A);
  rotate(Q, Y, K, B);
  assert_int_equal(rcc_principal_angles(A, N, K, B, K, angles), RCC_OK);
  const double sorted[K] = {0.1, 0.35, 0.7};
  for (int j = 0; j < K; j++)
    assert_true(fabs(angles[j] - sorted[j]) <= 1e-5);
  double expect = sqrt(0.01 + 0.35 * 0.35 + 0.49);
  assert_true(fabs(rcc_grassmann_distance(angles, K) - expect) <= 1e-5);

  /* different dimensions: span(A) is inside a 5-dim B that adds two random directions */
  enum { KB = 5 };
  float Bbig[N * KB], extra[N * 2];
  rcc_fill_uniform(extra, N * 2, -1.0f, 1.0f, &rng);
  for (int i = 0; i < N; i++) {
    for (int j = 0; j < K; j++)
      Bbig[i * KB + j] = A[i * K + j];
    Bbig[i * KB + K] = extra[i * 2];
    Bbig[i * KB + K + 1] = extra[i * 2 + 1];
  }
  assert_int_equal(rcc_principal_angles(A, N, K, Bbig, KB, angles), RCC_OK);
  for (int j = 0; j < K; j++)
    assert_true(angles[j] <= 1e-5);
}

static void test_row_space_basis(void **state) {
  /* W (M, N) = diag(s) V^T: an SVD with U = I, V = the first M columns of a rotation,
   * s descending, so the top-K right singular vectors are V's first K columns */
  enum { M = 8, K = 3 };
  double Qn[N * N];
  float W[M * N], basis[N * K], truth[N * K];
  double angles[K];
  const double s[M] = {9, 7, 5, 1, 0.5, 0.25, 0.1, 0.05};
  random_rotation(Qn);
  for (int i = 0; i < M; i++)
    for (int c = 0; c < N; c++)
      W[i * N + c] = (float)(s[i] * Qn[c * N + i]);
  for (int c = 0; c < N; c++)
    for (int j = 0; j < K; j++)
      truth[c * K + j] = (float)Qn[c * N + j];
  assert_int_equal(rcc_row_space_basis(W, M, N, K, basis), RCC_OK);
  /* orthonormal columns */
  for (int a = 0; a < K; a++)
    for (int b = 0; b < K; b++) {
      double dot = 0.0;
      for (int c = 0; c < N; c++)
        dot += (double)basis[c * K + a] * basis[c * K + b];
      assert_true(fabs(dot - (a == b ? 1.0 : 0.0)) <= 1e-6);
    }
  assert_int_equal(rcc_principal_angles(basis, N, K, truth, K, angles), RCC_OK);
  printf("row space vs the known top-3 right vectors: largest angle %.2e\n", angles[K - 1]);
  assert_true(angles[K - 1] <= 1e-5);
  assert_int_equal(rcc_row_space_basis(W, M, N, M + 1, basis), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "subspace.c"));
}

static void test_argument_errors(void **state) {
  enum { K = 3 };
  float A[N * K], D[N * K];
  double angles[N];
  rcc_fill_uniform(A, N * K, -1.0f, 1.0f, &rng);
  memcpy(D, A, sizeof D);
  for (int i = 0; i < N; i++)
    D[i * K + 2] = D[i * K] + 2.0f * D[i * K + 1]; /* dependent */
  assert_int_equal(rcc_principal_angles(A, N, K, D, K, angles), RCC_ERR_NUMERIC);
  assert_non_null(strstr(rcc_last_error(), "depends on the others"));
  assert_int_equal(rcc_principal_angles(A, 2, K, A, K, angles), RCC_ERR_ARG); /* K > n */
  assert_int_equal(rcc_principal_angles(NULL, N, K, A, K, angles), RCC_ERR_ARG);
  assert_true(rcc_grassmann_distance(angles, 0) == 0.0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_identical_subspaces), cmocka_unit_test(test_orthogonal_subspaces),
      cmocka_unit_test(test_known_rotation),      cmocka_unit_test(test_row_space_basis),
      cmocka_unit_test(test_argument_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
