/* The training ops of the CUDA backend (backend_train.h): each queues the kernels of
 * cuda_train_kernels.cu on the backend's stream, like the other ops of cuda_backend.c, and
 * returns without waiting. Compiled only with CUDA.
 *
 * Status: compiled and linked (CI has the CUDA toolkit but no GPU), not yet run on a GPU;
 * tests/gpu/test_backend_cuda_train.c compares every op with backend/cpu/cpu_train_ops.c
 * wherever a GPU is present. */
#include <math.h>

#include "backend/backend_train_impl.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_train_kernels.h"

static rcc_status_t cuda_linear_epilogue(rcc_backend_t be, float *y, float *P, const float *alpha,
                                         const float *bias, int N, int m) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_linear_epilogue(impl_of(be)->stream, y, P, alpha, bias, N, m));
  return RCC_OK;
}

static rcc_status_t cuda_column_sums(rcc_backend_t be, float *d, const float *a, const float *b,
                                     int N, int m) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_column_sums(impl_of(be)->stream, d, a, b, N, m));
  return RCC_OK;
}

static rcc_status_t cuda_scale_columns(rcc_backend_t be, float *out, const float *in,
                                       const float *alpha, int N, int m) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_scale_columns(impl_of(be)->stream, out, in, alpha, N, m));
  return RCC_OK;
}

static rcc_status_t cuda_layernorm_forward(rcc_backend_t be, float *out, float *mean, float *rstd,
                                           const float *inp, const float *w, const float *b, int N,
                                           int C, float eps) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_train_layernorm_forward(impl_of(be)->stream, out, mean, rstd, inp, w, b, N, C, eps));
  return RCC_OK;
}

static rcc_status_t cuda_layernorm_backward(rcc_backend_t be, float *dinp, float *dw, float *db,
                                            const float *dout, const float *inp, const float *w,
                                            const float *mean, const float *rstd, int N, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_layernorm_backward(impl_of(be)->stream, dinp, dw, db, dout, inp, w,
                                                   mean, rstd, N, C));
  return RCC_OK;
}

static rcc_status_t cuda_softmax_backward(rcc_backend_t be, float *datt, const float *att,
                                          int64_t rows, int L) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_softmax_backward(impl_of(be)->stream, datt, att, rows, L));
  return RCC_OK;
}

static rcc_status_t cuda_activation_forward(rcc_backend_t be, rcc_activation_t act, float *out,
                                            const float *inp, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_activation_forward(impl_of(be)->stream, act, out, inp, n));
  return RCC_OK;
}

static rcc_status_t cuda_activation_backward(rcc_backend_t be, rcc_activation_t act, float *dinp,
                                             const float *dout, const float *inp, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_activation_backward(impl_of(be)->stream, act, dinp, dout, inp, n));
  return RCC_OK;
}

static rcc_status_t cuda_im2col(rcc_backend_t be, float *cols, const float *pixels, int B, int C,
                                int S, int p) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_im2col(impl_of(be)->stream, cols, pixels, B, C, S, p));
  return RCC_OK;
}

static rcc_status_t cuda_patch_rows_forward(rcc_backend_t be, float *x, const float *cls,
                                            const float *pos, int B, int T, int D) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_patch_rows_forward(impl_of(be)->stream, x, cls, pos, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_patch_rows_backward(rcc_backend_t be, float *dcls, float *dpos,
                                             const float *dx, int B, int T, int D) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_patch_rows_backward(impl_of(be)->stream, dcls, dpos, dx, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_token_embed_forward(rcc_backend_t be, float *x, const int32_t *ids,
                                             const float *tok, const float *pos, int B, int T,
                                             int D) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_train_token_embed_forward(impl_of(be)->stream, x, ids, tok, pos, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_token_embed_backward(rcc_backend_t be, float *dtok, float *dpos,
                                              const float *dx, const int32_t *ids, int B, int T,
                                              int D) {
  ENTER(be);
  RCC_CHECK_CUDA(
      rcc_cuda_train_token_embed_backward(impl_of(be)->stream, dtok, dpos, dx, ids, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_pool_forward(rcc_backend_t be, float *out, const float *x, const int *rows,
                                      int B, int T, int D) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_pool_forward(impl_of(be)->stream, out, x, rows, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_pool_backward(rcc_backend_t be, float *dx, const float *dout,
                                       const int *rows, int B, int T, int D) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_pool_backward(impl_of(be)->stream, dx, dout, rows, B, T, D));
  return RCC_OK;
}

static rcc_status_t cuda_l2norm_forward(rcc_backend_t be, float *out, float *norm, const float *inp,
                                        int N, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_l2norm_forward(impl_of(be)->stream, out, norm, inp, N, C));
  return RCC_OK;
}

static rcc_status_t cuda_l2norm_backward(rcc_backend_t be, float *dinp, const float *dout,
                                         const float *out, const float *norm, int N, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_l2norm_backward(impl_of(be)->stream, dinp, dout, out, norm, N, C));
  return RCC_OK;
}

static rcc_status_t cuda_logit_scale_backward(rcc_backend_t be, float *dscale, const float *dlogits,
                                              const float *logits, float scale, int64_t count) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_logit_scale_backward(impl_of(be)->stream, dscale, dlogits, logits,
                                                     scale, count));
  return RCC_OK;
}

/* ---- buffers and the optimizer step ---- */

static rcc_status_t cuda_fill(rcc_backend_t be, float *x, float value, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_fill(impl_of(be)->stream, x, value, n));
  return RCC_OK;
}

static rcc_status_t cuda_copy(rcc_backend_t be, float *dst, const float *src, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(cudaMemcpyAsync(dst, src, (size_t)n * sizeof *dst, cudaMemcpyDeviceToDevice,
                                 impl_of(be)->stream));
  return RCC_OK;
}

static rcc_status_t cuda_gather(rcc_backend_t be, float *packed, const float *x, const int64_t *idx,
                                int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_gather(impl_of(be)->stream, packed, x, idx, n));
  return RCC_OK;
}

static rcc_status_t cuda_scatter(rcc_backend_t be, float *x, const float *packed,
                                 const int64_t *idx, int64_t n) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_scatter(impl_of(be)->stream, x, packed, idx, n));
  return RCC_OK;
}

static rcc_status_t cuda_adamw_step(rcc_backend_t be, float *params, float *m, float *v,
                                    const float *grads, const uint8_t *decay, int64_t n,
                                    const rcc_train_adamw_t *h) {
  ENTER(be);
  /* the scalars exactly as the CPU forms them */
  const double bc1 = 1.0 - pow(h->beta1, (double)h->step);
  const double bc2 = 1.0 - pow(h->beta2, (double)h->step);
  RCC_CHECK_CUDA(rcc_cuda_train_adamw_step(impl_of(be)->stream, params, m, v, grads, decay, n,
                                           h->lr, (float)h->beta1, (float)h->beta2, h->eps,
                                           1.0 - h->lr * h->weight_decay, bc1, bc2));
  return RCC_OK;
}

/* A one-double device result read back to the host: the stream is drained, since the
 * caller decides on the value (the loss, the clipping factor) right away. */
static rcc_status_t read_scalar(rcc_backend_t be, double *dev, double *host) {
  RCC_CHECK_CUDA(
      cudaMemcpyAsync(host, dev, sizeof *host, cudaMemcpyDeviceToHost, impl_of(be)->stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(impl_of(be)->stream));
  return RCC_OK;
}

/* ---- distillation loss ---- */

static rcc_status_t cuda_group_mean_forward(rcc_backend_t be, float *out, const float *inp, int G,
                                            int n, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_group_mean_forward(impl_of(be)->stream, out, inp, G, n, C));
  return RCC_OK;
}

static rcc_status_t cuda_group_mean_backward(rcc_backend_t be, float *dinp, const float *dout,
                                             int G, int n, int C) {
  ENTER(be);
  RCC_CHECK_CUDA(rcc_cuda_train_group_mean_backward(impl_of(be)->stream, dinp, dout, G, n, C));
  return RCC_OK;
}

/* The loss ops' device scratch: N + 1 doubles, one term per row and their total. */
static double *terms_alloc(rcc_backend_t be, int N, const char *what) {
  double *dev = rcc_backend_alloc(be, ((size_t)N + 1) * sizeof *dev);
  if (!dev) rcc_fail_context(RCC_ERR_NOMEM, "cuda_train_ops.c: %s of %d rows", what, N);
  return dev;
}

/* After the launch that returned err: the total read back and added to *loss, the scratch
 * released either way. */
static rcc_status_t terms_finish(rcc_backend_t be, double *dev, cudaError_t err, const char *what,
                                 double *loss) {
  double total = 0.0;
  rcc_status_t st = RCC_OK;
  if (err != cudaSuccess)
    st = rcc_fail(RCC_ERR_CUDA, "cuda_train_ops.c: %s kernel: %s", what, cudaGetErrorString(err));
  if (st == RCC_OK) st = read_scalar(be, dev, &total);
  rcc_backend_release(be, dev);
  if (st == RCC_OK) *loss += total;
  return st;
}

static rcc_status_t cuda_kd_loss(rcc_backend_t be, float *dlogits_s, const float *logits_s,
                                 const float *logits_t, int N, int M, double T, double coef,
                                 double *loss) {
  ENTER(be);
  double *dev = terms_alloc(be, N, "kd_loss");
  if (!dev) return RCC_ERR_NOMEM;
  return terms_finish(be, dev,
                      rcc_cuda_train_kd_loss(impl_of(be)->stream, dlogits_s, logits_s, logits_t, N,
                                             M, T, coef, dev),
                      "kd_loss", loss);
}

static rcc_status_t cuda_embedding_loss(rcc_backend_t be, rcc_train_embed_t kind, float *da,
                                        const float *a, const float *b, int N, int C, double weight,
                                        double count, double *loss) {
  ENTER(be);
  double *dev = terms_alloc(be, N, "embedding_loss");
  if (!dev) return RCC_ERR_NOMEM;
  return terms_finish(be, dev,
                      rcc_cuda_train_embedding_loss(impl_of(be)->stream,
                                                    kind == RCC_TRAIN_EMBED_COSINE, da, a, b, N, C,
                                                    weight, count, dev),
                      "embedding_loss", loss);
}

static rcc_status_t cuda_distill_grads(rcc_backend_t be, float *g, const float *p,
                                       const float *start, const uint8_t *frozen,
                                       const uint8_t *pull, int64_t n, float inv, float pull_coef,
                                       double reg_weight, double *reg) {
  ENTER(be);
  double *dev = rcc_backend_alloc(be, RCC_CUDA_SUM_SCRATCH * sizeof *dev);
  if (!dev) return rcc_fail_context(RCC_ERR_NOMEM, "cuda_train_ops.c: distill_grads");
  rcc_status_t st = RCC_OK;
  const cudaError_t err = rcc_cuda_train_distill_grads(impl_of(be)->stream, g, p, start, frozen,
                                                       pull, n, inv, pull_coef, reg_weight, dev);
  if (err != cudaSuccess)
    st = rcc_fail(RCC_ERR_CUDA, "cuda_train_ops.c: distill_grads kernel: %s",
                  cudaGetErrorString(err));
  if (st == RCC_OK) st = read_scalar(be, dev, reg);
  rcc_backend_release(be, dev);
  return st;
}

static rcc_status_t cuda_clip_grad_norm(rcc_backend_t be, float *g, int64_t n, double max_norm,
                                        double *norm) {
  ENTER(be);
  double *dev = rcc_backend_alloc(be, RCC_CUDA_SUM_SCRATCH * sizeof *dev);
  if (!dev) return rcc_fail_context(RCC_ERR_NOMEM, "cuda_train_ops.c: clip_grad_norm");
  double sq = 0.0;
  rcc_status_t st = RCC_OK;
  const cudaError_t err = rcc_cuda_train_sum_squares(impl_of(be)->stream, dev, g, n);
  if (err != cudaSuccess)
    st =
        rcc_fail(RCC_ERR_CUDA, "cuda_train_ops.c: sum_squares kernel: %s", cudaGetErrorString(err));
  if (st == RCC_OK) st = read_scalar(be, dev, &sq);
  rcc_backend_release(be, dev);
  RCC_TRY(st);
  *norm = sqrt(sq);
  if (max_norm > 0.0 && *norm > max_norm)
    RCC_CHECK_CUDA(
        rcc_cuda_train_scale(impl_of(be)->stream, g, (float)(max_norm / (*norm + 1e-6)), n));
  return RCC_OK;
}

const rcc_backend_train_ops_t rcc_cuda_train_ops = {
    .linear_epilogue = cuda_linear_epilogue,
    .column_sums = cuda_column_sums,
    .scale_columns = cuda_scale_columns,
    .layernorm_forward = cuda_layernorm_forward,
    .layernorm_backward = cuda_layernorm_backward,
    .softmax_backward = cuda_softmax_backward,
    .activation_forward = cuda_activation_forward,
    .activation_backward = cuda_activation_backward,
    .im2col = cuda_im2col,
    .patch_rows_forward = cuda_patch_rows_forward,
    .patch_rows_backward = cuda_patch_rows_backward,
    .token_embed_forward = cuda_token_embed_forward,
    .token_embed_backward = cuda_token_embed_backward,
    .pool_forward = cuda_pool_forward,
    .pool_backward = cuda_pool_backward,
    .l2norm_forward = cuda_l2norm_forward,
    .l2norm_backward = cuda_l2norm_backward,
    .logit_scale_backward = cuda_logit_scale_backward,
    .group_mean_forward = cuda_group_mean_forward,
    .group_mean_backward = cuda_group_mean_backward,
    .kd_loss = cuda_kd_loss,
    .embedding_loss = cuda_embedding_loss,
    .fill = cuda_fill,
    .copy = cuda_copy,
    .gather = cuda_gather,
    .scatter = cuda_scatter,
    .adamw_step = cuda_adamw_step,
    .distill_grads = cuda_distill_grads,
    .clip_grad_norm = cuda_clip_grad_norm,
};
