/* The training ops of the CUDA backend (backend_train.h): each queues the kernels of
 * cuda_train_kernels.cu on the backend's stream, like the other ops of cuda_backend.c, and
 * returns without waiting. Compiled only with CUDA.
 *
 * Status: compiled and linked (CI has the CUDA toolkit but no GPU), not yet run on a GPU;
 * tests/gpu/test_backend_cuda_train.c compares every op with backend/cpu/cpu_train_ops.c
 * wherever a GPU is present. */
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
};
