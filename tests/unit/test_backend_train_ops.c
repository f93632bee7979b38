/* The argument checks of backend/backend_train.c, on the CPU backend: a NULL or untrainable
 * backend, negative shapes, unknown activations, bad eps, patch sizes and logit scales,
 * missing required buffers and calls that would compute nothing are refused with an error
 * naming the problem, before any output is touched; empty shapes succeed without reading
 * a pointer. The optimizer ops of the CPU backend (fill, copy, AdamW, distillation's
 * gradient update and clipping) must give compress/optim.h's host functions and the loop
 * runner/distill.c ran before them to the bit: distillation runs on the cpu backend keep
 * their numbers. So must the loss ops (template mean, KD, embedding terms) give the loops of
 * compress/distill_loss.c they replaced, the loss summed in the same order across calls.
 * (What the other ops compute is checked by tests/unit/test_grad_ops.c against
 * finite differences, and the CUDA ops by tests/gpu/test_backend_cuda_train.c.) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_impl.h"
#include "backend/backend_train.h"
#include "compress/optim.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

#define CPU rcc_test_cpu

/* Refused with `want`, and the message mentions `words`. */
static void refused(rcc_status_t st, rcc_status_t want, const char *words) {
  assert_int_equal(st, want);
  if (!strstr(rcc_last_error(), words))
    fail_msg("error message '%s' does not mention '%s'", rcc_last_error(), words);
}

static void test_backend_handle(void **state) {
  float x[4] = {1, 2, 3, 4}, y[4];
  refused(rcc_train_activation_forward(NULL, RCC_ACT_RELU, y, x, 4), RCC_ERR_ARG, "NULL backend");
  /* a backend whose table has no training kernels: refused, not a NULL call */
  rcc_backend_ops_t ops = *CPU->ops;
  ops.train = NULL;
  struct rcc_backend untrainable = *CPU;
  untrainable.ops = &ops;
  refused(rcc_train_activation_forward(&untrainable, RCC_ACT_RELU, y, x, 4), RCC_ERR_UNSUPPORTED,
          "no training ops");
}

static void test_negative_shapes(void **state) {
  float a[8] = {0}, b[8] = {0};
  int rows[2] = {0, 0};
  int32_t ids[2] = {0, 0};
  refused(rcc_train_column_sums(CPU, a, b, NULL, -1, 4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_scale_columns(CPU, a, b, b, 2, -4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_linear_epilogue(CPU, a, b, NULL, NULL, -2, 4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_layernorm_forward(CPU, a, a, a, b, b, b, 2, -4, 1e-5f), RCC_ERR_ARG,
          "negative shape");
  refused(rcc_train_layernorm_backward(CPU, a, a, a, b, b, b, b, b, -2, 4), RCC_ERR_ARG,
          "negative shape");
  refused(rcc_train_softmax_backward(CPU, a, b, -1, 4), RCC_ERR_ARG, "negative count");
  refused(rcc_train_softmax_backward(CPU, a, b, 2, -4), RCC_ERR_ARG, "negative count");
  refused(rcc_train_activation_backward(CPU, RCC_ACT_GELU, a, b, b, -8), RCC_ERR_ARG,
          "negative count");
  refused(rcc_train_im2col(CPU, a, b, 1, -1, 2, 1), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_patch_rows_forward(CPU, a, b, b, 1, -2, 4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_patch_rows_backward(CPU, a, a, b, 1, 2, -4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_token_embed_forward(CPU, a, ids, b, b, -1, 2, 4), RCC_ERR_ARG,
          "negative shape");
  refused(rcc_train_token_embed_backward(CPU, a, a, b, ids, 1, -2, 4), RCC_ERR_ARG,
          "negative shape");
  refused(rcc_train_pool_forward(CPU, a, b, rows, 2, 2, -2), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_pool_backward(CPU, a, b, rows, -2, 2, 2), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_l2norm_forward(CPU, a, a, b, -2, 4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_l2norm_backward(CPU, a, b, b, b, 2, -4), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_logit_scale_backward(CPU, a, b, b, 1.0f, -8), RCC_ERR_ARG, "negative count");
}

static void test_bad_values(void **state) {
  float a[16] = {0}, b[16] = {0}, keep[16];
  memcpy(keep, a, sizeof keep);
  refused(rcc_train_activation_forward(CPU, (rcc_activation_t)99, a, b, 4), RCC_ERR_ARG,
          "unknown activation");
  refused(rcc_train_activation_backward(CPU, (rcc_activation_t)-1, a, b, b, 4), RCC_ERR_ARG,
          "unknown activation");
  refused(rcc_train_layernorm_forward(CPU, a, a, a, b, b, b, 2, 4, -1e-5f), RCC_ERR_ARG, "eps");
  refused(rcc_train_layernorm_forward(CPU, a, a, a, b, b, b, 2, 4, NAN), RCC_ERR_ARG, "eps");
  refused(rcc_train_im2col(CPU, a, b, 1, 1, 4, 0), RCC_ERR_ARG, "patch size 0");
  refused(rcc_train_im2col(CPU, a, b, 1, 1, 4, 3), RCC_ERR_ARG, "divide the image size 4");
  refused(rcc_train_logit_scale_backward(CPU, a, b, b, 0.0f, 4), RCC_ERR_ARG, "scale is 0");
  refused(rcc_train_pool_forward(CPU, a, b, (const int *)b, 2, 0, 4), RCC_ERR_ARG,
          "empty sequences");
  /* nothing was written by a refused call */
  assert_memory_equal(a, keep, sizeof keep);
}

static void test_missing_buffers(void **state) {
  float a[16] = {0}, b[16] = {0};
  int32_t ids[4] = {0};
  refused(rcc_train_linear_epilogue(CPU, NULL, a, b, NULL, 2, 2), RCC_ERR_ARG, "y is NULL");
  refused(rcc_train_column_sums(CPU, a, NULL, b, 2, 2), RCC_ERR_ARG, "a is NULL");
  refused(rcc_train_scale_columns(CPU, a, b, NULL, 2, 2), RCC_ERR_ARG, "alpha is NULL");
  refused(rcc_train_layernorm_forward(CPU, a, NULL, a, b, b, b, 2, 2, 1e-5f), RCC_ERR_ARG,
          "mean is NULL");
  refused(rcc_train_layernorm_forward(CPU, a, a, a, b, b, NULL, 2, 2, 1e-5f), RCC_ERR_ARG,
          "b is NULL");
  refused(rcc_train_layernorm_backward(CPU, NULL, NULL, NULL, b, b, b, b, b, 2, 2), RCC_ERR_ARG,
          "all NULL");
  /* w is needed for dinp only */
  refused(rcc_train_layernorm_backward(CPU, a, NULL, NULL, b, b, NULL, b, b, 2, 2), RCC_ERR_ARG,
          "w is NULL");
  assert_int_equal(rcc_train_layernorm_backward(CPU, NULL, a, a, b, b, NULL, b, b, 2, 2), RCC_OK);
  refused(rcc_train_softmax_backward(CPU, a, NULL, 2, 2), RCC_ERR_ARG, "att is NULL");
  refused(rcc_train_activation_backward(CPU, RCC_ACT_RELU, a, b, NULL, 4), RCC_ERR_ARG,
          "inp is NULL");
  refused(rcc_train_im2col(CPU, NULL, b, 1, 1, 4, 2), RCC_ERR_ARG, "cols is NULL");
  refused(rcc_train_patch_rows_forward(CPU, a, NULL, b, 1, 2, 2), RCC_ERR_ARG, "cls is NULL");
  refused(rcc_train_patch_rows_backward(CPU, NULL, NULL, b, 1, 2, 2), RCC_ERR_ARG, "both NULL");
  refused(rcc_train_token_embed_forward(CPU, a, NULL, b, b, 1, 2, 2), RCC_ERR_ARG, "ids is NULL");
  refused(rcc_train_token_embed_backward(CPU, NULL, NULL, b, ids, 1, 2, 2), RCC_ERR_ARG,
          "both NULL");
  refused(rcc_train_pool_forward(CPU, a, b, NULL, 1, 2, 2), RCC_ERR_ARG, "rows is NULL");
  refused(rcc_train_pool_backward(CPU, NULL, b, (const int *)ids, 1, 2, 2), RCC_ERR_ARG,
          "dx is NULL");
  refused(rcc_train_l2norm_forward(CPU, a, NULL, b, 2, 2), RCC_ERR_ARG, "norm is NULL");
  refused(rcc_train_l2norm_backward(CPU, a, b, b, NULL, 2, 2), RCC_ERR_ARG, "norm is NULL");
  refused(rcc_train_logit_scale_backward(CPU, NULL, b, b, 1.0f, 4), RCC_ERR_ARG, "dscale is NULL");
}

/* Nothing to compute: success without touching (or needing) the buffers. */
static void test_empty_shapes(void **state) {
  assert_int_equal(rcc_train_linear_epilogue(CPU, NULL, NULL, NULL, NULL, 0, 4), RCC_OK);
  assert_int_equal(rcc_train_column_sums(CPU, NULL, NULL, NULL, 4, 0), RCC_OK);
  assert_int_equal(rcc_train_scale_columns(CPU, NULL, NULL, NULL, 0, 0), RCC_OK);
  assert_int_equal(rcc_train_layernorm_forward(CPU, NULL, NULL, NULL, NULL, NULL, NULL, 0, 8, 0),
                   RCC_OK);
  float g[2] = {0};
  assert_int_equal(
      rcc_train_layernorm_backward(CPU, g, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 8), RCC_OK);
  assert_int_equal(rcc_train_softmax_backward(CPU, NULL, NULL, 0, 8), RCC_OK);
  assert_int_equal(rcc_train_activation_forward(CPU, RCC_ACT_GELU, NULL, NULL, 0), RCC_OK);
  assert_int_equal(rcc_train_activation_backward(CPU, RCC_ACT_GELU, NULL, NULL, NULL, 0), RCC_OK);
  assert_int_equal(rcc_train_im2col(CPU, NULL, NULL, 0, 3, 4, 2), RCC_OK);
  assert_int_equal(rcc_train_patch_rows_forward(CPU, NULL, NULL, NULL, 0, 5, 8), RCC_OK);
  assert_int_equal(rcc_train_patch_rows_backward(CPU, g, NULL, NULL, 2, 5, 0), RCC_OK);
  assert_int_equal(rcc_train_token_embed_forward(CPU, NULL, NULL, NULL, NULL, 2, 0, 8), RCC_OK);
  assert_int_equal(rcc_train_token_embed_backward(CPU, NULL, g, NULL, NULL, 0, 2, 8), RCC_OK);
  assert_int_equal(rcc_train_pool_forward(CPU, NULL, NULL, NULL, 0, 4, 8), RCC_OK);
  assert_int_equal(rcc_train_pool_backward(CPU, NULL, NULL, NULL, 2, 4, 0), RCC_OK);
  assert_int_equal(rcc_train_l2norm_forward(CPU, NULL, NULL, NULL, 0, 8), RCC_OK);
  assert_int_equal(rcc_train_l2norm_backward(CPU, NULL, NULL, NULL, NULL, 4, 0), RCC_OK);
  assert_int_equal(rcc_train_logit_scale_backward(CPU, g, NULL, NULL, 2.0f, 0), RCC_OK);
  assert_true(g[0] == 0.0f && g[1] == 0.0f);
}

static void test_optimizer_args(void **state) {
  float a[4] = {1, 2, 3, 4};
  uint8_t mask[4] = {0};
  double out = 7.0;
  const rcc_train_adamw_t h = {1e-3, 0.9, 0.999, 1e-8, 0.0, 0};
  refused(rcc_train_fill(CPU, a, 0.0f, -1), RCC_ERR_ARG, "negative count");
  refused(rcc_train_copy(CPU, a, NULL, 4), RCC_ERR_ARG, "src is NULL");
  refused(rcc_train_adamw_step(CPU, a, a, a, a, NULL, 4, &h), RCC_ERR_ARG, "step 0");
  refused(rcc_train_adamw_step(CPU, a, a, a, a, NULL, 4, NULL), RCC_ERR_ARG, "h is NULL");
  refused(rcc_train_distill_grads(CPU, a, a, a, NULL, mask, 4, 1.0f, 0.0f, 0.0, &out), RCC_ERR_ARG,
          "frozen is NULL");
  refused(rcc_train_clip_grad_norm(CPU, a, 4, 1.0, NULL), RCC_ERR_ARG, "norm is NULL");
  /* empty: nothing read, the scalar results are 0 */
  assert_int_equal(rcc_train_fill(CPU, NULL, 1.0f, 0), RCC_OK);
  assert_int_equal(rcc_train_distill_grads(CPU, NULL, NULL, NULL, NULL, NULL, 0, 1, 0, 0, &out),
                   RCC_OK);
  assert_true(out == 0.0);
  out = 7.0;
  assert_int_equal(rcc_train_clip_grad_norm(CPU, NULL, 0, 1.0, &out), RCC_OK);
  assert_true(out == 0.0);
}

static uint8_t *some_mask(size_t n, int every) {
  uint8_t *m = rcc_test_malloc(n);
  for (size_t i = 0; i < n; i++)
    m[i] = i % (size_t)every == 1;
  return m;
}

static void expect_same_bits(const float *a, const float *b, size_t n, const char *what) {
  if (memcmp(a, b, n * sizeof *a) != 0) fail_msg("%s: not bit-identical", what);
}

static void test_optimizer_matches_host(void **state) {
  const size_t n = 10007;
  float *x = rcc_test_random_floats(n, -1, 1);
  assert_int_equal(rcc_train_fill(CPU, x, -0.5f, (int64_t)n), RCC_OK);
  for (size_t i = 0; i < n; i++)
    assert_true(x[i] == -0.5f);
  float *src = rcc_test_random_floats(n, -1, 1);
  assert_int_equal(rcc_train_copy(CPU, x, src, (int64_t)n), RCC_OK);
  expect_same_bits(x, src, n, "copy");

  /* distillation's update against the loop it replaced */
  uint8_t *frozen = some_mask(n, 5), *pull = some_mask(n, 3), *decay = some_mask(n, 2);
  float *g = rcc_test_random_floats(n, -1, 1), *p = rcc_test_random_floats(n, -2, 2);
  float *start = rcc_test_random_floats(n, -2, 2), *want = rcc_test_malloc(n * sizeof *want);
  memcpy(want, g, n * sizeof *want);
  double reg_want = 0.0, reg = -1.0;
  for (size_t i = 0; i < n; i++) {
    want[i] = frozen[i] ? 0.0f : want[i] * 0.5f;
    if (pull[i]) {
      const float dev = p[i] - start[i];
      want[i] += 0.02f * dev;
      reg_want += 0.01 * (double)dev * dev;
    }
  }
  assert_int_equal(
      rcc_train_distill_grads(CPU, g, p, start, frozen, pull, (int64_t)n, 0.5f, 0.02f, 0.01, &reg),
      RCC_OK);
  expect_same_bits(g, want, n, "distill gradient");
  assert_true(reg == reg_want && reg > 0.0);

  /* clipping, then three AdamW steps, against compress/optim.h */
  double norm = 0.0;
  const double norm_want = rcc_clip_grad_norm(want, (int64_t)n, 0.5);
  assert_int_equal(rcc_train_clip_grad_norm(CPU, g, (int64_t)n, 0.5, &norm), RCC_OK);
  assert_true(norm == norm_want && norm > 0.5);
  expect_same_bits(g, want, n, "clipped gradient");
  rcc_adamw_t opt;
  const rcc_adamw_config_t cfg = {0.9, 0.999, 1e-8, 0.05};
  assert_int_equal(rcc_adamw_init(&opt, (int64_t)n, &cfg), RCC_OK);
  float *q = rcc_test_malloc(n * sizeof *q), *m = rcc_test_malloc(n * sizeof *m);
  float *v = rcc_test_malloc(n * sizeof *v);
  memcpy(q, p, n * sizeof *q);
  memset(m, 0, n * sizeof *m);
  memset(v, 0, n * sizeof *v);
  for (int step = 1; step <= 3; step++) {
    const double lr = 1e-3 * step;
    rcc_adamw_step(&opt, p, g, lr, step == 3 ? NULL : decay);
    const rcc_train_adamw_t h = {lr, 0.9, 0.999, 1e-8, 0.05, step};
    assert_int_equal(
        rcc_train_adamw_step(CPU, q, m, v, g, step == 3 ? NULL : decay, (int64_t)n, &h), RCC_OK);
  }
  expect_same_bits(q, p, n, "adamw params");
  expect_same_bits(m, opt.m, n, "adamw m");
  expect_same_bits(v, opt.v, n, "adamw v");
  rcc_adamw_free(&opt);
  void *all[] = {x, src, frozen, pull, decay, g, p, start, want, q, m, v};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]);
}

/* gather then scatter: the kept entries come back scaled, the others untouched. */
static void test_gather_scatter(void **state) {
  enum { N = 1001 };
  float *x = rcc_test_random_floats(N, -1, 1), before[N], packed[N];
  memcpy(before, x, sizeof before);
  int64_t idx[N], k = 0;
  for (int64_t i = N - 1; i >= 0; i -= 3) /* descending: the order is the caller's */
    idx[k++] = i;
  assert_int_equal(rcc_train_gather(CPU, packed, x, idx, k), RCC_OK);
  for (int64_t j = 0; j < k; j++) {
    assert_true(packed[j] == x[idx[j]]);
    packed[j] *= 2.0f;
  }
  assert_int_equal(rcc_train_scatter(CPU, x, packed, idx, k), RCC_OK);
  for (int64_t i = 0; i < N; i++)
    assert_true(x[i] == ((N - 1 - i) % 3 == 0 ? 2.0f * before[i] : before[i]));
  refused(rcc_train_gather(CPU, NULL, x, idx, k), RCC_ERR_ARG, "rcc_train_gather");
  refused(rcc_train_scatter(CPU, x, packed, NULL, k), RCC_ERR_ARG, "rcc_train_scatter");
  assert_int_equal(rcc_train_scatter(CPU, NULL, NULL, NULL, 0), RCC_OK);
  free(x);
}

static void test_loss_args(void **state) {
  float a[8] = {0}, b[8] = {0}, keep[8];
  memcpy(keep, a, sizeof keep);
  double loss = 3.0;
  refused(rcc_train_group_mean_forward(CPU, a, b, 2, -1, 2), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_group_mean_forward(CPU, a, b, 2, 0, 2), RCC_ERR_ARG, "empty groups");
  refused(rcc_train_group_mean_backward(CPU, a, b, -2, 1, 2), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_group_mean_backward(CPU, a, NULL, 2, 1, 2), RCC_ERR_ARG, "dout is NULL");
  refused(rcc_train_kd_loss(CPU, a, b, b, -1, 4, 1.0, 1.0, &loss), RCC_ERR_ARG, "negative shape");
  refused(rcc_train_kd_loss(CPU, a, b, b, 2, 4, 0.0, 1.0, &loss), RCC_ERR_ARG, "temperature 0");
  refused(rcc_train_kd_loss(CPU, a, b, b, 2, 4, NAN, 1.0, &loss), RCC_ERR_ARG, "temperature");
  refused(rcc_train_kd_loss(CPU, a, b, b, 2, 0, 1.0, 1.0, &loss), RCC_ERR_ARG, "no classes");
  refused(rcc_train_kd_loss(CPU, a, b, NULL, 2, 4, 1.0, 1.0, &loss), RCC_ERR_ARG,
          "logits_t is NULL");
  refused(rcc_train_kd_loss(CPU, a, b, b, 2, 4, 1.0, 1.0, NULL), RCC_ERR_ARG, "loss is NULL");
  refused(rcc_train_embedding_loss(CPU, (rcc_train_embed_t)7, a, b, b, 2, 4, 1.0, 1.0, &loss),
          RCC_ERR_ARG, "unknown kind");
  refused(rcc_train_embedding_loss(CPU, RCC_TRAIN_EMBED_MSE, a, b, b, 2, 4, 1.0, 0.0, &loss),
          RCC_ERR_ARG, "count 0");
  refused(rcc_train_embedding_loss(CPU, RCC_TRAIN_EMBED_MSE, a, b, b, 2, -4, 1.0, 1.0, &loss),
          RCC_ERR_ARG, "negative shape");
  refused(rcc_train_embedding_loss(CPU, RCC_TRAIN_EMBED_COSINE, NULL, b, b, 2, 4, 1.0, 1.0, &loss),
          RCC_ERR_ARG, "da is NULL");
  assert_memory_equal(a, keep, sizeof keep);
  assert_true(loss == 3.0);
  /* empty: nothing read, nothing added to the loss */
  assert_int_equal(rcc_train_group_mean_forward(CPU, NULL, NULL, 0, 0, 4), RCC_OK);
  assert_int_equal(rcc_train_group_mean_backward(CPU, NULL, NULL, 3, 0, 4), RCC_OK);
  assert_int_equal(rcc_train_kd_loss(CPU, NULL, NULL, NULL, 0, 4, 2.0, 1.0, &loss), RCC_OK);
  assert_int_equal(
      rcc_train_embedding_loss(CPU, RCC_TRAIN_EMBED_COSINE, NULL, NULL, NULL, 0, 4, 1, 1, &loss),
      RCC_OK);
  assert_true(loss == 3.0);
}

/* The loss ops against the loops compress/distill_loss.c ran before they moved: the same
 * bits, the loss summed as one running total over the ops. */
static void test_loss_matches_host(void **state) {
  enum { G = 7, NT = 5, B = 9, M = 13, P = 33 };
  float *U = rcc_test_random_floats((size_t)G * NT * P, -1, 1);
  float *mean = rcc_test_malloc(sizeof(float) * G * P), want_mean[G * P];
  for (int c = 0; c < G; c++)
    for (int j = 0; j < P; j++) {
      double s = 0.0;
      for (int t = 0; t < NT; t++)
        s += U[((size_t)c * NT + t) * P + j];
      want_mean[c * P + j] = (float)(s / NT);
    }
  assert_int_equal(rcc_train_group_mean_forward(CPU, mean, U, G, NT, P), RCC_OK);
  expect_same_bits(mean, want_mean, (size_t)G * P, "template mean");
  float *dU = rcc_test_random_floats((size_t)G * NT * P, -1, 1);
  float *want_dU = rcc_test_malloc(sizeof(float) * G * NT * P);
  for (int c = 0; c < G; c++)
    for (int t = 0; t < NT; t++)
      for (int j = 0; j < P; j++) {
        const size_t i = ((size_t)c * NT + t) * P + j;
        want_dU[i] = dU[i] + mean[c * P + j] / (float)NT;
      }
  assert_int_equal(rcc_train_group_mean_backward(CPU, dU, mean, G, NT, P), RCC_OK);
  expect_same_bits(dU, want_dU, (size_t)G * NT * P, "template mean backward");

  const double T = 2.5, kd = 0.3 / B;
  float *ls = rcc_test_random_floats((size_t)B * M, -20, 20);
  float *lt = rcc_test_random_floats((size_t)B * M, -20, 20);
  float *dl = rcc_test_malloc(sizeof(float) * B * M);
  /* An independent oracle, not the op's own loop: plain probabilities in long double (no
   * max shift; |logit / T| <= 8 keeps exp in range), KL and T (p_s - p_t) from them. */
  long double want = 0.25L;
  double worst_dl = 0.0, loss = 0.25;
  assert_int_equal(rcc_train_kd_loss(CPU, dl, ls, lt, B, M, T, kd, &loss), RCC_OK);
  for (int i = 0; i < B; i++) {
    const float *s = ls + (size_t)i * M, *t = lt + (size_t)i * M;
    long double zs = 0.0L, zt = 0.0L, kl = 0.0L, row = 0.0L;
    for (int c = 0; c < M; c++) {
      zs += expl(s[c] / (long double)T);
      zt += expl(t[c] / (long double)T);
    }
    for (int c = 0; c < M; c++) {
      const long double ps = expl(s[c] / (long double)T) / zs,
                        pt = expl(t[c] / (long double)T) / zt;
      kl += pt * logl(pt / ps);
      const double g = (double)(kd * T * (ps - pt));
      worst_dl = fmax(worst_dl, fabs(dl[i * M + c] - g) / (kd * T));
      row += dl[i * M + c];
    }
    want += kd * T * T * kl;
    assert_true(fabsl(row) <= 1e-6L * kd * T); /* softmax differences sum to 0 per image */
  }
  printf("  kd: loss %.17g against %.17Lg, gradient within %.1e\n", loss, want, worst_dl);
  assert_true(fabsl(loss - want) <= 1e-12L * want && loss > 0.25);
  assert_true(worst_dl <= 1e-7);
  /* identical logits: no divergence, no gradient, the total unchanged */
  loss = 0.25;
  assert_int_equal(rcc_train_kd_loss(CPU, dl, ls, ls, B, M, T, kd, &loss), RCC_OK);
  assert_true(loss == 0.25);
  for (int i = 0; i < B * M; i++)
    assert_true(dl[i] == 0.0f);

  /* the image terms (count 1), then the class term (a mean) on the same total */
  double want_e = loss;
  float *a = rcc_test_random_floats((size_t)B * P, -1, 1),
        *b = rcc_test_random_floats((size_t)B * P, -1, 1);
  for (int kind = 0; kind < 2; kind++) {
    const double w = 0.7 / B, count = kind ? 1.0 : (double)B;
    float *da = rcc_test_random_floats((size_t)B * P, -1, 1), want_da[B * P];
    memcpy(want_da, da, sizeof want_da);
    for (int i = 0; i < B; i++) {
      const size_t o = (size_t)i * P;
      double cos = 0.0, sq = 0.0;
      for (int j = 0; j < P; j++) {
        cos += (double)a[o + j] * b[o + j];
        sq += ((double)a[o + j] - b[o + j]) * ((double)a[o + j] - b[o + j]);
      }
      if (kind == RCC_TRAIN_EMBED_COSINE) {
        want_e += w * (1.0 - cos) / count;
        for (int j = 0; j < P; j++)
          want_da[o + j] -= (float)(w / count) * b[o + j];
      } else {
        want_e += w * sq / P;
        for (int j = 0; j < P; j++)
          want_da[o + j] += (float)(w * 2.0 / P) * (a[o + j] - b[o + j]);
      }
    }
    assert_int_equal(
        rcc_train_embedding_loss(CPU, (rcc_train_embed_t)kind, da, a, b, B, P, w, count, &loss),
        RCC_OK);
    expect_same_bits(da, want_da, (size_t)B * P, kind ? "mse gradient" : "cosine gradient");
    assert_true(loss == want_e);
    free(da);
  }
  void *all[] = {U, mean, dU, want_dU, ls, lt, dl, a, b};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    free(all[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_backend_handle),
      cmocka_unit_test(test_negative_shapes),
      cmocka_unit_test(test_bad_values),
      cmocka_unit_test(test_missing_buffers),
      cmocka_unit_test(test_empty_shapes),
      cmocka_unit_test(test_optimizer_args),
      cmocka_unit_test(test_optimizer_matches_host),
      cmocka_unit_test(test_gather_scatter),
      cmocka_unit_test(test_loss_args),
      cmocka_unit_test(test_loss_matches_host),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu, rcc_test_close_backends);
}
