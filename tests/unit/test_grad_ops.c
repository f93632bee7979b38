/* Every op of model/grad_ops.c against an independent float64 reference written here:
 * the float32 forward against the reference forward, and every gradient of the float32
 * backward against central finite differences of the float64 loss sum(out * R) (R random,
 * so dout = R). Gradient buffers start at 1, so the check also covers the accumulation
 * (+=) contract. Tiny random shapes. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/grad_ops.h"
#include "tests/harness.h"

/* float32 forward vs float64 reference, and float32 backward vs float64 finite differences
 * (step 1e-5: truncation ~1e-10, roundoff ~1e-11), as ||a - b|| / ||b||. */
#define FWD_TOL 1e-5
#define GRAD_TOL 1e-4
#define FD_STEP 1e-5

static rcc_backend_t be;
static uint64_t rng = 12345;

static double l2diff(const double *a, const double *b, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += (a[i] - (b ? b[i] : 0.0)) * (a[i] - (b ? b[i] : 0.0));
  return sqrt(s);
}

/* A float32 array and its exact float64 copy. */
typedef struct {
  float *f;
  double *d;
  int64_t n;
} arr_t;

static arr_t arr_rand(int64_t n, float lo, float hi) {
  arr_t a = {malloc((size_t)n * sizeof(float)), malloc((size_t)n * sizeof(double)), n};
  assert_true(a.f && a.d);
  rcc_fill_uniform(a.f, (size_t)n, lo, hi, &rng);
  for (int64_t i = 0; i < n; i++)
    a.d[i] = a.f[i];
  return a;
}

/* A gradient buffer starting at 1 (the backward must add to it). */
static float *grad_buf(int64_t n) {
  float *g = malloc((size_t)n * sizeof *g);
  assert_non_null(g);
  for (int64_t i = 0; i < n; i++)
    g[i] = 1.0f;
  return g;
}

static void arr_free(arr_t *a) {
  free(a->f);
  free(a->d);
}

/* The float64 loss of the op under test, reading the double arrays of its context. */
typedef double (*loss_fn)(void *ctx);

/* Compares g - 1 (float32 backward) with the central difference of loss over p. */
static void check_grad(const char *what, loss_fn loss, void *ctx, arr_t *p, const float *g) {
  double *fd = malloc((size_t)p->n * sizeof *fd), *an = malloc((size_t)p->n * sizeof *an);
  assert_true(fd && an);
  for (int64_t i = 0; i < p->n; i++) {
    const double keep = p->d[i];
    p->d[i] = keep + FD_STEP;
    const double up = loss(ctx);
    p->d[i] = keep - FD_STEP;
    const double down = loss(ctx);
    p->d[i] = keep;
    fd[i] = (up - down) / (2 * FD_STEP);
    an[i] = (double)g[i] - 1.0;
  }
  const double ref = l2diff(fd, NULL, p->n), err = l2diff(an, fd, p->n) / (ref > 0 ? ref : 1.0);
  printf("  %-28s normalized error %.2e (|grad| %.3g)\n", what, err, ref);
  if (!(err <= GRAD_TOL)) fail_msg("%s: gradient error %.3e > %.0e", what, err, GRAD_TOL);
  free(fd);
  free(an);
}

static void check_forward(const char *what, const float *out, const double *ref, int64_t n) {
  double *o = malloc((size_t)n * sizeof *o);
  assert_non_null(o);
  for (int64_t i = 0; i < n; i++)
    o[i] = out[i];
  const double r = l2diff(ref, NULL, n), err = l2diff(o, ref, n) / (r > 0 ? r : 1.0);
  printf("  %-28s forward error %.2e\n", what, err);
  if (!(err <= FWD_TOL)) fail_msg("%s: forward error %.3e > %.0e", what, err, FWD_TOL);
  free(o);
}

static double dot(const double *a, const arr_t *R) {
  double s = 0.0;
  for (int64_t i = 0; i < R->n; i++)
    s += a[i] * R->d[i];
  return s;
}

/* ---------------------------------------------------------------- linear */

typedef struct {
  int N, m, n, r;
  arr_t x, W, U, V, alpha, bias, R;
  uint8_t *mask;
  bool has_W, has_alpha, has_bias;
  double *y;
} lin_ctx_t;

static double lin_ref(void *p) {
  lin_ctx_t *c = p;
  for (int i = 0; i < c->N; i++)
    for (int o = 0; o < c->m; o++) {
      double acc = 0.0;
      for (int j = 0; c->has_W && j < c->n; j++)
        if (!c->mask || c->mask[o * c->n + j]) acc += c->x.d[i * c->n + j] * c->W.d[o * c->n + j];
      for (int k = 0; k < c->r; k++) {
        double z = 0.0;
        for (int j = 0; j < c->n; j++)
          z += c->x.d[i * c->n + j] * c->V.d[k * c->n + j];
        acc += z * c->U.d[o * c->r + k];
      }
      if (c->has_alpha) acc *= c->alpha.d[o];
      if (c->has_bias) acc += c->bias.d[o];
      c->y[i * c->m + o] = acc;
    }
  return dot(c->y, &c->R);
}

/* One form of the linear layer: W dense or masked or absent, rank r, alpha and bias. */
static void run_linear(const char *form, bool has_W, bool masked, int r, bool has_alpha) {
  printf("linear (%s)\n", form);
  lin_ctx_t c = {
      .N = 5, .m = 4, .n = 6, .r = r, .has_W = has_W, .has_alpha = has_alpha, .has_bias = true};
  c.x = arr_rand(c.N * c.n, -1, 1);
  c.W = arr_rand(c.m * c.n, -1, 1);
  c.U = arr_rand(c.m * (r ? r : 1), -1, 1);
  c.V = arr_rand((r ? r : 1) * c.n, -1, 1);
  c.alpha = arr_rand(c.m, 0.5f, 1.5f);
  c.bias = arr_rand(c.m, -1, 1);
  c.R = arr_rand(c.N * c.m, -1, 1);
  c.y = malloc((size_t)c.N * c.m * sizeof *c.y);
  if (masked) {
    c.mask = malloc((size_t)c.m * c.n);
    for (int i = 0; i < c.m * c.n; i++)
      c.mask[i] = (uint8_t)(i % 3 != 0);
    for (int i = 0; i < c.m * c.n; i++)
      if (!c.mask[i]) c.W.f[i] = 0.0f, c.W.d[i] = 0.0; /* S holds zeros where pruned */
  }
  rcc_grad_linear_t L = {c.m,     c.n,   r,     has_W ? c.W.f : NULL,
                         c.mask,  c.U.f, c.V.f, has_alpha ? c.alpha.f : NULL,
                         c.bias.f};
  float *y = malloc((size_t)c.N * c.m * sizeof *y), *P = malloc((size_t)c.N * c.m * sizeof *P);
  float *z = malloc((size_t)c.N * (r ? r : 1) * sizeof *z);
  float *scratch = malloc((size_t)rcc_grad_linear_scratch(&L, c.N) * sizeof *scratch);
  assert_int_equal(rcc_grad_linear_forward(be, y, P, z, c.x.f, c.N, &L), RCC_OK);
  lin_ref(&c);
  check_forward("y", y, c.y, c.N * c.m);
  float *dx = grad_buf(c.x.n), *dW = grad_buf(c.W.n), *dU = grad_buf(c.U.n);
  float *dV = grad_buf(c.V.n), *da = grad_buf(c.m), *db = grad_buf(c.m);
  if (masked) /* pruned entries of dW must come out as exactly 0, not 1 + 0 */
    for (int i = 0; i < c.m * c.n; i++)
      if (!c.mask[i]) dW[i] = 0.0f;
  rcc_grad_linear_grads_t g = {has_W ? dW : NULL, r ? dU : NULL, r ? dV : NULL,
                               has_alpha ? da : NULL, db};
  assert_int_equal(rcc_grad_linear_backward(be, dx, &g, c.R.f, c.x.f, P, z, c.N, &L, scratch),
                   RCC_OK);
  check_grad("dx", lin_ref, &c, &c.x, dx);
  check_grad("dbias", lin_ref, &c, &c.bias, db);
  if (has_alpha) check_grad("dalpha", lin_ref, &c, &c.alpha, da);
  if (r) check_grad("dU", lin_ref, &c, &c.U, dU), check_grad("dV", lin_ref, &c, &c.V, dV);
  if (has_W && masked) {
    /* kept entries against finite differences, pruned ones exactly 0 */
    for (int i = 0; i < c.m * c.n; i++) {
      if (!c.mask[i]) assert_true(dW[i] == 0.0f);
      if (!c.mask[i]) dW[i] = 1.0f; /* finite differences give 0 there too */
    }
  }
  if (has_W) check_grad("dW", lin_ref, &c, &c.W, dW);
  arr_t *all[] = {&c.x, &c.W, &c.U, &c.V, &c.alpha, &c.bias, &c.R};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    arr_free(all[i]);
  free(c.mask);
  free(c.y);
  free(y), free(P), free(z), free(scratch);
  free(dx), free(dW), free(dU), free(dV), free(da), free(db);
}

static void test_linear(void **state) {
  run_linear("dense W, bias", true, false, 0, false);
  run_linear("masked S, alpha", true, true, 0, true);
  run_linear("masked S + U V, alpha", true, true, 2, true);
  run_linear("U V only, alpha", false, false, 3, true);
}

/* ---------------------------------------------------------------- LayerNorm */

typedef struct {
  int N, C;
  arr_t x, w, b, R;
  double *y;
} ln_ctx_t;

static double ln_ref(void *p) {
  ln_ctx_t *c = p;
  for (int i = 0; i < c->N; i++) {
    const double *x = c->x.d + i * c->C;
    double mu = 0.0, var = 0.0;
    for (int j = 0; j < c->C; j++)
      mu += x[j] / c->C;
    for (int j = 0; j < c->C; j++)
      var += (x[j] - mu) * (x[j] - mu) / c->C;
    for (int j = 0; j < c->C; j++)
      c->y[i * c->C + j] = (x[j] - mu) / sqrt(var + 1e-5) * c->w.d[j] + c->b.d[j];
  }
  return dot(c->y, &c->R);
}

static void test_layernorm(void **state) {
  printf("layernorm\n");
  ln_ctx_t c = {.N = 4, .C = 7};
  c.x = arr_rand(c.N * c.C, -2, 2);
  c.w = arr_rand(c.C, 0.5f, 1.5f);
  c.b = arr_rand(c.C, -1, 1);
  c.R = arr_rand(c.N * c.C, -1, 1);
  c.y = malloc((size_t)c.N * c.C * sizeof *c.y);
  float *y = malloc((size_t)c.N * c.C * sizeof *y), mean[4], rstd[4];
  assert_int_equal(
      rcc_grad_layernorm_forward(be, y, mean, rstd, c.x.f, c.w.f, c.b.f, c.N, c.C, 1e-5f), RCC_OK);
  ln_ref(&c);
  check_forward("out", y, c.y, c.N * c.C);
  float *dx = grad_buf(c.x.n), *dw = grad_buf(c.C), *db = grad_buf(c.C);
  assert_int_equal(
      rcc_grad_layernorm_backward(be, dx, dw, db, c.R.f, c.x.f, c.w.f, mean, rstd, c.N, c.C),
      RCC_OK);
  check_grad("dinp", ln_ref, &c, &c.x, dx);
  check_grad("dweight", ln_ref, &c, &c.w, dw);
  check_grad("dbias", ln_ref, &c, &c.b, db);
  arr_free(&c.x), arr_free(&c.w), arr_free(&c.b), arr_free(&c.R);
  free(c.y), free(y), free(dx), free(dw), free(db);
}

/* ---------------------------------------------------------------- attention */

typedef struct {
  int B, T, D, H;
  bool causal;
  const uint8_t *keys;
  arr_t q, k, v, R;
  double *y;
} att_ctx_t;

static double att_ref(void *p) {
  att_ctx_t *c = p;
  const int T = c->T, D = c->D, hd = D / c->H;
  double s[8];
  for (int b = 0; b < c->B; b++)
    for (int h = 0; h < c->H; h++)
      for (int t = 0; t < T; t++) {
        double mx = -INFINITY, sum = 0.0;
        for (int u = 0; u < T; u++) {
          const bool masked = (c->causal && u > t) || (c->keys && !c->keys[b * T + u]);
          s[u] = -INFINITY;
          if (masked) continue;
          double acc = 0.0;
          for (int d = 0; d < hd; d++)
            acc += c->q.d[(b * T + t) * D + h * hd + d] * c->k.d[(b * T + u) * D + h * hd + d];
          s[u] = acc / sqrt((double)hd);
          if (s[u] > mx) mx = s[u];
        }
        for (int u = 0; u < T; u++)
          sum += s[u] == -INFINITY ? 0.0 : exp(s[u] - mx);
        for (int d = 0; d < hd; d++) {
          double acc = 0.0;
          for (int u = 0; u < T; u++)
            if (s[u] != -INFINITY)
              acc += exp(s[u] - mx) / sum * c->v.d[(b * T + u) * D + h * hd + d];
          c->y[(b * T + t) * D + h * hd + d] = acc;
        }
      }
  return dot(c->y, &c->R);
}

static void run_attention(const char *what, bool causal, const uint8_t *keys) {
  printf("attention (%s)\n", what);
  att_ctx_t c = {.B = 2, .T = 5, .D = 6, .H = 2, .causal = causal, .keys = keys};
  const int n = c.B * c.T * c.D;
  c.q = arr_rand(n, -1.5f, 1.5f), c.k = arr_rand(n, -1.5f, 1.5f), c.v = arr_rand(n, -1, 1);
  c.R = arr_rand(n, -1, 1);
  c.y = malloc((size_t)n * sizeof *c.y);
  float *ctx = malloc((size_t)n * sizeof *ctx);
  float *att = malloc((size_t)c.B * c.H * c.T * c.T * sizeof *att);
  float *datt = malloc((size_t)c.B * c.H * c.T * c.T * sizeof *datt);
  assert_int_equal(rcc_grad_attention_forward(be, ctx, att, c.q.f, c.k.f, c.v.f, c.B, c.T, c.D, c.H,
                                              causal, keys),
                   RCC_OK);
  att_ref(&c);
  check_forward("ctx", ctx, c.y, n);
  float *dq = grad_buf(n), *dk = grad_buf(n), *dv = grad_buf(n);
  assert_int_equal(rcc_grad_attention_backward(be, dq, dk, dv, datt, c.R.f, att, c.q.f, c.k.f,
                                               c.v.f, c.B, c.T, c.D, c.H),
                   RCC_OK);
  check_grad("dq", att_ref, &c, &c.q, dq);
  check_grad("dk", att_ref, &c, &c.k, dk);
  check_grad("dv", att_ref, &c, &c.v, dv);
  arr_free(&c.q), arr_free(&c.k), arr_free(&c.v), arr_free(&c.R);
  free(c.y), free(ctx), free(att), free(datt), free(dq), free(dk), free(dv);
}

static void test_attention(void **state) {
  /* sequence 0 has two padding keys at the end, sequence 1 none */
  static const uint8_t keys[10] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
  run_attention("full", false, NULL);
  run_attention("causal", true, NULL);
  run_attention("causal + key padding", true, keys);
}

/* ---------------------------------------------------------------- activations */

typedef struct {
  rcc_activation_t act;
  arr_t x, R;
  double *y;
} act_ctx_t;

static double act_ref(void *p) {
  act_ctx_t *c = p;
  for (int64_t i = 0; i < c->x.n; i++) {
    const double x = c->x.d[i];
    switch (c->act) {
    case RCC_ACT_GELU: c->y[i] = 0.5 * x * (1.0 + erf(x / sqrt(2.0))); break;
    case RCC_ACT_GELU_TANH:
      c->y[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
      break;
    case RCC_ACT_QUICK_GELU: c->y[i] = x / (1.0 + exp(-1.702 * x)); break;
    case RCC_ACT_RELU: c->y[i] = x > 0 ? x : 0.0; break;
    }
  }
  return dot(c->y, &c->R);
}

static void test_activations(void **state) {
  static const struct {
    rcc_activation_t act;
    const char *name;
  } acts[] = {{RCC_ACT_GELU, "gelu"},
              {RCC_ACT_GELU_TANH, "gelu_tanh"},
              {RCC_ACT_QUICK_GELU, "quick_gelu"},
              {RCC_ACT_RELU, "relu"}};
  for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
    printf("%s\n", acts[a].name);
    act_ctx_t c = {.act = acts[a].act};
    c.x = arr_rand(40, -4, 4);
    c.R = arr_rand(40, -1, 1);
    c.y = malloc(40 * sizeof *c.y);
    for (int i = 0; i < 40; i++) /* keep relu's kink away from the finite-difference step */
      if (fabsf(c.x.f[i]) < 1e-3f) c.x.f[i] = 0.5f, c.x.d[i] = 0.5;
    float y[40];
    assert_int_equal(rcc_grad_activation_forward(be, c.act, y, c.x.f, 40), RCC_OK);
    act_ref(&c);
    check_forward("out", y, c.y, 40);
    float *dx = grad_buf(40);
    assert_int_equal(rcc_grad_activation_backward(be, c.act, dx, c.R.f, c.x.f, 40), RCC_OK);
    check_grad("dinp", act_ref, &c, &c.x, dx);
    arr_free(&c.x), arr_free(&c.R);
    free(c.y), free(dx);
  }
}

/* ---------------------------------------------------------------- residual, pooling */

typedef struct {
  arr_t a, b, R;
  int B, T, D;
  const int *rows;
  double *y;
} small_ctx_t;

static double residual_ref(void *p) {
  small_ctx_t *c = p;
  for (int64_t i = 0; i < c->a.n; i++)
    c->y[i] = c->a.d[i] + c->b.d[i];
  return dot(c->y, &c->R);
}

static double pool_ref(void *p) {
  small_ctx_t *c = p;
  for (int b = 0; b < c->B; b++)
    for (int d = 0; d < c->D; d++)
      c->y[b * c->D + d] = c->a.d[(b * c->T + c->rows[b]) * c->D + d];
  return dot(c->y, &c->R);
}

static void test_residual_and_pool(void **state) {
  printf("residual\n");
  small_ctx_t c = {.a = arr_rand(12, -1, 1), .b = arr_rand(12, -1, 1), .R = arr_rand(12, -1, 1)};
  c.y = malloc(12 * sizeof *c.y);
  float y[12];
  assert_int_equal(rcc_grad_residual_forward(be, y, c.a.f, c.b.f, 12), RCC_OK);
  residual_ref(&c);
  check_forward("out", y, c.y, 12);
  float *da = grad_buf(12), *db = grad_buf(12);
  assert_int_equal(rcc_grad_residual_backward(be, da, db, c.R.f, 12), RCC_OK);
  check_grad("da", residual_ref, &c, &c.a, da);
  check_grad("db", residual_ref, &c, &c.b, db);
  arr_free(&c.a), arr_free(&c.b), arr_free(&c.R);
  free(c.y), free(da), free(db);

  printf("pool\n");
  static const int rows[3] = {0, 3, 2};
  small_ctx_t p = {.B = 3, .T = 4, .D = 5, .rows = rows};
  p.a = arr_rand(3 * 4 * 5, -1, 1), p.R = arr_rand(3 * 5, -1, 1);
  p.y = malloc(15 * sizeof *p.y);
  float out[15];
  assert_int_equal(rcc_grad_pool_forward(be, out, p.a.f, rows, 3, 4, 5), RCC_OK);
  pool_ref(&p);
  check_forward("out", out, p.y, 15);
  float *dx = grad_buf(60);
  assert_int_equal(rcc_grad_pool_backward(be, dx, p.R.f, rows, 3, 4, 5), RCC_OK);
  check_grad("dx", pool_ref, &p, &p.a, dx);
  arr_free(&p.a), arr_free(&p.R);
  free(p.y), free(dx);
}

/* ---------------------------------------------------------------- embeddings */

typedef struct {
  int B, C, S, p, D, T;
  arr_t pixels, Wp, cls, pos, R;
  double *y;
} patch_ctx_t;

static double patch_ref(void *p) {
  patch_ctx_t *c = p;
  const int g = c->S / c->p, K = c->C * c->p * c->p;
  for (int b = 0; b < c->B; b++)
    for (int t = 0; t < c->T; t++)
      for (int d = 0; d < c->D; d++) {
        double acc = c->pos.d[t * c->D + d];
        if (t == 0) {
          acc += c->cls.d[d];
        } else {
          const int gy = (t - 1) / g, gx = (t - 1) % g;
          for (int ch = 0; ch < c->C; ch++)
            for (int ky = 0; ky < c->p; ky++)
              for (int kx = 0; kx < c->p; kx++)
                acc +=
                    c->Wp.d[d * K + (ch * c->p + ky) * c->p + kx] *
                    c->pixels.d[((b * c->C + ch) * c->S + gy * c->p + ky) * c->S + gx * c->p + kx];
        }
        c->y[(b * c->T + t) * c->D + d] = acc;
      }
  return dot(c->y, &c->R);
}

typedef struct {
  int B, T, D;
  const int32_t *ids;
  arr_t tok, pos, R;
  double *y;
} tok_ctx_t;

static double tok_ref(void *p) {
  tok_ctx_t *c = p;
  for (int bt = 0; bt < c->B * c->T; bt++)
    for (int d = 0; d < c->D; d++)
      c->y[bt * c->D + d] = c->tok.d[c->ids[bt] * c->D + d] + c->pos.d[(bt % c->T) * c->D + d];
  return dot(c->y, &c->R);
}

static void test_embeddings(void **state) {
  printf("patch embedding\n");
  patch_ctx_t c = {.B = 2, .C = 2, .S = 4, .p = 2, .D = 3};
  const int g = c.S / c.p, K = c.C * c.p * c.p;
  c.T = g * g + 1;
  c.pixels = arr_rand(c.B * c.C * c.S * c.S, -1, 1), c.Wp = arr_rand(c.D * K, -1, 1);
  c.cls = arr_rand(c.D, -1, 1), c.pos = arr_rand(c.T * c.D, -1, 1);
  c.R = arr_rand(c.B * c.T * c.D, -1, 1);
  c.y = malloc((size_t)c.R.n * sizeof *c.y);
  float *x = malloc((size_t)c.R.n * sizeof *x),
        *cols = malloc((size_t)c.B * g * g * K * sizeof *cols);
  assert_int_equal(rcc_grad_patch_embed_forward(be, x, cols, c.pixels.f, c.Wp.f, c.cls.f, c.pos.f,
                                                c.B, c.C, c.S, c.p, c.D),
                   RCC_OK);
  patch_ref(&c);
  check_forward("x", x, c.y, c.R.n);
  float *dW = grad_buf(c.Wp.n), *dcls = grad_buf(c.D), *dpos = grad_buf(c.pos.n);
  assert_int_equal(rcc_grad_patch_embed_backward(be, dW, dcls, dpos, c.R.f, cols, c.B, c.T, c.D, K),
                   RCC_OK);
  check_grad("dWp", patch_ref, &c, &c.Wp, dW);
  check_grad("dcls", patch_ref, &c, &c.cls, dcls);
  check_grad("dpos", patch_ref, &c, &c.pos, dpos);
  arr_free(&c.pixels), arr_free(&c.Wp), arr_free(&c.cls), arr_free(&c.pos), arr_free(&c.R);
  free(c.y), free(x), free(cols), free(dW), free(dcls), free(dpos);

  printf("token embedding\n");
  static const int32_t ids[8] = {3, 1, 4, 1, 0, 2, 4, 4}; /* repeated ids accumulate */
  tok_ctx_t t = {.B = 2, .T = 4, .D = 3, .ids = ids};
  t.tok = arr_rand(5 * 3, -1, 1), t.pos = arr_rand(4 * 3, -1, 1), t.R = arr_rand(8 * 3, -1, 1);
  t.y = malloc(24 * sizeof *t.y);
  float xt[24];
  assert_int_equal(rcc_grad_token_embed_forward(be, xt, ids, t.tok.f, t.pos.f, 2, 4, 3), RCC_OK);
  tok_ref(&t);
  check_forward("x", xt, t.y, 24);
  float *dtok = grad_buf(15), *dp = grad_buf(12);
  assert_int_equal(rcc_grad_token_embed_backward(be, dtok, dp, t.R.f, ids, 2, 4, 3), RCC_OK);
  check_grad("dtok", tok_ref, &t, &t.tok, dtok);
  check_grad("dpos", tok_ref, &t, &t.pos, dp);
  arr_free(&t.tok), arr_free(&t.pos), arr_free(&t.R);
  free(t.y), free(dtok), free(dp);
}

/* ---------------------------------------------------------------- loss helpers */

typedef struct {
  int N, M, P;
  arr_t a, b, scale, R;
  double *y;
} loss_ctx_t;

static double l2norm_ref(void *p) {
  loss_ctx_t *c = p;
  for (int i = 0; i < c->N; i++) {
    double n = 0.0;
    for (int j = 0; j < c->P; j++)
      n += c->a.d[i * c->P + j] * c->a.d[i * c->P + j];
    for (int j = 0; j < c->P; j++)
      c->y[i * c->P + j] = c->a.d[i * c->P + j] / sqrt(n);
  }
  return dot(c->y, &c->R);
}

static double logits_ref(void *p) {
  loss_ctx_t *c = p;
  for (int i = 0; i < c->N; i++)
    for (int j = 0; j < c->M; j++) {
      double acc = 0.0;
      for (int k = 0; k < c->P; k++)
        acc += c->a.d[i * c->P + k] * c->b.d[j * c->P + k];
      c->y[i * c->M + j] = c->scale.d[0] * acc;
    }
  return dot(c->y, &c->R);
}

static void test_loss_helpers(void **state) {
  printf("l2 normalize\n");
  loss_ctx_t c = {.N = 3, .P = 6};
  c.a = arr_rand(18, -1, 1), c.R = arr_rand(18, -1, 1);
  c.y = malloc(18 * sizeof *c.y);
  float y[18], norm[3];
  assert_int_equal(rcc_grad_l2norm_forward(be, y, norm, c.a.f, 3, 6), RCC_OK);
  l2norm_ref(&c);
  check_forward("out", y, c.y, 18);
  float *dx = grad_buf(18);
  assert_int_equal(rcc_grad_l2norm_backward(be, dx, c.R.f, y, norm, 3, 6), RCC_OK);
  check_grad("dinp", l2norm_ref, &c, &c.a, dx);
  arr_free(&c.a), arr_free(&c.R);
  free(c.y), free(dx);

  printf("logits\n");
  loss_ctx_t l = {.N = 3, .M = 4, .P = 5};
  l.a = arr_rand(15, -1, 1), l.b = arr_rand(20, -1, 1), l.scale = arr_rand(1, 2, 5);
  l.R = arr_rand(12, -1, 1);
  l.y = malloc(12 * sizeof *l.y);
  float logits[12];
  assert_int_equal(rcc_grad_logits_forward(be, logits, l.a.f, l.b.f, l.scale.f[0], 3, 4, 5),
                   RCC_OK);
  logits_ref(&l);
  check_forward("logits", logits, l.y, 12);
  float *da = grad_buf(15), *db = grad_buf(20), *ds = grad_buf(1);
  assert_int_equal(
      rcc_grad_logits_backward(be, da, db, ds, l.R.f, logits, l.a.f, l.b.f, l.scale.f[0], 3, 4, 5),
      RCC_OK);
  check_grad("da", logits_ref, &l, &l.a, da);
  check_grad("db", logits_ref, &l, &l.b, db);
  check_grad("dscale", logits_ref, &l, &l.scale, ds);
  arr_free(&l.a), arr_free(&l.b), arr_free(&l.scale), arr_free(&l.R);
  free(l.y), free(da), free(db), free(ds);
}

static int setup(void **state) { return rcc_backend_init(&be, "cpu") == RCC_OK ? 0 : -1; }
static int teardown(void **state) {
  rcc_backend_free(be);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linear),
      cmocka_unit_test(test_layernorm),
      cmocka_unit_test(test_attention),
      cmocka_unit_test(test_activations),
      cmocka_unit_test(test_residual_and_pool),
      cmocka_unit_test(test_embeddings),
      cmocka_unit_test(test_loss_helpers),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
