/* CUDA kernels of the CUDA backend (everything but GEMM, which is cuBLAS): LayerNorm,
 * masked softmax, activations and the element-wise helpers. Each one computes what its
 * CPU twin in backend/cpu/cpu_ops.c computes, with float accumulation in a tree
 * reduction instead of a double running sum; tests/gpu/test_backend_cuda.c compares the
 * two. */
#include <math.h>

#include "backend/cuda/cuda_kernels.h"

/* Threads per block of the row kernels (a multiple of 32, at most 1024) and of the
 * element-wise kernels. */
#define ROW_THREADS 256
#define SOFTMAX_ROWS_PER_BLOCK 4 /* one warp per row */
#define ELEM_THREADS 256
#define ELEM_MAX_BLOCKS 65536 /* beyond this the grid-stride loop takes over */

__device__ static float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ static float warp_max(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

/* Sum of v over the block, returned to every thread. The leading barrier makes it safe
 * to call twice in a row (the second call must not overwrite partials the first is still
 * reading). */
__device__ static float block_sum(float v) {
  __shared__ float partial[32];
  int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < warps; i++)
    total += partial[i];
  return total;
}

/* One block per row of inp (N,C): mean, then variance of (x - mean), then the affine
 * output. Every read of the row is finished (block_sum's barriers) before the first write,
 * so out may equal inp. */
__global__ static void layernorm_kernel(float *out, const float *inp, const float *w,
                                        const float *b, int C, float eps) {
  const float *x = inp + (size_t)blockIdx.x * C;
  float *y = out + (size_t)blockIdx.x * C;
  float s = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    s += x[j];
  float mean = block_sum(s) / C;
  float sq = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x) {
    float d = x[j] - mean;
    sq += d * d;
  }
  float rstd = rsqrtf(block_sum(sq) / C + eps);
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    y[j] = (x[j] - mean) * rstd * w[j] + b[j];
}

/* One warp per row of x (R,L), as softmax_row in cpu_ops.c: masked and future columns
 * become 0, a row with nothing visible is all zeros. */
__global__ static void softmax_kernel(float *x, int R, int L, float scale, int causal_T,
                                      const uint8_t *key_valid, int rows_per_key) {
  int r = blockIdx.x * SOFTMAX_ROWS_PER_BLOCK + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (r >= R) return; /* the whole warp leaves together: r is the same on every lane */
  float *row = x + (size_t)r * L;
  int visible = L;
  if (causal_T > 0 && r % causal_T + 1 < L) visible = r % causal_T + 1;
  const uint8_t *keys = key_valid ? key_valid + (size_t)(r / rows_per_key) * L : NULL;
  float mx = -INFINITY;
  for (int j = lane; j < visible; j += 32)
    if (!keys || keys[j]) mx = fmaxf(mx, row[j] * scale);
  mx = warp_max(mx);
  if (mx == -INFINITY) {
    for (int j = lane; j < L; j += 32)
      row[j] = 0.0f;
    return;
  }
  float sum = 0.0f;
  for (int j = lane; j < L; j += 32) {
    float e = 0.0f;
    if (j < visible && (!keys || keys[j])) e = expf(row[j] * scale - mx);
    row[j] = e;
    sum += e;
  }
  float inv = 1.0f / warp_sum(sum);
  for (int j = lane; j < visible; j += 32)
    row[j] *= inv;
}

/* The same formulas as rcc_cpu_activation. */
__global__ static void activation_kernel(rcc_activation_t act, float *x, int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, sqrt_2_over_pi = 0.79788456080286536f;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x) {
    float v = x[i];
    switch (act) {
    case RCC_ACT_GELU: v = 0.5f * v * (1.0f + erff(v * inv_sqrt2)); break;
    case RCC_ACT_GELU_TANH:
      v = 0.5f * v * (1.0f + tanhf(sqrt_2_over_pi * (v + 0.044715f * v * v * v)));
      break;
    case RCC_ACT_QUICK_GELU: v = v * (1.0f / (1.0f + expf(-(1.702f * v)))); break;
    case RCC_ACT_RELU: v = v < 0.0f ? 0.0f : v; break;
    }
    x[i] = v;
  }
}

__global__ static void add_bias_kernel(float *x, const float *bias, int64_t n, int C) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] += bias[i % C];
}

__global__ static void add_kernel(float *out, const float *a, const float *b, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    out[i] = a[i] + b[i];
}

__global__ static void scale_kernel(float *x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    x[i] *= s;
}

/* One block per row of x (N,C); a zero row stays zero. */
__global__ static void l2_normalize_kernel(float *x, int C) {
  float *row = x + (size_t)blockIdx.x * C;
  float sq = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    sq += row[j] * row[j];
  float total = block_sum(sq);
  if (total == 0.0f) return;
  float norm = sqrtf(total);
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    row[j] /= norm;
}

static unsigned elem_blocks(int64_t n) {
  int64_t blocks = (n + ELEM_THREADS - 1) / ELEM_THREADS;
  return (unsigned)(blocks < ELEM_MAX_BLOCKS ? blocks : ELEM_MAX_BLOCKS);
}

extern "C" cudaError_t rcc_cuda_layernorm(cudaStream_t stream, float *out, const float *inp,
                                          const float *w, const float *b, int N, int C, float eps) {
  layernorm_kernel<<<N, ROW_THREADS, 0, stream>>>(out, inp, w, b, C, eps);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_softmax(cudaStream_t stream, float *x, int R, int L, float scale,
                                        int causal_T, const uint8_t *key_valid, int rows_per_key) {
  unsigned blocks = (unsigned)((R + SOFTMAX_ROWS_PER_BLOCK - 1) / SOFTMAX_ROWS_PER_BLOCK);
  softmax_kernel<<<blocks, 32 * SOFTMAX_ROWS_PER_BLOCK, 0, stream>>>(x, R, L, scale, causal_T,
                                                                     key_valid, rows_per_key);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_activation(cudaStream_t stream, rcc_activation_t act, float *x,
                                           int64_t n) {
  activation_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(act, x, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_add_bias(cudaStream_t stream, float *x, const float *bias, int N,
                                         int C) {
  int64_t n = (int64_t)N * C;
  add_bias_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(x, bias, n, C);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_add(cudaStream_t stream, float *out, const float *a, const float *b,
                                    int64_t n) {
  add_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(out, a, b, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_scale(cudaStream_t stream, float *x, float s, int64_t n) {
  scale_kernel<<<elem_blocks(n), ELEM_THREADS, 0, stream>>>(x, s, n);
  return cudaGetLastError();
}

extern "C" cudaError_t rcc_cuda_l2_normalize_rows(cudaStream_t stream, float *x, int N, int C) {
  l2_normalize_kernel<<<N, ROW_THREADS, 0, stream>>>(x, C);
  return cudaGetLastError();
}
