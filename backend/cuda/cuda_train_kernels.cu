/* CUDA kernels of the training ops (backend_train.h). Each computes what its twin in
 * backend/cpu/cpu_train_ops.c computes, with the same float formulas and the same
 * double-precision statistics; tests/gpu/test_backend_cuda_train.c compares the two.
 *
 * Every reduction has a fixed order for a given shape and no atomics, so a run repeats
 * exactly:
 *  - over a row (LayerNorm statistics, softmax and L2-norm dots): one block (or warp) per
 *    row, partial sums in double combined by a fixed shuffle tree, as the CPU sums in
 *    double;
 *  - over rows (dbias, dalpha, LayerNorm dw/db): one block per 32 columns, COL_GROUPS
 *    threads per column each summing a strided subset of the rows in float (as the CPU's
 *    float column accumulators), then the COL_GROUPS partials added in order;
 *  - scatters with repeated targets (token and position embedding gradients): one thread
 *    per target column walking the positions in the CPU's order, so the sums are the CPU's
 *    to the bit. They are frozen in distillation, so their low parallelism costs nothing. */
#include <math.h>

#include "backend/cuda/cuda_train_kernels.h"

#define ROW_THREADS 256
#define WARP_ROWS_PER_BLOCK 8 /* softmax backward: one warp per row */
#define COL_GROUPS 16         /* threads per column of the reductions over rows */
#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS 65536 /* beyond this the grid-stride loops take over */

static unsigned elem_blocks(int64_t n) {
  int64_t blocks = (n + ELEM_THREADS - 1) / ELEM_THREADS;
  return (unsigned)(blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS);
}

__device__ static double warp_sum_f64(double v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/* Sum of v over the block (a multiple of 32 threads), returned to every thread. The leading
 * barrier lets it be called twice in a row without overwriting partials still being read. */
__device__ static double block_sum_f64(double v) {
  __shared__ double partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum_f64(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  double total = 0.0;
  for (int i = 0; i < warps; i++)
    total += partial[i];
  return total;
}

/* ---- linear layer ---- */

__global__ static void linear_epilogue_kernel(float *y, float *P, const float *alpha,
                                              const float *bias, int64_t count, int m) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int o = (int)(i % m);
    const float v = y[i];
    if (P) P[i] = v;
    y[i] = (alpha ? alpha[o] * v : v) + (bias ? bias[o] : 0.0f);
  }
}

/* Block (32, COL_GROUPS): column blockIdx.x * 32 + threadIdx.x, rows threadIdx.y,
 * threadIdx.y + COL_GROUPS, ... Writes this thread's share of the column to part and
 * returns, on threadIdx.y == 0, the column total (the shares added in order). */
__device__ static float column_total(float share, float (*part)[33]) {
  part[threadIdx.y][threadIdx.x] = share;
  __syncthreads();
  float total = 0.0f;
  if (threadIdx.y == 0)
    for (int g = 0; g < COL_GROUPS; g++)
      total += part[g][threadIdx.x];
  return total;
}

__global__ static void column_sums_kernel(float *d, const float *a, const float *b, int N, int m) {
  __shared__ float part[COL_GROUPS][33];
  const int o = blockIdx.x * 32 + threadIdx.x;
  float acc = 0.0f;
  if (o < m)
    for (int i = threadIdx.y; i < N; i += COL_GROUPS)
      acc += a[(size_t)i * m + o] * (b ? b[(size_t)i * m + o] : 1.0f);
  const float total = column_total(acc, part);
  if (threadIdx.y == 0 && o < m) d[o] += total;
}

__global__ static void scale_columns_kernel(float *out, const float *in, const float *alpha,
                                            int64_t count, int m) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = in[i] * alpha[i % m];
}

/* ---- LayerNorm ---- */

/* One block per row; every read of the row is done (block_sum_f64's barriers) before the
 * row is written, and each thread writes only the entries it read. */
__global__ static void layernorm_forward_kernel(float *out, float *mean, float *rstd,
                                                const float *inp, const float *w, const float *b,
                                                int C, float eps) {
  const float *x = inp + (size_t)blockIdx.x * C;
  float *y = out + (size_t)blockIdx.x * C;
  double s = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    s += x[j];
  const double mu = block_sum_f64(s) / C;
  double sq = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    sq += (x[j] - mu) * (x[j] - mu);
  const double var = block_sum_f64(sq) / C;
  const float rs = (float)(1.0 / sqrt(var + (double)eps)), muf = (float)mu;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    y[j] = (x[j] - muf) * rs * w[j] + b[j];
  if (threadIdx.x == 0) {
    mean[blockIdx.x] = muf;
    rstd[blockIdx.x] = rs;
  }
}

__global__ static void layernorm_dinp_kernel(float *dinp, const float *dout, const float *inp,
                                             const float *w, const float *mean, const float *rstd,
                                             int C) {
  const size_t off = (size_t)blockIdx.x * C;
  const float *x = inp + off, *dy = dout + off;
  float *dx = dinp + off;
  const float mu = mean[blockIdx.x], rs = rstd[blockIdx.x];
  double s1 = 0.0, s2 = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x) {
    const float dn = dy[j] * w[j];
    s1 += dn;
    s2 += dn * (x[j] - mu) * rs;
  }
  const float m1 = (float)(block_sum_f64(s1) / C), m2 = (float)(block_sum_f64(s2) / C);
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    dx[j] += rs * (dy[j] * w[j] - m1 - (x[j] - mu) * rs * m2);
}

/* dw, db (C) += over rows, as column_sums_kernel. */
__global__ static void layernorm_dwdb_kernel(float *dw, float *db, const float *dout,
                                             const float *inp, const float *mean, const float *rstd,
                                             int N, int C) {
  __shared__ float part[COL_GROUPS][33];
  const int j = blockIdx.x * 32 + threadIdx.x;
  float aw = 0.0f, ab = 0.0f;
  if (j < C)
    for (int i = threadIdx.y; i < N; i += COL_GROUPS) {
      const float dy = dout[(size_t)i * C + j];
      aw += dy * (inp[(size_t)i * C + j] - mean[i]) * rstd[i];
      ab += dy;
    }
  const float tw = column_total(aw, part);
  __syncthreads(); /* every thread has read part before it is reused */
  const float tb = column_total(ab, part);
  if (threadIdx.y == 0 && j < C) {
    if (dw) dw[j] += tw;
    if (db) db[j] += tb;
  }
}

/* ---- attention ---- */

/* One warp per row of att (rows, L). */
__global__ static void softmax_backward_kernel(float *datt, const float *att, int64_t rows, int L) {
  const int lane = threadIdx.x & 31;
  for (int64_t r = (int64_t)blockIdx.x * WARP_ROWS_PER_BLOCK + (threadIdx.x >> 5); r < rows;
       r += (int64_t)gridDim.x * WARP_ROWS_PER_BLOCK) {
    const float *a = att + r * L;
    float *d = datt + r * L;
    double dot = 0.0;
    for (int j = lane; j < L; j += 32)
      dot += (double)d[j] * a[j];
    const float dotf = (float)warp_sum_f64(dot);
    for (int j = lane; j < L; j += 32)
      d[j] = a[j] * (d[j] - dotf);
  }
}

/* ---- activations ---- */

__global__ static void activation_forward_kernel(rcc_activation_t act, float *out, const float *inp,
                                                 int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, c = 0.79788456080286536f; /* sqrt(2/pi) */
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float x = inp[i];
    float y = 0.0f;
    switch (act) {
    case RCC_ACT_GELU: y = 0.5f * x * (1.0f + erff(x * inv_sqrt2)); break;
    case RCC_ACT_GELU_TANH: y = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))); break;
    case RCC_ACT_QUICK_GELU: y = x * (1.0f / (1.0f + expf(-(1.702f * x)))); break;
    case RCC_ACT_RELU: y = x < 0.0f ? 0.0f : x; break;
    }
    out[i] = y;
  }
}

/* The derivatives of cpu_activation_backward. */
__global__ static void activation_backward_kernel(rcc_activation_t act, float *dinp,
                                                  const float *dout, const float *inp, int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, inv_sqrt_2pi = 0.39894228040143268f;
  const float c = 0.79788456080286536f, k = 0.044715f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float x = inp[i];
    switch (act) {
    case RCC_ACT_GELU: {
      const float d = 0.5f * (1.0f + erff(x * inv_sqrt2)) + x * inv_sqrt_2pi * expf(-0.5f * x * x);
      dinp[i] += d * dout[i];
      break;
    }
    case RCC_ACT_GELU_TANH: {
      const float th = tanhf(c * (x + k * x * x * x));
      const float d =
          0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * c * (1.0f + 3.0f * k * x * x);
      dinp[i] += d * dout[i];
      break;
    }
    case RCC_ACT_QUICK_GELU: {
      const float s = 1.0f / (1.0f + expf(-1.702f * x));
      dinp[i] += (s + 1.702f * x * s * (1.0f - s)) * dout[i];
      break;
    }
    case RCC_ACT_RELU: dinp[i] += x > 0.0f ? dout[i] : 0.0f; break;
    }
  }
}

/* ---- embeddings ---- */

/* One thread per entry of cols (B*Np, K): column k of row (b, gy, gx) is (ch, ky, kx). */
__global__ static void im2col_kernel(float *cols, const float *pixels, int C, int S, int p,
                                     int64_t count) {
  const int g = S / p, Np = g * g, K = C * p * p;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t bp = i / K;
    const int k = (int)(i % K), b = (int)(bp / Np), patch = (int)(bp % Np);
    const int gy = patch / g, gx = patch % g, ch = k / (p * p), ky = k / p % p, kx = k % p;
    cols[i] = pixels[(((size_t)b * C + ch) * S + (size_t)gy * p + ky) * S + (size_t)gx * p + kx];
  }
}

__global__ static void patch_rows_forward_kernel(float *x, const float *cls, const float *pos,
                                                 int T, int D, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int d = (int)(i % D), t = (int)(i / D % T);
    x[i] = (t == 0 ? cls[d] : x[i]) + pos[(size_t)t * D + d];
  }
}

/* One thread per entry (t,d) of dpos, images added in order. */
__global__ static void patch_rows_backward_kernel(float *dcls, float *dpos, const float *dx, int B,
                                                  int T, int D) {
  const int64_t TD = (int64_t)T * D;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < TD;
       i += (int64_t)gridDim.x * blockDim.x)
    for (int b = 0; b < B; b++) {
      const float g = dx[b * TD + i];
      if (dpos) dpos[i] += g;
      if (dcls && i < D) dcls[i] += g;
    }
}

__global__ static void token_embed_forward_kernel(float *x, const int32_t *ids, const float *tok,
                                                  const float *pos, int T, int D, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t bt = i / D;
    const int d = (int)(i % D);
    x[i] = tok[(size_t)ids[bt] * D + d] + pos[(size_t)(bt % T) * D + d];
  }
}

/* dtok: one thread per column d, positions in order (two may hold the same token). */
__global__ static void token_embed_dtok_kernel(float *dtok, const float *dx, const int32_t *ids,
                                               int BT, int D) {
  for (int d = blockIdx.x * blockDim.x + threadIdx.x; d < D; d += gridDim.x * blockDim.x)
    for (int bt = 0; bt < BT; bt++)
      dtok[(size_t)ids[bt] * D + d] += dx[(size_t)bt * D + d];
}

/* dpos: one thread per entry (t,d), sequences in order. */
__global__ static void token_embed_dpos_kernel(float *dpos, const float *dx, int B, int T, int D) {
  const int64_t TD = (int64_t)T * D;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < TD;
       i += (int64_t)gridDim.x * blockDim.x)
    for (int b = 0; b < B; b++)
      dpos[i] += dx[b * TD + i];
}

/* ---- pooling ---- */

__global__ static void pool_forward_kernel(float *out, const float *x, const int *rows, int T,
                                           int D, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int b = (int)(i / D), d = (int)(i % D);
    out[i] = x[((size_t)b * T + rows[b]) * D + d];
  }
}

/* Sequences are distinct, so no two threads write the same entry of dx. */
__global__ static void pool_backward_kernel(float *dx, const float *dout, const int *rows, int T,
                                            int D, int64_t count) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int b = (int)(i / D), d = (int)(i % D);
    dx[((size_t)b * T + rows[b]) * D + d] += dout[i];
  }
}

/* ---- loss helpers ---- */

/* One block per row. */
__global__ static void l2norm_forward_kernel(float *out, float *norm, const float *inp, int C) {
  const float *x = inp + (size_t)blockIdx.x * C;
  float *y = out + (size_t)blockIdx.x * C;
  double sq = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    sq += (double)x[j] * x[j];
  const float nrm = (float)sqrt(block_sum_f64(sq));
  if (threadIdx.x == 0) norm[blockIdx.x] = nrm;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    y[j] = nrm > 0.0f ? x[j] / nrm : 0.0f;
}

__global__ static void l2norm_backward_kernel(float *dinp, const float *dout, const float *out,
                                              const float *norm, int C) {
  const float nrm = norm[blockIdx.x];
  if (nrm == 0.0f) return; /* the whole block: a zero row has no direction, no gradient */
  const size_t off = (size_t)blockIdx.x * C;
  const float *y = out + off, *dy = dout + off;
  float *dx = dinp + off;
  double dot = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    dot += (double)y[j] * dy[j];
  const float dotf = (float)block_sum_f64(dot), inv = 1.0f / nrm;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    dx[j] += (dy[j] - y[j] * dotf) * inv;
}

/* One block: the logits are few (batch x classes). Launched with 1024 threads, so the bound
 * keeps it within the 64 K registers of a block whatever the compiler does with it. */
__global__ static void __launch_bounds__(1024)
    logit_scale_backward_kernel(float *dscale, const float *dlogits, const float *logits,
                                float scale, int64_t count) {
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x)
    s += (double)dlogits[i] * logits[i];
  s = block_sum_f64(s);
  if (threadIdx.x == 0) *dscale += (float)(s / scale);
}

/* ---- launchers ---- */

extern "C" cudaError_t rcc_cuda_train_linear_epilogue(cudaStream_t stream, float *y, float *P,
                                                      const float *alpha, const float *bias, int N,
                                                      int m) {
  const int64_t count = (int64_t)N * m;
  /* The CPU leaves y untouched without alpha and bias (y + 0 would turn -0 into +0). */
  if (!alpha && !bias)
    return cudaMemcpyAsync(P, y, (size_t)count * sizeof *P, cudaMemcpyDeviceToDevice, stream);
  linear_epilogue_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(y, P, alpha, bias, count,
                                                                          m);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_column_sums(cudaStream_t stream, float *d, const float *a,
                                                  const float *b, int N, int m) {
  column_sums_kernel<<<(m + 31) / 32, dim3(32, COL_GROUPS), 0, stream>>>(d, a, b, N, m);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_scale_columns(cudaStream_t stream, float *out,
                                                    const float *in, const float *alpha, int N,
                                                    int m) {
  const int64_t count = (int64_t)N * m;
  scale_columns_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(out, in, alpha, count, m);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_layernorm_forward(cudaStream_t stream, float *out,
                                                        float *mean, float *rstd, const float *inp,
                                                        const float *w, const float *b, int N,
                                                        int C, float eps) {
  layernorm_forward_kernel<<<N, ROW_THREADS, 0, stream>>>(out, mean, rstd, inp, w, b, C, eps);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_layernorm_backward(cudaStream_t stream, float *dinp,
                                                         float *dw, float *db, const float *dout,
                                                         const float *inp, const float *w,
                                                         const float *mean, const float *rstd,
                                                         int N, int C) {
  if (dinp) {
    layernorm_dinp_kernel<<<N, ROW_THREADS, 0, stream>>>(dinp, dout, inp, w, mean, rstd, C);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess) return err;
  }
  if (!dw && !db) return cudaSuccess;
  layernorm_dwdb_kernel<<<(C + 31) / 32, dim3(32, COL_GROUPS), 0, stream>>>(dw, db, dout, inp, mean,
                                                                            rstd, N, C);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_softmax_backward(cudaStream_t stream, float *datt,
                                                       const float *att, int64_t rows, int L) {
  int64_t blocks = (rows + WARP_ROWS_PER_BLOCK - 1) / WARP_ROWS_PER_BLOCK;
  if (blocks > ELEM_MAX_BLOCKS) blocks = ELEM_MAX_BLOCKS;
  softmax_backward_kernel<<<(unsigned)blocks, 32 * WARP_ROWS_PER_BLOCK, 0, stream>>>(datt, att,
                                                                                     rows, L);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_activation_forward(cudaStream_t stream, rcc_activation_t act,
                                                         float *out, const float *inp, int64_t n) {
  activation_forward_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(act, out, inp, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_activation_backward(cudaStream_t stream, rcc_activation_t act,
                                                          float *dinp, const float *dout,
                                                          const float *inp, int64_t n) {
  activation_backward_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(act, dinp, dout, inp, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_im2col(cudaStream_t stream, float *cols, const float *pixels,
                                             int B, int C, int S, int p) {
  const int64_t count = (int64_t)B * (S / p) * (S / p) * C * p * p;
  im2col_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(cols, pixels, C, S, p, count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_patch_rows_forward(cudaStream_t stream, float *x,
                                                         const float *cls, const float *pos, int B,
                                                         int T, int D) {
  const int64_t count = (int64_t)B * T * D;
  patch_rows_forward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(x, cls, pos, T, D,
                                                                             count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_patch_rows_backward(cudaStream_t stream, float *dcls,
                                                          float *dpos, const float *dx, int B,
                                                          int T, int D) {
  patch_rows_backward_kernel<<<elem_blocks((int64_t)T * D), ELEM_THREADS, 0, stream>>>(dcls, dpos,
                                                                                       dx, B, T, D);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_token_embed_forward(cudaStream_t stream, float *x,
                                                          const int32_t *ids, const float *tok,
                                                          const float *pos, int B, int T, int D) {
  const int64_t count = (int64_t)B * T * D;
  token_embed_forward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(x, ids, tok, pos, T,
                                                                              D, count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_token_embed_backward(cudaStream_t stream, float *dtok,
                                                           float *dpos, const float *dx,
                                                           const int32_t *ids, int B, int T,
                                                           int D) {
  if (dtok) {
    token_embed_dtok_kernel<<<elem_blocks(D), ELEM_THREADS, 0, stream>>>(dtok, dx, ids, B * T, D);
    const cudaError_t err = cudaGetLastError();
    if (err != cudaSuccess || !dpos) return err;
  }
  token_embed_dpos_kernel<<<elem_blocks((int64_t)T * D), ELEM_THREADS, 0, stream>>>(dpos, dx, B, T,
                                                                                    D);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_pool_forward(cudaStream_t stream, float *out, const float *x,
                                                   const int *rows, int B, int T, int D) {
  const int64_t count = (int64_t)B * D;
  pool_forward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(out, x, rows, T, D, count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_pool_backward(cudaStream_t stream, float *dx,
                                                    const float *dout, const int *rows, int B,
                                                    int T, int D) {
  const int64_t count = (int64_t)B * D;
  pool_backward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(dx, dout, rows, T, D,
                                                                        count);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_l2norm_forward(cudaStream_t stream, float *out, float *norm,
                                                     const float *inp, int N, int C) {
  l2norm_forward_kernel<<<N, ROW_THREADS, 0, stream>>>(out, norm, inp, C);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_l2norm_backward(cudaStream_t stream, float *dinp,
                                                      const float *dout, const float *out,
                                                      const float *norm, int N, int C) {
  l2norm_backward_kernel<<<N, ROW_THREADS, 0, stream>>>(dinp, dout, out, norm, C);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_logit_scale_backward(cudaStream_t stream, float *dscale,
                                                           const float *dlogits,
                                                           const float *logits, float scale,
                                                           int64_t count) {
  logit_scale_backward_kernel<<<1, 1024, 0, stream>>>(dscale, dlogits, logits, scale, count);
  return cudaGetLastError();
}

/* ---- buffers and the optimizer step ---- */

__global__ static void fill_kernel(float *x, float value, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] = value;
}

__global__ static void gather_kernel(float *packed, const float *x, const int64_t *idx, int64_t n) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
       k += (int64_t)gridDim.x * blockDim.x)
    packed[k] = x[idx[k]];
}

/* idx holds distinct positions: no two threads write the same entry. */
__global__ static void scatter_kernel(float *x, const float *packed, const int64_t *idx,
                                      int64_t n) {
  for (int64_t k = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; k < n;
       k += (int64_t)gridDim.x * blockDim.x)
    x[idx[k]] = packed[k];
}

/* The CPU's AdamW step to the bit: the _rn intrinsics keep nvcc from contracting a
 * multiply and an add into one FMA, which gcc (no -ffp-contract on x86-64 without FMA
 * in the baseline ISA) never does; division and sqrt are correctly rounded on both. */
__global__ static void adamw_kernel(float *params, float *m, float *v, const float *grads,
                                    const uint8_t *decay, int64_t n, double lr, float b1, float b2,
                                    double eps, double shrink, double bc1, double bc2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    const float g = grads[i];
    const float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(__fsub_rn(1.0f, b1), g));
    const float vi =
        __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, b2), g), g));
    m[i] = mi;
    v[i] = vi;
    double p = params[i];
    if (!decay || decay[i]) p = __dmul_rn(p, shrink);
    const double m_hat = __ddiv_rn((double)mi, bc1), v_hat = __ddiv_rn((double)vi, bc2);
    params[i] = (float)__dsub_rn(p, __ddiv_rn(__dmul_rn(lr, m_hat), __dadd_rn(sqrt(v_hat), eps)));
  }
}

/* The per-entry update, then each block's share of the regularization summed in double
 * into partial[blockIdx.x] (the CPU sums sequentially, so the two agree to rounding only). */
__global__ static void distill_grads_kernel(float *g, const float *p, const float *start,
                                            const uint8_t *frozen, const uint8_t *pull, int64_t n,
                                            float inv, float pull_coef, double reg_weight,
                                            double *partial) {
  double r = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float gi = frozen[i] ? 0.0f : __fmul_rn(g[i], inv);
    if (pull[i]) {
      const float dev = __fsub_rn(p[i], start[i]);
      gi = __fadd_rn(gi, __fmul_rn(pull_coef, dev));
      r += reg_weight * (double)dev * dev;
    }
    g[i] = gi;
  }
  r = block_sum_f64(r);
  if (threadIdx.x == 0) partial[blockIdx.x] = r;
}

__global__ static void sum_squares_kernel(double *partial, const float *g, int64_t n) {
  double s = 0.0;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    s += (double)g[i] * g[i];
  s = block_sum_f64(s);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

/* One block of RCC_CUDA_SUM_BLOCKS threads: *total = the sum of the `count` partials. */
__global__ static void sum_partials_kernel(double *total, const double *partial, int count) {
  double s = (int)threadIdx.x < count ? partial[threadIdx.x] : 0.0;
  s = block_sum_f64(s);
  if (threadIdx.x == 0) *total = s;
}

enum { SUM_THREADS = 1024 };

/* Blocks for a sum over n entries: a function of n alone, so the order of the sums is. */
static int sum_blocks(int64_t n) {
  const int64_t b = (n + SUM_THREADS - 1) / SUM_THREADS;
  return b < 1 ? 1 : b > RCC_CUDA_SUM_BLOCKS ? RCC_CUDA_SUM_BLOCKS : (int)b;
}

/* sums[0] = the sum of the partials in sums[1 .. blocks]. */
static cudaError_t finish_sum(cudaStream_t stream, double *sums, int blocks) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  sum_partials_kernel<<<1, RCC_CUDA_SUM_BLOCKS, 0, stream>>>(sums, sums + 1, blocks);
  return cudaGetLastError();
}

__global__ static void scale_kernel(float *g, float s, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    g[i] = __fmul_rn(g[i], s);
}

extern "C" cudaError_t rcc_cuda_train_fill(cudaStream_t stream, float *x, float value, int64_t n) {
  fill_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(x, value, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_gather(cudaStream_t stream, float *packed, const float *x,
                                             const int64_t *idx, int64_t n) {
  gather_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(packed, x, idx, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_scatter(cudaStream_t stream, float *x, const float *packed,
                                              const int64_t *idx, int64_t n) {
  scatter_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(x, packed, idx, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_adamw_step(cudaStream_t stream, float *params, float *m,
                                                 float *v, const float *grads, const uint8_t *decay,
                                                 int64_t n, double lr, float b1, float b2,
                                                 double eps, double shrink, double bc1,
                                                 double bc2) {
  adamw_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(params, m, v, grads, decay, n, lr, b1,
                                                            b2, eps, shrink, bc1, bc2);
  return cudaGetLastError();
}

/* Many blocks: with sparse_values the buffer holds every kept weight of S (tens of millions
 * of entries for ViT-B/32), too much for one SM each step. */
extern "C" cudaError_t rcc_cuda_train_distill_grads(cudaStream_t stream, float *g, const float *p,
                                                    const float *start, const uint8_t *frozen,
                                                    const uint8_t *pull, int64_t n, float inv,
                                                    float pull_coef, double reg_weight,
                                                    double *sums) {
  const int blocks = sum_blocks(n);
  distill_grads_kernel<<<blocks, SUM_THREADS, 0, stream>>>(g, p, start, frozen, pull, n, inv,
                                                           pull_coef, reg_weight, sums + 1);
  return finish_sum(stream, sums, blocks);
}

extern "C" cudaError_t rcc_cuda_train_sum_squares(cudaStream_t stream, double *sums, const float *g,
                                                  int64_t n) {
  const int blocks = sum_blocks(n);
  sum_squares_kernel<<<blocks, SUM_THREADS, 0, stream>>>(sums + 1, g, n);
  return finish_sum(stream, sums, blocks);
}

extern "C" cudaError_t rcc_cuda_train_scale(cudaStream_t stream, float *g, float s, int64_t n) {
  scale_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(g, s, n);
  return cudaGetLastError();
}

/* ---- distillation loss ---- */

/* One thread per output value, the group's rows added in the CPU's order: the same bits. */
__global__ static void group_mean_forward_kernel(float *out, const float *inp, int64_t count, int n,
                                                 int C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t g = i / C, j = i % C;
    double s = 0.0;
    for (int t = 0; t < n; t++)
      s += inp[(g * n + t) * C + j];
    out[i] = (float)(s / n);
  }
}

__global__ static void group_mean_backward_kernel(float *dinp, const float *dout, int64_t count,
                                                  int n, int C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < count;
       i += (int64_t)gridDim.x * blockDim.x) {
    const int64_t g = i / ((int64_t)n * C), j = i % C;
    dinp[i] = __fadd_rn(dinp[i], __fdiv_rn(dout[g * C + j], (float)n));
  }
}

/* Maximum of v over the block, returned to every thread; exact, so any order will do. */
__device__ static double block_max_f64(double v) {
  __shared__ double partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmax(v, __shfl_xor_sync(0xffffffffu, v, offset));
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  double m = -INFINITY;
  for (int i = 0; i < warps; i++)
    m = fmax(m, partial[i]);
  return m;
}

/* One block per row: row i's term to term[i], its gradient in place. */
__global__ static void kd_loss_kernel(float *dlogits_s, double *term, const float *logits_s,
                                      const float *logits_t, int M, double T, double coef) {
  const size_t off = (size_t)blockIdx.x * M;
  const float *ls = logits_s + off, *lt = logits_t + off;
  double max_s = -INFINITY, max_t = -INFINITY;
  for (int c = threadIdx.x; c < M; c += blockDim.x) {
    max_s = fmax(max_s, ls[c] / T);
    max_t = fmax(max_t, lt[c] / T);
  }
  max_s = block_max_f64(max_s);
  max_t = block_max_f64(max_t);
  double zs = 0.0, zt = 0.0;
  for (int c = threadIdx.x; c < M; c += blockDim.x) {
    zs += exp(ls[c] / T - max_s);
    zt += exp(lt[c] / T - max_t);
  }
  const double log_zs = log(block_sum_f64(zs)), log_zt = log(block_sum_f64(zt));
  double kl = 0.0;
  for (int c = threadIdx.x; c < M; c += blockDim.x) {
    const double log_ps = ls[c] / T - max_s - log_zs, log_pt = lt[c] / T - max_t - log_zt;
    const double pt = exp(log_pt);
    kl += pt * (log_pt - log_ps);
    dlogits_s[off + c] = (float)(coef * T * (exp(log_ps) - pt));
  }
  kl = block_sum_f64(kl);
  if (threadIdx.x == 0) term[blockIdx.x] = coef * T * T * kl;
}

/* One block per row; g: the gradient coefficient as the CPU rounds it to float. */
__global__ static void embedding_loss_kernel(float *da, double *term, const float *a,
                                             const float *b, int C, int cosine, double weight,
                                             double count, float g) {
  const size_t off = (size_t)blockIdx.x * C;
  double s = 0.0;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    s += cosine ? (double)a[off + j] * b[off + j]
                : ((double)a[off + j] - b[off + j]) * ((double)a[off + j] - b[off + j]);
  s = block_sum_f64(s);
  if (threadIdx.x == 0)
    term[blockIdx.x] = cosine ? weight * (1.0 - s) / count : weight * s / C / count;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    da[off + j] = cosine ? __fsub_rn(da[off + j], __fmul_rn(g, b[off + j]))
                         : __fadd_rn(da[off + j], __fmul_rn(g, __fsub_rn(a[off + j], b[off + j])));
}

/* One block: *total = the sum of term (count), each thread a strided share in order, then
 * the fixed tree of block_sum_f64. */
__global__ static void sum_terms_kernel(double *total, const double *term, int count) {
  double s = 0.0;
  for (int i = threadIdx.x; i < count; i += blockDim.x)
    s += term[i];
  s = block_sum_f64(s);
  if (threadIdx.x == 0) *total = s;
}

extern "C" cudaError_t rcc_cuda_train_group_mean_forward(cudaStream_t stream, float *out,
                                                         const float *inp, int G, int n, int C) {
  const int64_t count = (int64_t)G * C;
  group_mean_forward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(out, inp, count, n, C);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_group_mean_backward(cudaStream_t stream, float *dinp,
                                                          const float *dout, int G, int n, int C) {
  const int64_t count = (int64_t)G * n * C;
  group_mean_backward_kernel<<<elem_blocks(count), ELEM_THREADS, 0, stream>>>(dinp, dout, count, n,
                                                                              C);
  return cudaGetLastError();
}

/* sums[0] = the total of the N rows' terms in sums[1 .. N]. */
static cudaError_t finish_terms(cudaStream_t stream, double *sums, int N) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  sum_terms_kernel<<<1, ROW_THREADS, 0, stream>>>(sums, sums + 1, N);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_train_kd_loss(cudaStream_t stream, float *dlogits_s,
                                              const float *logits_s, const float *logits_t, int N,
                                              int M, double T, double coef, double *sums) {
  kd_loss_kernel<<<N, ROW_THREADS, 0, stream>>>(dlogits_s, sums + 1, logits_s, logits_t, M, T,
                                                coef);
  return finish_terms(stream, sums, N);
}

extern "C" cudaError_t rcc_cuda_train_embedding_loss(cudaStream_t stream, int cosine, float *da,
                                                     const float *a, const float *b, int N, int C,
                                                     double weight, double count, double *sums) {
  const float g = cosine ? (float)(weight / count) : (float)(weight * 2.0 / C / count);
  embedding_loss_kernel<<<N, ROW_THREADS, 0, stream>>>(da, sums + 1, a, b, C, cosine, weight, count,
                                                       g);
  return finish_terms(stream, sums, N);
}
