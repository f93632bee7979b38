/* The CUDA training kernels (backend_train.h) against the CPU ones: every rcc_train_ op on
 * the same random inputs at a ViT-B/32 shape (8 images of 50 tokens, width 768, 12 heads,
 * MLP 3072) and at an odd small one (every size prime or off the block sizes). Outputs
 * that an op overwrites start as NaN on the GPU (a value the kernel forgot to write
 * fails); buffers an op adds into start from the same random values on both sides (which
 * also checks += against =). Compared by normalized error, max |gpu - cpu| / max |cpu|:
 *  - ELEM_BOUND 1e-5 for everything computed per value or per row: the formulas are the
 *    CPU's, row statistics are summed in double on both sides, and what differs is the
 *    device's erff/expf/tanhf (a few ulp) and contracted multiply-adds (an ulp per step);
 *  - SUM_BOUND 1e-4 for the float sums over rows (dbias, dalpha, LayerNorm dw/db): the
 *    CPU adds the N = 400 rows one after another, the GPU in 16 interleaved partial sums,
 *    and two float orders of N terms may differ by up to ~N * 2^-24 = 2.4e-5 of the sum of
 *    magnitudes (typically ~sqrt(N) times less).
 * The optimizer ops (fill, copy, AdamW, distillation's gradient and clipping) run on a
 * parameter vector of 1,000,003 entries with random masks:
 *  - fill, copy, the AdamW step and the per-entry gradient update must match exactly
 *    (bound 0): the kernels use the CPU's float and double formulas with the rounding of
 *    each step pinned (no contracted multiply-adds), and correctly rounded / and sqrt;
 *  - the regularization and the gradient norm are sums in double of n terms, in another
 *    order on the GPU: relative 1e-12 (n * 2^-53 = 1.1e-10 worst case, far less typical);
 *    the clipped gradient then differs by at most one float rounding: ELEM_BOUND.
 * The distillation loss ops run at CLIP's shape (64 images, 1000 classes of 8 templates,
 * width 512: more classes than a row's block has threads) and an odd one:
 *  - the template mean, its backward and the embedding terms' gradients must match exactly
 *    (bound 0): the same float and double formulas, the template rows added in the CPU's
 *    order, every float step pinned (_rn intrinsics);
 *  - KD's gradient goes through the device's double exp and log (within 2 ulp) before its
 *    rounding to float: ELEM_BOUND;
 *  - the loss terms are double sums in another order, through exp and log for KD:
 *    relative LOSS_BOUND 1e-10 (rows x width x 2^-53 is ~1e-11 at worst, with room for
 *    the cancellation of KL's signed terms).
 * Without a GPU (or a CUDA build) it prints "skipped: no GPU" and exits 77. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_train.h"
#include "tests/backend_pair.h"
#include "tests/harness.h"

#define ELEM_BOUND 1e-5
#define SUM_BOUND 1e-4
#define LOSS_BOUND 1e-10

typedef struct {
  const char *name;
  int B, T, C, H, I; /* batch, tokens per sequence, width, heads, MLP width */
  int channels, S, p, vocab;
} shape_t;

/* T = 1 + (S/p)^2 for the patch embedding. */
static const shape_t shapes[] = {
    {"ViT-B/32", 8, 50, 768, 12, 3072, 3, 224, 32, 1000},
    {"odd", 3, 10, 37, 1, 53, 2, 15, 5, 5},
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* One tensor on both sides: h is what the CPU op reads or writes, d the device copy. */
typedef struct {
  float *h, *d;
  size_t n;
} pair_t;

/* An input: the same random values on both sides. Also an accumulate-into buffer. */
static pair_t input(size_t n, float lo, float hi) {
  pair_t p = {rcc_test_random_floats(n, lo, hi), NULL, n};
  p.d = rcc_test_to_gpu(p.h, n * sizeof *p.h);
  return p;
}

/* An output the op overwrites: NaN on both sides. */
static pair_t output(size_t n) {
  pair_t p = {rcc_test_nan_floats(n), rcc_test_gpu_nan_floats(n), n};
  return p;
}

static void release(pair_t *p) {
  free(p->h);
  rcc_backend_release(rcc_test_gpu, p->d);
  p->h = p->d = NULL;
}

/* Compares the device copy with the CPU's result. */
static void check(const char *shape, const char *what, const pair_t *p, double bound) {
  float *got = rcc_test_from_gpu(p->d, p->n);
  const double err = rcc_normalized_error(got, p->h, p->n);
  printf("  %-8s %-38s normalized error %.2e (bound %.0e)\n", shape, what, err, bound);
  if (!(err <= bound)) fail_msg("%s %s: normalized error %.3e > %.0e", shape, what, err, bound);
  free(got);
}

/* Device copy of host bytes that are not floats (ids, rows). */
static void *bytes_to_gpu(const void *h, size_t bytes) { return rcc_test_to_gpu(h, bytes); }

/* Rows of att (rows, L) as a softmax would leave them: positive, summing to 1. */
static pair_t probabilities(int64_t rows, int L) {
  float *h = rcc_test_random_floats((size_t)rows * L, 0.0f, 1.0f);
  for (int64_t r = 0; r < rows; r++) {
    double s = 0.0;
    for (int j = 0; j < L; j++)
      s += h[r * L + j];
    for (int j = 0; j < L; j++)
      h[r * L + j] = (float)(h[r * L + j] / s);
  }
  pair_t p = {h, rcc_test_to_gpu(h, (size_t)rows * L * sizeof *h), (size_t)rows * L};
  return p;
}

#define CPU rcc_test_cpu
#define GPU rcc_test_gpu
#define BOTH(call_cpu, call_gpu)                                                                   \
  do {                                                                                             \
    assert_int_equal(call_cpu, RCC_OK);                                                            \
    assert_int_equal(call_gpu, RCC_OK);                                                            \
  } while (0)

static void test_linear(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int N = sh->B * sh->T, m = sh->I;
    pair_t alpha = input(m, 0.5f, 1.5f), bias = input(m, -1, 1), b = input((size_t)N * m, -1, 1);
    /* every combination of P, alpha and bias the epilogue accepts */
    for (int mode = 1; mode < 8; mode++) {
      const bool with_p = mode & 1, with_alpha = mode & 2, with_bias = mode & 4;
      pair_t y = input((size_t)N * m, -2, 2), P = output((size_t)N * m);
      BOTH(rcc_train_linear_epilogue(CPU, y.h, with_p ? P.h : NULL, with_alpha ? alpha.h : NULL,
                                     with_bias ? bias.h : NULL, N, m),
           rcc_train_linear_epilogue(GPU, y.d, with_p ? P.d : NULL, with_alpha ? alpha.d : NULL,
                                     with_bias ? bias.d : NULL, N, m));
      char what[64];
      snprintf(what, sizeof what, "linear epilogue y (P %d a %d b %d)", with_p, with_alpha,
               with_bias);
      check(sh->name, what, &y, ELEM_BOUND);
      if (with_p) check(sh->name, "linear epilogue P", &P, ELEM_BOUND);
      release(&y);
      release(&P);
    }
    pair_t dy = input((size_t)N * m, -1, 1), dbias = input(m, -1, 1), dalpha = input(m, -1, 1);
    BOTH(rcc_train_column_sums(CPU, dbias.h, dy.h, NULL, N, m),
         rcc_train_column_sums(GPU, dbias.d, dy.d, NULL, N, m));
    check(sh->name, "column sums (dbias)", &dbias, SUM_BOUND);
    BOTH(rcc_train_column_sums(CPU, dalpha.h, dy.h, b.h, N, m),
         rcc_train_column_sums(GPU, dalpha.d, dy.d, b.d, N, m));
    check(sh->name, "column sums (dalpha)", &dalpha, SUM_BOUND);
    pair_t gy = output((size_t)N * m);
    BOTH(rcc_train_scale_columns(CPU, gy.h, dy.h, alpha.h, N, m),
         rcc_train_scale_columns(GPU, gy.d, dy.d, alpha.d, N, m));
    check(sh->name, "scale columns", &gy, ELEM_BOUND);
    pair_t *all[] = {&alpha, &bias, &b, &dy, &dbias, &dalpha, &gy};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
  }
}

static void test_layernorm(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int N = sh->B * sh->T, C = sh->C;
    /* an offset mean, so that the two-pass variance matters */
    pair_t x = input((size_t)N * C, 2.0f, 4.0f), w = input(C, 0.5f, 1.5f), b = input(C, -1, 1);
    pair_t y = output((size_t)N * C), mean = output(N), rstd = output(N);
    BOTH(rcc_train_layernorm_forward(CPU, y.h, mean.h, rstd.h, x.h, w.h, b.h, N, C, 1e-5f),
         rcc_train_layernorm_forward(GPU, y.d, mean.d, rstd.d, x.d, w.d, b.d, N, C, 1e-5f));
    check(sh->name, "layernorm forward out", &y, ELEM_BOUND);
    check(sh->name, "layernorm forward mean", &mean, ELEM_BOUND);
    check(sh->name, "layernorm forward rstd", &rstd, ELEM_BOUND);
    /* the backward reads the CPU's statistics on both sides */
    assert_int_equal(rcc_backend_upload(GPU, mean.d, mean.h, (size_t)N * sizeof *mean.h), RCC_OK);
    assert_int_equal(rcc_backend_upload(GPU, rstd.d, rstd.h, (size_t)N * sizeof *rstd.h), RCC_OK);
    pair_t dy = input((size_t)N * C, -1, 1);
    pair_t dx = input((size_t)N * C, -1, 1), dw = input(C, -1, 1), db = input(C, -1, 1);
    BOTH(rcc_train_layernorm_backward(CPU, dx.h, dw.h, db.h, dy.h, x.h, w.h, mean.h, rstd.h, N, C),
         rcc_train_layernorm_backward(GPU, dx.d, dw.d, db.d, dy.d, x.d, w.d, mean.d, rstd.d, N, C));
    check(sh->name, "layernorm backward dinp", &dx, ELEM_BOUND);
    check(sh->name, "layernorm backward dw", &dw, SUM_BOUND);
    check(sh->name, "layernorm backward db", &db, SUM_BOUND);
    /* parameters only, and db alone: the NULL outputs must stay untouched */
    BOTH(rcc_train_layernorm_backward(CPU, NULL, NULL, db.h, dy.h, x.h, w.h, mean.h, rstd.h, N, C),
         rcc_train_layernorm_backward(GPU, NULL, NULL, db.d, dy.d, x.d, w.d, mean.d, rstd.d, N, C));
    check(sh->name, "layernorm backward db alone", &db, SUM_BOUND);
    check(sh->name, "layernorm backward dinp untouched", &dx, ELEM_BOUND);
    pair_t *all[] = {&x, &w, &b, &y, &mean, &rstd, &dy, &dx, &dw, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
  }
}

static void test_softmax_backward(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int64_t rows = (int64_t)sh->B * sh->H * sh->T;
    pair_t att = probabilities(rows, sh->T), datt = input((size_t)rows * sh->T, -1, 1);
    BOTH(rcc_train_softmax_backward(CPU, datt.h, att.h, rows, sh->T),
         rcc_train_softmax_backward(GPU, datt.d, att.d, rows, sh->T));
    check(sh->name, "softmax backward", &datt, ELEM_BOUND);
    release(&att);
    release(&datt);
  }
}

static void test_activations(void **state) {
  static const rcc_activation_t acts[] = {RCC_ACT_GELU, RCC_ACT_GELU_TANH, RCC_ACT_QUICK_GELU,
                                          RCC_ACT_RELU};
  static const char *const names[] = {"gelu", "gelu_tanh", "quick_gelu", "relu"};
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int64_t n = (int64_t)sh->B * sh->T * sh->I;
    pair_t x = input((size_t)n, -6, 6), dout = input((size_t)n, -1, 1);
    for (int a = 0; a < 4; a++) {
      char what[64];
      pair_t y = output((size_t)n), dx = input((size_t)n, -1, 1);
      BOTH(rcc_train_activation_forward(CPU, acts[a], y.h, x.h, n),
           rcc_train_activation_forward(GPU, acts[a], y.d, x.d, n));
      snprintf(what, sizeof what, "%s forward", names[a]);
      check(sh->name, what, &y, ELEM_BOUND);
      BOTH(rcc_train_activation_backward(CPU, acts[a], dx.h, dout.h, x.h, n),
           rcc_train_activation_backward(GPU, acts[a], dx.d, dout.d, x.d, n));
      snprintf(what, sizeof what, "%s backward", names[a]);
      check(sh->name, what, &dx, ELEM_BOUND);
      release(&y);
      release(&dx);
    }
    release(&x);
    release(&dout);
  }
}

static void test_patch_embedding(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int g = sh->S / sh->p, T = g * g + 1, D = sh->C, K = sh->channels * sh->p * sh->p;
    assert_int_equal(T, sh->T);
    pair_t pixels = input((size_t)sh->B * sh->channels * sh->S * sh->S, -1, 1);
    pair_t cols = output((size_t)sh->B * (T - 1) * K);
    BOTH(rcc_train_im2col(CPU, cols.h, pixels.h, sh->B, sh->channels, sh->S, sh->p),
         rcc_train_im2col(GPU, cols.d, pixels.d, sh->B, sh->channels, sh->S, sh->p));
    check(sh->name, "im2col", &cols, 0.0);
    pair_t x = input((size_t)sh->B * T * D, -1, 1), cls = input(D, -1, 1);
    pair_t pos = input((size_t)T * D, -1, 1);
    BOTH(rcc_train_patch_rows_forward(CPU, x.h, cls.h, pos.h, sh->B, T, D),
         rcc_train_patch_rows_forward(GPU, x.d, cls.d, pos.d, sh->B, T, D));
    check(sh->name, "patch rows forward", &x, ELEM_BOUND);
    pair_t dx = input((size_t)sh->B * T * D, -1, 1), dcls = input(D, -1, 1);
    pair_t dpos = input((size_t)T * D, -1, 1);
    BOTH(rcc_train_patch_rows_backward(CPU, dcls.h, dpos.h, dx.h, sh->B, T, D),
         rcc_train_patch_rows_backward(GPU, dcls.d, dpos.d, dx.d, sh->B, T, D));
    check(sh->name, "patch rows backward dcls", &dcls, ELEM_BOUND);
    check(sh->name, "patch rows backward dpos", &dpos, ELEM_BOUND);
    BOTH(rcc_train_patch_rows_backward(CPU, NULL, dpos.h, dx.h, sh->B, T, D),
         rcc_train_patch_rows_backward(GPU, NULL, dpos.d, dx.d, sh->B, T, D));
    check(sh->name, "patch rows backward dpos alone", &dpos, ELEM_BOUND);
    pair_t *all[] = {&pixels, &cols, &x, &cls, &pos, &dx, &dcls, &dpos};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
  }
}

static void test_token_embedding(void **state) {
  uint64_t rng = 0x9e3779b97f4a7c15ULL;
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int BT = sh->B * sh->T, D = sh->C;
    /* few tokens for many positions: repeated ids, the case that needs an ordered scatter */
    int32_t *ids = malloc((size_t)BT * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < BT; i++) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      ids[i] = (int32_t)((rng >> 33) % (uint64_t)sh->vocab);
    }
    int32_t *d_ids = bytes_to_gpu(ids, (size_t)BT * sizeof *ids);
    pair_t tok = input((size_t)sh->vocab * D, -1, 1), pos = input((size_t)sh->T * D, -1, 1);
    pair_t x = output((size_t)BT * D);
    BOTH(rcc_train_token_embed_forward(CPU, x.h, ids, tok.h, pos.h, sh->B, sh->T, D),
         rcc_train_token_embed_forward(GPU, x.d, d_ids, tok.d, pos.d, sh->B, sh->T, D));
    check(sh->name, "token embedding forward", &x, ELEM_BOUND);
    pair_t dx = input((size_t)BT * D, -1, 1), dtok = input((size_t)sh->vocab * D, -1, 1);
    pair_t dpos = input((size_t)sh->T * D, -1, 1);
    BOTH(rcc_train_token_embed_backward(CPU, dtok.h, dpos.h, dx.h, ids, sh->B, sh->T, D),
         rcc_train_token_embed_backward(GPU, dtok.d, dpos.d, dx.d, d_ids, sh->B, sh->T, D));
    check(sh->name, "token embedding backward dtok", &dtok, ELEM_BOUND);
    check(sh->name, "token embedding backward dpos", &dpos, ELEM_BOUND);
    BOTH(rcc_train_token_embed_backward(CPU, dtok.h, NULL, dx.h, ids, sh->B, sh->T, D),
         rcc_train_token_embed_backward(GPU, dtok.d, NULL, dx.d, d_ids, sh->B, sh->T, D));
    check(sh->name, "token embedding backward dtok alone", &dtok, ELEM_BOUND);
    pair_t *all[] = {&tok, &pos, &x, &dx, &dtok, &dpos};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
    free(ids);
    rcc_backend_release(GPU, d_ids);
  }
}

static void test_pooling(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int D = sh->C;
    int *rows = malloc((size_t)sh->B * sizeof *rows);
    assert_non_null(rows);
    for (int b = 0; b < sh->B; b++)
      rows[b] = (b * 7 + 3) % sh->T;
    int *d_rows = bytes_to_gpu(rows, (size_t)sh->B * sizeof *rows);
    pair_t x = input((size_t)sh->B * sh->T * D, -1, 1), out = output((size_t)sh->B * D);
    BOTH(rcc_train_pool_forward(CPU, out.h, x.h, rows, sh->B, sh->T, D),
         rcc_train_pool_forward(GPU, out.d, x.d, d_rows, sh->B, sh->T, D));
    check(sh->name, "pool forward", &out, 0.0);
    pair_t dout = input((size_t)sh->B * D, -1, 1), dx = input((size_t)sh->B * sh->T * D, -1, 1);
    BOTH(rcc_train_pool_backward(CPU, dx.h, dout.h, rows, sh->B, sh->T, D),
         rcc_train_pool_backward(GPU, dx.d, dout.d, d_rows, sh->B, sh->T, D));
    check(sh->name, "pool backward", &dx, ELEM_BOUND);
    release(&x);
    release(&out);
    release(&dout);
    release(&dx);
    free(rows);
    rcc_backend_release(GPU, d_rows);
  }
}

static void test_loss_helpers(void **state) {
  for (int s = 0; s < NSHAPES; s++) {
    const shape_t *sh = &shapes[s];
    const int N = sh->B * sh->T, C = sh->C;
    pair_t x = input((size_t)N * C, -1, 1);
    /* a zero row: norm 0, output 0, no gradient */
    memset(x.h + C, 0, (size_t)C * sizeof *x.h);
    assert_int_equal(rcc_backend_upload(GPU, x.d, x.h, (size_t)N * C * sizeof *x.h), RCC_OK);
    pair_t y = output((size_t)N * C), norm = output(N);
    BOTH(rcc_train_l2norm_forward(CPU, y.h, norm.h, x.h, N, C),
         rcc_train_l2norm_forward(GPU, y.d, norm.d, x.d, N, C));
    check(sh->name, "l2norm forward out", &y, ELEM_BOUND);
    check(sh->name, "l2norm forward norm", &norm, ELEM_BOUND);
    assert_int_equal(rcc_backend_upload(GPU, y.d, y.h, (size_t)N * C * sizeof *y.h), RCC_OK);
    assert_int_equal(rcc_backend_upload(GPU, norm.d, norm.h, (size_t)N * sizeof *norm.h), RCC_OK);
    pair_t dy = input((size_t)N * C, -1, 1), dx = input((size_t)N * C, -1, 1);
    BOTH(rcc_train_l2norm_backward(CPU, dx.h, dy.h, y.h, norm.h, N, C),
         rcc_train_l2norm_backward(GPU, dx.d, dy.d, y.d, norm.d, N, C));
    check(sh->name, "l2norm backward", &dx, ELEM_BOUND);
    /* logits of B images against C classes; the sum is in double on both sides */
    const int64_t count = (int64_t)sh->B * C;
    pair_t dlogits = input((size_t)count, -1, 1), logits = input((size_t)count, -20, 20);
    pair_t dscale = input(1, -1, 1);
    BOTH(rcc_train_logit_scale_backward(CPU, dscale.h, dlogits.h, logits.h, 14.3f, count),
         rcc_train_logit_scale_backward(GPU, dscale.d, dlogits.d, logits.d, 14.3f, count));
    check(sh->name, "logit scale backward", &dscale, ELEM_BOUND);
    pair_t *all[] = {&x, &y, &norm, &dy, &dx, &dlogits, &logits, &dscale};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
  }
}

/* A random 0/1 mask, about one entry in `one_in` set. */
static uint8_t *random_mask(size_t n, int one_in) {
  uint8_t *m = rcc_test_malloc(n);
  float *r = rcc_test_random_floats(n, 0.0f, 1.0f);
  for (size_t i = 0; i < n; i++)
    m[i] = r[i] * one_in < 1.0f;
  free(r);
  return m;
}

static void expect_rel(double gpu, double cpu, double bound, const char *what) {
  const double err = fabs(gpu - cpu) / (fabs(cpu) > 0 ? fabs(cpu) : 1.0);
  printf("  %-47s relative error %.2e (bound %.0e)\n", what, err, bound);
  if (!(err <= bound)) fail_msg("%s: cpu %.17g gpu %.17g", what, cpu, gpu);
}

static void test_optimizer(void **state) {
  const int64_t n = 1000003;
  pair_t x = output((size_t)n);
  BOTH(rcc_train_fill(CPU, x.h, 0.25f, n), rcc_train_fill(GPU, x.d, 0.25f, n));
  check("opt", "fill", &x, 0.0);
  pair_t src = input((size_t)n, -1, 1);
  BOTH(rcc_train_copy(CPU, x.h, src.h, n), rcc_train_copy(GPU, x.d, src.d, n));
  check("opt", "copy", &x, 0.0);

  uint8_t *frozen = random_mask((size_t)n, 5), *pull = random_mask((size_t)n, 3);
  uint8_t *d_frozen = bytes_to_gpu(frozen, (size_t)n), *d_pull = bytes_to_gpu(pull, (size_t)n);
  pair_t g = input((size_t)n, -1, 1), p = input((size_t)n, -2, 2), start = input((size_t)n, -2, 2);
  double reg_cpu = 0, reg_gpu = 0;
  BOTH(rcc_train_distill_grads(CPU, g.h, p.h, start.h, frozen, pull, n, 0.25f, 0.02f, 0.01,
                               &reg_cpu),
       rcc_train_distill_grads(GPU, g.d, p.d, start.d, d_frozen, d_pull, n, 0.25f, 0.02f, 0.01,
                               &reg_gpu));
  check("opt", "distill gradient", &g, 0.0);
  expect_rel(reg_gpu, reg_cpu, 1e-12, "opt      distill regularization");

  /* the packed all-reduce's gather and scatter, over the entries not frozen */
  int64_t *keep = rcc_test_malloc((size_t)n * sizeof *keep), n_keep = 0;
  for (int64_t i = 0; i < n; i++)
    if (!frozen[i]) keep[n_keep++] = i;
  int64_t *d_keep = bytes_to_gpu(keep, (size_t)n_keep * sizeof *keep);
  pair_t packed = output((size_t)n_keep);
  BOTH(rcc_train_gather(CPU, packed.h, g.h, keep, n_keep),
       rcc_train_gather(GPU, packed.d, g.d, d_keep, n_keep));
  check("opt", "gather", &packed, 0.0);
  BOTH(rcc_scale(CPU, packed.h, 3.0f, n_keep), rcc_scale(GPU, packed.d, 3.0f, n_keep));
  BOTH(rcc_train_scatter(CPU, g.h, packed.h, keep, n_keep),
       rcc_train_scatter(GPU, g.d, packed.d, d_keep, n_keep));
  check("opt", "scatter", &g, 0.0); /* frozen entries must keep their values */
  release(&packed);
  free(keep);
  rcc_backend_release(GPU, d_keep);

  double norm_cpu = 0, norm_gpu = 0;
  BOTH(rcc_train_clip_grad_norm(CPU, g.h, n, 1.0, &norm_cpu),
       rcc_train_clip_grad_norm(GPU, g.d, n, 1.0, &norm_gpu));
  expect_rel(norm_gpu, norm_cpu, 1e-12, "opt      gradient norm");
  if (!(norm_cpu > 1.0)) fail_msg("the norm %g does not exercise the clipping", norm_cpu);
  check("opt", "clipped gradient", &g, ELEM_BOUND);
  /* the same gradient on both sides from here, so that AdamW is compared alone */
  assert_int_equal(rcc_backend_upload(GPU, g.d, g.h, (size_t)n * sizeof *g.h), RCC_OK);

  uint8_t *decay = random_mask((size_t)n, 2), *d_decay = bytes_to_gpu(decay, (size_t)n);
  pair_t m = input((size_t)n, -0.1f, 0.1f), v = input((size_t)n, 0.0f, 0.01f);
  for (int64_t step = 1; step <= 3; step++) {
    const rcc_train_adamw_t h = {1e-3, 0.9, 0.999, 1e-8, 0.05, step};
    BOTH(rcc_train_adamw_step(CPU, p.h, m.h, v.h, g.h, decay, n, &h),
         rcc_train_adamw_step(GPU, p.d, m.d, v.d, g.d, d_decay, n, &h));
  }
  check("opt", "adamw params", &p, 0.0);
  check("opt", "adamw m", &m, 0.0);
  check("opt", "adamw v", &v, 0.0);
  /* decay NULL: every entry decays */
  const rcc_train_adamw_t h = {1e-2, 0.9, 0.999, 1e-8, 0.1, 4};
  BOTH(rcc_train_adamw_step(CPU, p.h, m.h, v.h, g.h, NULL, n, &h),
       rcc_train_adamw_step(GPU, p.d, m.d, v.d, g.d, NULL, n, &h));
  check("opt", "adamw params (all decay)", &p, 0.0);
  pair_t *all[] = {&x, &src, &g, &p, &start, &m, &v};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    release(all[i]);
  free(frozen);
  free(pull);
  free(decay);
  rcc_backend_release(GPU, d_frozen);
  rcc_backend_release(GPU, d_pull);
  rcc_backend_release(GPU, d_decay);
}

static void test_distill_loss_ops(void **state) {
  static const struct {
    const char *name;
    int B, C, NT, P;
  } ls[] = {{"CLIP", 64, 1000, 8, 512}, {"odd", 3, 7, 3, 37}};
  for (size_t s = 0; s < sizeof ls / sizeof ls[0]; s++) {
    const char *name = ls[s].name;
    const int B = ls[s].B, C = ls[s].C, NT = ls[s].NT, P = ls[s].P;
    pair_t U = input((size_t)C * NT * P, -1, 1), M = output((size_t)C * P);
    BOTH(rcc_train_group_mean_forward(CPU, M.h, U.h, C, NT, P),
         rcc_train_group_mean_forward(GPU, M.d, U.d, C, NT, P));
    check(name, "template mean", &M, 0.0);
    pair_t dM = input((size_t)C * P, -1, 1), dU = input((size_t)C * NT * P, -1, 1);
    BOTH(rcc_train_group_mean_backward(CPU, dU.h, dM.h, C, NT, P),
         rcc_train_group_mean_backward(GPU, dU.d, dM.d, C, NT, P));
    check(name, "template mean backward", &dU, 0.0);

    pair_t lst = input((size_t)B * C, -30, 30), ltt = input((size_t)B * C, -30, 30);
    pair_t dl = output((size_t)B * C);
    double loss_cpu = 0.5, loss_gpu = 0.5;
    BOTH(rcc_train_kd_loss(CPU, dl.h, lst.h, ltt.h, B, C, 2.0, 0.4 / B, &loss_cpu),
         rcc_train_kd_loss(GPU, dl.d, lst.d, ltt.d, B, C, 2.0, 0.4 / B, &loss_gpu));
    check(name, "kd gradient", &dl, ELEM_BOUND);
    expect_rel(loss_gpu - 0.5, loss_cpu - 0.5, LOSS_BOUND, "kd loss");

    pair_t a = input((size_t)B * P, -1, 1), b = input((size_t)B * P, -1, 1);
    for (int kind = 0; kind < 2; kind++) {
      pair_t da = input((size_t)B * P, -1, 1);
      loss_cpu = loss_gpu = 0.0;
      const double count = kind == RCC_TRAIN_EMBED_COSINE ? (double)B : 1.0;
      BOTH(rcc_train_embedding_loss(CPU, (rcc_train_embed_t)kind, da.h, a.h, b.h, B, P, 0.6 / B,
                                    count, &loss_cpu),
           rcc_train_embedding_loss(GPU, (rcc_train_embed_t)kind, da.d, a.d, b.d, B, P, 0.6 / B,
                                    count, &loss_gpu));
      check(name, kind ? "mse gradient" : "cosine gradient", &da, 0.0);
      expect_rel(loss_gpu, loss_cpu, LOSS_BOUND, kind ? "mse loss" : "cosine loss");
      release(&da);
    }
    pair_t *all[] = {&U, &M, &dM, &dU, &lst, &ltt, &dl, &a, &b};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
      release(all[i]);
  }
}

int main(void) {
  const int missing = rcc_test_gpu_missing();
  if (missing) return missing;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear),           cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_softmax_backward), cmocka_unit_test(test_activations),
      cmocka_unit_test(test_patch_embedding),  cmocka_unit_test(test_token_embedding),
      cmocka_unit_test(test_pooling),          cmocka_unit_test(test_loss_helpers),
      cmocka_unit_test(test_optimizer),        cmocka_unit_test(test_distill_loss_ops),
  };
  return cmocka_run_group_tests(tests, rcc_test_open_cpu_and_gpu, rcc_test_close_backends);
}
