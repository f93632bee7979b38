/* runner/stages.c: a nullu stage never stores more than the layer it replaces. The rank
 * the rule asks for is capped where r (m + n) would reach what the layer stores now (the
 * dense m n, or for the residual method the m n - nnz(S) that a sparse S leaves), and a
 * layer where not even rank 1 pays stays exactly as it was. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/harness.h"
#include "runner/stages.h"

enum { M = 16, N = 16 };

static void random_weight(float *W, int count, unsigned seed) {
  srand(seed);
  for (int i = 0; i < count; i++)
    W[i] = (float)rand() / (float)RAND_MAX - 0.5f;
}

static rcc_stage_t nullu_stage(rcc_nullu_method_t method, double ratio) {
  rcc_stage_t s = {.kind = RCC_STAGE_NULLU, .enabled = true};
  s.config.nullu = (rcc_nullu_config_t){
      .method = method, .energy_threshold = 1.0, .rank_reduction_ratio = ratio, .min_rank = 1};
  return s;
}

/* Rank 8 of a dense 16 x 16 layer would store 8 * 32 = 256 = m n: the cap is 7. */
static void test_svd_rank_capped_below_dense(void **state) {
  (void)state;
  float W[M * N];
  random_weight(W, M * N, 1);
  rcc_factored_t cur = {0}, out = {0};
  assert_int_equal(rcc_factored_init_dense(&cur, W, M, N), RCC_OK);
  rcc_stage_t s = nullu_stage(RCC_NULLU_METHOD_SVD, 0.5);
  rcc_layer_input_t in = {.name = "layer", .m = M, .n = N, .W0 = W};
  assert_int_equal(rcc_stage_apply(&s, &in, &cur, &out), RCC_OK);
  assert_int_equal(out.rank, 7);
  assert_null(out.S);
  assert_true(rcc_factored_params(&out) < (int64_t)M * N);
  rcc_factored_free(&out);
  rcc_factored_free(&cur);
}

/* A 2 x 2 layer cannot pay at rank 1 (1 * (2 + 2) = 4 = m n) and stays dense, bit for
 * bit. A 4 x 64 layer at full rank 4 would store 4 * 68 = 272 > 256: capped at 3. */
static void test_svd_keeps_layer_when_rank_one_does_not_pay(void **state) {
  (void)state;
  float W[4];
  random_weight(W, 4, 2);
  rcc_factored_t cur = {0}, out = {0};
  assert_int_equal(rcc_factored_init_dense(&cur, W, 2, 2), RCC_OK);
  rcc_stage_t s = nullu_stage(RCC_NULLU_METHOD_SVD, 1.0);
  rcc_layer_input_t in = {.name = "tiny", .m = 2, .n = 2, .W0 = W};
  assert_int_equal(rcc_stage_apply(&s, &in, &cur, &out), RCC_OK);
  assert_int_equal(out.rank, 0);
  assert_non_null(out.S);
  assert_memory_equal(out.S, W, sizeof W);
  rcc_factored_free(&out);
  rcc_factored_free(&cur);

  float Wt[4 * 64];
  random_weight(Wt, 4 * 64, 3);
  assert_int_equal(rcc_factored_init_dense(&cur, Wt, 4, 64), RCC_OK);
  rcc_layer_input_t in2 = {.name = "wide", .m = 4, .n = 64, .W0 = Wt};
  assert_int_equal(rcc_stage_apply(&s, &in2, &cur, &out), RCC_OK);
  assert_int_equal(out.rank, 3);
  rcc_factored_free(&out);
  rcc_factored_free(&cur);
}

/* Residual on a half-pruned 16 x 16 layer: S keeps 128 entries, so the low-rank part has
 * 256 - 128 = 128 to spend: rank 3 (96), not the rule's 8. The kept components are the
 * leading ones: the same U V as asking the rule for rank 3 directly. */
static void test_residual_rank_capped_by_what_sparsity_saved(void **state) {
  (void)state;
  float W[M * N];
  random_weight(W, M * N, 4);
  rcc_factored_t cur = {.m = M, .n = N};
  cur.S = malloc(sizeof W);
  cur.mask = malloc(M * N);
  assert_non_null(cur.S);
  assert_non_null(cur.mask);
  for (int i = 0; i < M * N; i++) {
    cur.mask[i] = (uint8_t)(i % 2);
    cur.S[i] = cur.mask[i] ? W[i] : 0.0f;
  }
  /* residual needs calibration statistics; H = I makes its whitening the identity */
  double H[N * N] = {0};
  for (int j = 0; j < N; j++)
    H[j * N + j] = 1.0;
  rcc_layer_input_t in = {.name = "pruned", .m = M, .n = N, .W0 = W, .H = H};
  rcc_stage_t s = nullu_stage(RCC_NULLU_METHOD_RESIDUAL, 0.5);
  rcc_factored_t out = {0}, direct = {0};
  assert_int_equal(rcc_stage_apply(&s, &in, &cur, &out), RCC_OK);
  assert_int_equal(out.rank, 3);
  assert_true(rcc_factored_params(&out) < (int64_t)M * N);
  rcc_stage_t s3 = nullu_stage(RCC_NULLU_METHOD_RESIDUAL, 3.0 / 16.0);
  assert_int_equal(rcc_stage_apply(&s3, &in, &cur, &direct), RCC_OK);
  assert_int_equal(direct.rank, 3);
  float Wa[M * N], Wb[M * N];
  rcc_factored_dense(&out, Wa);
  rcc_factored_dense(&direct, Wb);
  assert_allclose(Wa, Wb, M * N, 1e-6, 1e-5);
  rcc_factored_free(&out);
  rcc_factored_free(&direct);
  rcc_factored_free(&cur);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_svd_rank_capped_below_dense),
      cmocka_unit_test(test_svd_keeps_layer_when_rank_one_does_not_pay),
      cmocka_unit_test(test_residual_rank_capped_by_what_sparsity_saved),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
