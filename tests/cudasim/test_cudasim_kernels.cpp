/* Self-test of cudasim's device side (cudasim_device.hpp, launch.cpp) on kernels written
 * here, compiled as the translated .cu files are (same header, same flags): barriers and
 * shared memory, warp shuffles and votes by CUDA's definitions, atomics, grid-stride loops,
 * multi-dimensional indices and block order, launch-configuration errors, arguments
 * captured at launch. Then death tests (fork): what would hang or be undefined on a GPU
 * must abort with a "cudasim:" report. Prints timings of an element-wise launch of 16.7M
 * threads and of a LayerNorm-like kernel, the costs that bound the `gpu` tests.
 * Exit status 0 when everything passes, 1 otherwise; each failure is printed. */
#define CUDASIM_KERNEL_SOURCE 1
#include <cuda_runtime.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

int failures = 0;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#define CUDA_OK(call)                                                                              \
  do {                                                                                             \
    const cudaError_t err_ = (call);                                                               \
    if (err_ != cudaSuccess) {                                                                     \
      fprintf(stderr, "FAIL %s:%d: %s: %s\n", __FILE__, __LINE__, #call,                           \
              cudaGetErrorString(err_));                                                           \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* Device buffers, uploaded from and downloaded to host vectors. */
template <class T> T *to_device(const std::vector<T> &host) {
  void *p = nullptr;
  CUDA_OK(cudaMalloc(&p, host.size() * sizeof(T) + 1));
  CUDA_OK(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  return static_cast<T *>(p);
}
template <class T> std::vector<T> to_host(const T *dev, size_t n) {
  std::vector<T> host(n);
  CUDA_OK(cudaMemcpy(host.data(), dev, n * sizeof(T), cudaMemcpyDeviceToHost));
  return host;
}

double seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/* ---- kernels ---- */

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset >>= 1)
    v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

/* As the project's block_sum: shuffles within warps, then two barriers around the shared
 * partials (the first keeps a second call from overwriting what the first still reads). */
__device__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < warps; i++)
    total += partial[i];
  return total;
}

/* Per block: the sum of its chunk twice (shuffles + barriers; a shared tree). */
__global__ void block_reduce_kernel(float *out, const float *in, int chunk) {
  __shared__ float tree[256];
  const float *x = in + static_cast<size_t>(blockIdx.x) * chunk;
  float s = 0.0f;
  for (int j = threadIdx.x; j < chunk; j += blockDim.x)
    s += x[j];
  const float a = block_sum(s);
  const float b = block_sum(s + 1.0f); /* right after the first: needs the leading barrier */
  tree[threadIdx.x] = s;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (static_cast<int>(threadIdx.x) < half) tree[threadIdx.x] += tree[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    out[3 * blockIdx.x] = a;
    out[3 * blockIdx.x + 1] = b;
    out[3 * blockIdx.x + 2] = tree[0];
  }
}

/* Every lane writes what each shuffle gave it (one row of 32 per test). */
__global__ void shuffle_kernel(float *f, int *i, double *d, unsigned *u) {
  const int lane = threadIdx.x & 31, t = threadIdx.x;
  float v = static_cast<float>(lane + 1), m = static_cast<float>((lane * 7) % 32);
  for (int offset = 16; offset > 0; offset >>= 1) {
    v += __shfl_xor_sync(0xffffffffu, v, offset);
    m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, offset));
  }
  f[t] = v; /* 528 on every lane */
  f[64 + t] = m;
  float dn = static_cast<float>(lane);
  for (int offset = 16; offset > 0; offset >>= 1)
    dn += __shfl_down_sync(0xffffffffu, dn, offset);
  f[128 + t] = dn; /* lane 0: 496 */
  i[t] = __shfl_down_sync(0xffffffffu, lane, 3);
  i[64 + t] = __shfl_down_sync(0xffffffffu, lane, 3, 8);
  i[128 + t] = __shfl_up_sync(0xffffffffu, -lane, 2, 16);
  i[192 + t] = __shfl_sync(0xffffffffu, lane * 10, 5, 8);
  i[256 + t] = __shfl_xor_sync(0xffffffffu, lane, 8, 8);
  i[320 + t] = __shfl_sync(0xffffffffu, lane, 37); /* srcLane modulo width */
  d[t] = __shfl_xor_sync(0xffffffffu, 1e300 + lane * 1e285, 1);
  u[t] = __ballot_sync(0xffffffffu, lane % 3 == 0);
  u[64 + t] = static_cast<unsigned>(__any_sync(0xffffffffu, lane == 31)) |
              static_cast<unsigned>(__all_sync(0xffffffffu, lane < 31)) << 1;
  /* Two half-warps, each its own group. */
  const unsigned half = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  unsigned s = static_cast<unsigned>(lane);
  for (int offset = 8; offset > 0; offset >>= 1)
    s += __shfl_xor_sync(half, s, offset);
  u[128 + t] = s;
  __syncwarp();
}

__global__ void atomic_kernel(unsigned *hist, float *fsum, double *dsum, int *tickets, int *counter,
                              unsigned long long *big) {
  __shared__ unsigned local[16];
  if (threadIdx.x < 16) local[threadIdx.x] = 0;
  __syncthreads();
  const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
  atomicAdd(&local[(g * 7) % 16], 1u);
  __syncthreads();
  if (threadIdx.x < 16) atomicAdd(&hist[threadIdx.x], local[threadIdx.x]);
  atomicAdd(fsum, 0.5f);
  atomicAdd(dsum, 0.25);
  tickets[g] = atomicAdd(counter, 1);
  atomicAdd(big, 1ull << 33);
  atomicMax(counter + 1, static_cast<int>(g));
}

/* Grid-stride loop; visits[i] counts how often element i was handled. */
__global__ void grid_stride_kernel(float *out, const float *in, int *visits, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    out[i] = 2.0f * in[i] + 1.0f;
    atomicAdd(&visits[i], 1);
  }
}

__global__ void flag_kernel(int *flag, int value) { *flag = value; }

/* Each thread records its indices; thread (0,0,0) of each block the order blocks ran in.
 * Then a full-warp shuffle over a 2-D block: warps are linear thread ids / 32. */
__global__ void index_kernel(unsigned *ids, int *order, int *counter, unsigned *warp_sums) {
  const unsigned b = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
  const unsigned t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
  const unsigned nt = blockDim.x * blockDim.y * blockDim.z;
  ids[b * nt + t] = threadIdx.x | threadIdx.y << 8 | threadIdx.z << 16 | blockIdx.x << 24 |
                    blockIdx.y << 26 | blockIdx.z << 29;
  if (t == 0) order[b] = atomicAdd(counter, 1);
  unsigned s = t;
  for (int offset = 16; offset > 0; offset >>= 1)
    s += __shfl_xor_sync(0xffffffffu, s, offset);
  warp_sums[b * nt + t] = s;
}

/* Odd threads leave at once; the others meet at barriers, which exited threads do not
 * hold up, and exchange through shared memory. Then the barrier reductions. */
__global__ void early_exit_kernel(int *out, int *votes) {
  __shared__ int cell[128];
  const int t = threadIdx.x;
  if (t % 2) return;
  cell[t] = t * 3;
  __syncthreads();
  out[t] = cell[(t + 2) % 128];
  __syncthreads();
  votes[0] = __syncthreads_count(t % 4 == 0);
  votes[1] = __syncthreads_and(t < 1000);
  votes[2] = __syncthreads_and(t < 100);
  votes[3] = __syncthreads_or(t == 64);
  votes[4] = __syncthreads_or(t == 1);
}

/* Each block's shared value must be its own. */
__global__ void shared_per_block_kernel(int *out) {
  __shared__ int mine;
  if (threadIdx.x == 0) mine = static_cast<int>(blockIdx.x) * 10;
  __syncthreads();
  out[blockIdx.x * blockDim.x + threadIdx.x] = mine + static_cast<int>(threadIdx.x);
}

/* The _rn intrinsics and bit casts. */
__global__ void intrinsics_kernel(float *f, double *d, unsigned *u, float a, float b, float c) {
  f[0] = __fadd_rn(__fmul_rn(a, b), c);
  f[1] = __fdiv_rn(a, c);
  f[2] = rsqrtf(4.0f);
  f[3] = __int_as_float(0x3f800000);
  u[0] = __float_as_uint(-0.0f);
  u[1] = static_cast<unsigned>(__popc(0xf0f0u)) | static_cast<unsigned>(__clz(1)) << 8;
  u[2] = __brev(1u);
  d[0] = __dsub_rn(__dmul_rn(static_cast<double>(a), 3.0), 1.0);
  d[1] = __ddiv_rn(1.0, 3.0);
}

/* As the project's LayerNorm: two block sums (4 barriers, 10 shuffles per thread). */
__global__ void layernorm_kernel(float *out, const float *inp, int C) {
  const float *x = inp + static_cast<size_t>(blockIdx.x) * C;
  float *y = out + static_cast<size_t>(blockIdx.x) * C;
  float s = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    s += x[j];
  const float mean = block_sum(s) / C;
  float sq = 0.0f;
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    sq += (x[j] - mean) * (x[j] - mean);
  const float rstd = rsqrtf(block_sum(sq) / C + 1e-5f);
  for (int j = threadIdx.x; j < C; j += blockDim.x)
    y[j] = (x[j] - mean) * rstd;
}

__global__ void scale_kernel(float *x, float s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    x[i] *= s;
}

/* ---- kernels the death tests run: each must abort ---- */

__global__ void divergent_deadlock_kernel(float *out) {
  float v = static_cast<float>(threadIdx.x);
  if (threadIdx.x % 2)
    __syncthreads();
  else
    v = __shfl_xor_sync(0xffffffffu, v, 1); /* waits for odd lanes that wait at the barrier */
  out[threadIdx.x] = v;
}

__global__ void exited_lane_kernel(float *out) {
  if (threadIdx.x == 5) return;
  out[threadIdx.x] = warp_sum(1.0f);
}

__global__ void missing_lane_kernel(float *out) { out[threadIdx.x] = warp_sum(1.0f); }

/* Lane 0 names lanes 0-2, lane 1 only lanes 0-1: the two can never meet. */
__global__ void mask_mismatch_kernel(float *out) {
  const unsigned lane = threadIdx.x, mask = lane == 0 ? 0x7u : lane == 1 ? 0x3u : 1u << lane;
  out[threadIdx.x] = __shfl_sync(mask, 1.0f, 0);
}

/* ---- tests ---- */

void test_block_reduce() {
  const int blocks = 5, chunk = 1000;
  std::vector<float> in(static_cast<size_t>(blocks) * chunk);
  for (size_t i = 0; i < in.size(); i++)
    in[i] = static_cast<float>(i % 17);
  float *d_in = to_device(in), *d_out = to_device(std::vector<float>(3 * blocks, -1.0f));
  CUDASIM_LAUNCH(block_reduce_kernel, blocks, 256, 0, nullptr)(d_out, d_in, chunk);
  CUDA_OK(cudaGetLastError());
  const std::vector<float> out = to_host(d_out, 3 * blocks);
  for (int b = 0; b < blocks; b++) {
    float want = 0.0f;
    for (int j = 0; j < chunk; j++)
      want += in[static_cast<size_t>(b) * chunk + j];
    CHECK(out[3 * b] == want, "block %d: block_sum %g, want %g", b, out[3 * b], want);
    CHECK(out[3 * b + 1] == want + 256.0f, "block %d: second block_sum %g, want %g", b,
          out[3 * b + 1], want + 256.0f);
    CHECK(out[3 * b + 2] == want, "block %d: tree sum %g, want %g", b, out[3 * b + 2], want);
  }
  cudaFree(d_in);
  cudaFree(d_out);
}

void test_shuffles() {
  float *f = to_device(std::vector<float>(192, -1.0f));
  int *i = to_device(std::vector<int>(384, -1));
  double *d = to_device(std::vector<double>(64, -1.0));
  unsigned *u = to_device(std::vector<unsigned>(192, 7u));
  CUDASIM_LAUNCH(shuffle_kernel, 1, 64)(f, i, d, u); /* two warps */
  CUDA_OK(cudaGetLastError());
  const auto hf = to_host(f, 192);
  const auto hi = to_host(i, 384);
  const auto hd = to_host(d, 64);
  const auto hu = to_host(u, 192);
  unsigned ballot = 0;
  for (int l = 0; l < 32; l += 3)
    ballot |= 1u << l;
  for (int t = 0; t < 64; t++) {
    const int l = t % 32;
    CHECK(hf[t] == 528.0f, "xor sum, thread %d: %g", t, hf[t]);
    CHECK(hf[64 + t] == 31.0f, "xor max, thread %d: %g", t, hf[64 + t]);
    if (l == 0) CHECK(hf[128 + t] == 496.0f, "down sum, thread %d: %g", t, hf[128 + t]);
    const int down = l + 3 < 32 ? l + 3 : l;
    CHECK(hi[t] == down, "down 3, lane %d: %d, want %d", l, hi[t], down);
    const int down8 = l % 8 + 3 < 8 ? l + 3 : l;
    CHECK(hi[64 + t] == down8, "down 3 width 8, lane %d: %d, want %d", l, hi[64 + t], down8);
    const int up16 = l % 16 >= 2 ? -(l - 2) : -l;
    CHECK(hi[128 + t] == up16, "up 2 width 16, lane %d: %d, want %d", l, hi[128 + t], up16);
    const int idx8 = (l / 8 * 8 + 5) * 10;
    CHECK(hi[192 + t] == idx8, "idx 5 width 8, lane %d: %d, want %d", l, hi[192 + t], idx8);
    /* xor across segments: a lane reads an earlier segment, never a later one. */
    const int xor8 = (l ^ 8) <= l / 8 * 8 + 7 ? l ^ 8 : l;
    CHECK(hi[256 + t] == xor8, "xor 8 width 8, lane %d: %d, want %d", l, hi[256 + t], xor8);
    CHECK(hi[320 + t] == 5, "idx 37, lane %d: %d", l, hi[320 + t]);
    const double want_d = 1e300 + (l ^ 1) * 1e285;
    CHECK(hd[t] == want_d, "double xor, lane %d: %.17g, want %.17g", l, hd[t], want_d);
    CHECK(hu[t] == ballot, "ballot, lane %d: 0x%08x, want 0x%08x", l, hu[t], ballot);
    CHECK(hu[64 + t] == 1u, "any/all, lane %d: %u, want 1", l, hu[64 + t]);
    const unsigned half_sum = l < 16 ? 120u : 376u;
    CHECK(hu[128 + t] == half_sum, "half-warp groups, lane %d: %u, want %u", l, hu[128 + t],
          half_sum);
  }
  cudaFree(f);
  cudaFree(i);
  cudaFree(d);
  cudaFree(u);
}

void test_atomics() {
  const int blocks = 6, threads = 128, n = blocks * threads;
  unsigned *hist = to_device(std::vector<unsigned>(16, 0u));
  float *fsum = to_device(std::vector<float>(1, 0.0f));
  double *dsum = to_device(std::vector<double>(1, 0.0));
  int *tickets = to_device(std::vector<int>(n, -1));
  int *counter = to_device(std::vector<int>{0, -1});
  unsigned long long *big = to_device(std::vector<unsigned long long>(1, 0ull));
  CUDASIM_LAUNCH(atomic_kernel, blocks, threads)(hist, fsum, dsum, tickets, counter, big);
  CUDA_OK(cudaGetLastError());
  const auto h = to_host(hist, 16);
  for (int b = 0; b < 16; b++)
    CHECK(h[b] == static_cast<unsigned>(n / 16), "histogram bin %d: %u", b, h[b]);
  CHECK(to_host(fsum, 1)[0] == 0.5f * n, "float atomicAdd: %g", to_host(fsum, 1)[0]);
  CHECK(to_host(dsum, 1)[0] == 0.25 * n, "double atomicAdd: %g", to_host(dsum, 1)[0]);
  std::vector<int> t = to_host(tickets, n), seen(n, 0);
  for (int k = 0; k < n; k++)
    if (t[k] >= 0 && t[k] < n) seen[t[k]]++;
  int distinct = 0;
  for (int k = 0; k < n; k++)
    distinct += seen[k] == 1;
  CHECK(distinct == n, "atomicAdd tickets: %d of %d distinct", distinct, n);
  const auto c = to_host(counter, 2);
  CHECK(c[0] == n && c[1] == n - 1, "counter %d (want %d), atomicMax %d", c[0], n, c[1]);
  CHECK(to_host(big, 1)[0] == static_cast<unsigned long long>(n) << 33,
        "unsigned long long atomicAdd: %llu", to_host(big, 1)[0]);
  cudaFree(hist);
  cudaFree(fsum);
  cudaFree(dsum);
  cudaFree(tickets);
  cudaFree(counter);
  cudaFree(big);
}

void test_grid_stride() {
  const int64_t n = 100003; /* neither a multiple of the block nor of the grid */
  std::vector<float> in(n + 64);
  for (int64_t k = 0; k < n + 64; k++)
    in[k] = static_cast<float>(k % 1000);
  float *d_in = to_device(in), *d_out = to_device(std::vector<float>(n + 64, -7.0f));
  int *visits = to_device(std::vector<int>(n + 64, 0));
  CUDASIM_LAUNCH(grid_stride_kernel, 37, 128)(d_out, d_in, visits, n);
  CUDA_OK(cudaGetLastError());
  const auto out = to_host(d_out, n + 64);
  const auto v = to_host(visits, n + 64);
  int64_t bad = 0, first = -1;
  for (int64_t k = 0; k < n + 64; k++) {
    const bool ok =
        k < n ? out[k] == 2.0f * in[k] + 1.0f && v[k] == 1 : out[k] == -7.0f && v[k] == 0;
    if (!ok && bad++ == 0) first = k;
  }
  CHECK(bad == 0, "%lld wrong entries, the first at %lld", static_cast<long long>(bad),
        static_cast<long long>(first));
  cudaFree(d_in);
  cudaFree(d_out);
  cudaFree(visits);
}

void test_launch_config() {
  int *flag = to_device(std::vector<int>(1, 0));
  CUDA_OK(cudaGetLastError());
  const struct {
    dim3 grid, block;
    size_t shmem;
    const char *what;
  } bad[] = {
      {dim3(1), dim3(1025), 0, "1025 threads"},
      {dim3(1), dim3(64, 32), 0, "64 x 32 threads"},
      {dim3(1), dim3(1, 1, 65), 0, "block.z 65"},
      {dim3(1), dim3(0), 0, "block.x 0"},
      {dim3(0), dim3(32), 0, "grid.x 0"},
      {dim3(1, 65536), dim3(32), 0, "grid.y 65536"},
      {dim3(1, 1, 65536), dim3(32), 0, "grid.z 65536"},
      {dim3(0x80000000u), dim3(32), 0, "grid.x 2^31"},
      {dim3(1), dim3(32), 48 * 1024 + 1, "shared memory 48 KiB + 1"},
  };
  for (const auto &c : bad) {
    CUDASIM_LAUNCH(flag_kernel, c.grid, c.block, c.shmem, nullptr)(flag, 1);
    const cudaError_t err = cudaGetLastError();
    CHECK(err == cudaErrorInvalidConfiguration, "%s: launch gave %s", c.what,
          cudaGetErrorName(err));
    CHECK(cudaGetLastError() == cudaSuccess, "%s: the error is not cleared once read", c.what);
  }
  CUDA_OK(cudaDeviceSynchronize());
  CHECK(to_host(flag, 1)[0] == 0, "a rejected launch ran");
  /* The largest legal shapes run. */
  CUDASIM_LAUNCH(flag_kernel, 1, 1024, 48 * 1024, nullptr)(flag, 2);
  CUDASIM_LAUNCH(flag_kernel, 1, dim3(1, 16, 64))(flag, 3);
  CUDA_OK(cudaGetLastError());
  CHECK(to_host(flag, 1)[0] == 3, "legal launches did not run: %d", to_host(flag, 1)[0]);
  /* Arguments are copied at the launch, and the launch waits for a synchronization. */
  int value = 41;
  CUDASIM_LAUNCH(flag_kernel, 1, 1)(flag, value);
  value = 99;
  CUDASIM_LAUNCH(flag_kernel, 1, 1)(flag, value - 57);
  CHECK(to_host(flag, 1)[0] == 42, "arguments by value at launch: %d", to_host(flag, 1)[0]);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreate(&stream));
  CUDASIM_LAUNCH(flag_kernel, 1, 1, 0, stream)(flag, 43);
  CUDA_OK(cudaStreamSynchronize(stream));
  CHECK(to_host(flag, 1)[0] == 43, "launch on a stream: %d", to_host(flag, 1)[0]);
  CUDA_OK(cudaStreamDestroy(stream));
  cudaFree(flag);
}

void test_indices() {
  const dim3 grid(2, 3, 2), block(8, 2, 4); /* 64 threads: two warps spanning y and z */
  const unsigned nb = 12, nt = 64;
  unsigned *ids = to_device(std::vector<unsigned>(nb * nt, 0u));
  unsigned *sums = to_device(std::vector<unsigned>(nb * nt, 0u));
  int *order = to_device(std::vector<int>(nb, -1));
  int *counter = to_device(std::vector<int>(1, 0));
  CUDASIM_LAUNCH(index_kernel, grid, block)(ids, order, counter, sums);
  CUDA_OK(cudaGetLastError());
  const auto h = to_host(ids, nb * nt);
  const auto s = to_host(sums, nb * nt);
  const auto o = to_host(order, nb);
  int bad = 0;
  for (unsigned bz = 0; bz < 2; bz++)
    for (unsigned by = 0; by < 3; by++)
      for (unsigned bx = 0; bx < 2; bx++) {
        const unsigned b = bx + 2 * (by + 3 * bz);
        CHECK(o[b] == static_cast<int>(b), "block (%u,%u,%u) ran %d-th, want %u-th (x, y, z)", bx,
              by, bz, o[b], b);
        for (unsigned tz = 0; tz < 4; tz++)
          for (unsigned ty = 0; ty < 2; ty++)
            for (unsigned tx = 0; tx < 8; tx++) {
              const unsigned t = tx + 8 * (ty + 2 * tz), w = t / 32;
              const unsigned want = tx | ty << 8 | tz << 16 | bx << 24 | by << 26 | bz << 29;
              bad += h[b * nt + t] != want;
              bad += s[b * nt + t] != 32 * 31 / 2 + 32 * 32 * w;
            }
      }
  CHECK(bad == 0, "%d wrong thread indices or warp sums", bad);
  cudaFree(ids);
  cudaFree(sums);
  cudaFree(order);
  cudaFree(counter);
}

void test_barriers() {
  int *out = to_device(std::vector<int>(128, -1));
  int *votes = to_device(std::vector<int>(5, -1));
  CUDASIM_LAUNCH(early_exit_kernel, 1, 128)(out, votes);
  CUDA_OK(cudaGetLastError());
  const auto h = to_host(out, 128);
  int bad = 0;
  for (int t = 0; t < 128; t++)
    bad += h[t] != (t % 2 ? -1 : (t + 2) % 128 * 3);
  CHECK(bad == 0, "%d wrong exchanges through shared memory past exited threads", bad);
  const auto v = to_host(votes, 5);
  CHECK(v[0] == 32 && v[1] == 1 && v[2] == 0 && v[3] == 1 && v[4] == 0,
        "__syncthreads_count/and/or: %d %d %d %d %d, want 32 1 0 1 0", v[0], v[1], v[2], v[3],
        v[4]);
  const int blocks = 7;
  int *per_block = to_device(std::vector<int>(blocks * 64, -1));
  CUDASIM_LAUNCH(shared_per_block_kernel, blocks, 64)(per_block);
  const auto p = to_host(per_block, blocks * 64);
  bad = 0;
  for (int k = 0; k < blocks * 64; k++)
    bad += p[k] != k / 64 * 10 + k % 64;
  CHECK(bad == 0, "%d wrong shared-memory values across blocks", bad);
  cudaFree(out);
  cudaFree(votes);
  cudaFree(per_block);
}

void test_intrinsics() {
  float *f = to_device(std::vector<float>(4, 0.0f));
  double *d = to_device(std::vector<double>(2, 0.0));
  unsigned *u = to_device(std::vector<unsigned>(3, 0u));
  const float a = 1.0f + 1.0f / 4096, b = 1.0f - 1.0f / 4096, c = -1.0f;
  CUDASIM_LAUNCH(intrinsics_kernel, 1, 1)(f, d, u, a, b, c);
  const auto hf = to_host(f, 4);
  const auto hd = to_host(d, 2);
  const auto hu = to_host(u, 3);
  volatile float prod = a * b; /* rounded, then added: what __fmul_rn + __fadd_rn mean */
  CHECK(hf[0] == prod + c, "__fadd_rn(__fmul_rn) = %a, want %a (unfused)", hf[0], prod + c);
  CHECK(hf[1] == -a && hf[2] == 0.5f && hf[3] == 1.0f, "fdiv %g rsqrtf %g int_as_float %g", hf[1],
        hf[2], hf[3]);
  CHECK(hu[0] == 0x80000000u && hu[1] == (8u | 31u << 8) && hu[2] == 0x80000000u,
        "float_as_uint 0x%08x popc|clz 0x%x brev 0x%08x", hu[0], hu[1], hu[2]);
  CHECK(hd[0] == static_cast<double>(a) * 3.0 - 1.0 && hd[1] == 1.0 / 3.0, "double _rn: %a %a",
        hd[0], hd[1]);
  cudaFree(f);
  cudaFree(d);
  cudaFree(u);
}

/* Timings (printed, not checked: CI machines vary) and the LayerNorm's values. */
void test_speed() {
  const int64_t n = int64_t(65536) * 256;
  float *x = to_device(std::vector<float>(n, 1.5f));
  double t0 = seconds();
  CUDASIM_LAUNCH(scale_kernel, 65536, 256)(x, 2.0f, n);
  CUDA_OK(cudaDeviceSynchronize());
  const double elementwise = seconds() - t0;
  const auto hx = to_host(x, n);
  int64_t bad = 0;
  for (int64_t k = 0; k < n; k++)
    bad += hx[k] != 3.0f;
  CHECK(bad == 0, "element-wise: %lld wrong", static_cast<long long>(bad));
  cudaFree(x);

  const int rows = 400, C = 768;
  std::vector<float> in(static_cast<size_t>(rows) * C);
  for (size_t k = 0; k < in.size(); k++)
    in[k] = static_cast<float>((k * 37) % 101) / 50.0f;
  float *d_in = to_device(in), *d_out = to_device(std::vector<float>(in.size(), 0.0f));
  t0 = seconds();
  CUDASIM_LAUNCH(layernorm_kernel, rows, 256)(d_out, d_in, C);
  CUDA_OK(cudaDeviceSynchronize());
  const double layernorm = seconds() - t0;
  const auto out = to_host(d_out, in.size());
  double worst = 0.0;
  for (int r = 0; r < rows; r++) {
    double mean = 0.0, var = 0.0;
    for (int j = 0; j < C; j++)
      mean += in[static_cast<size_t>(r) * C + j];
    mean /= C;
    for (int j = 0; j < C; j++) {
      const double dlt = in[static_cast<size_t>(r) * C + j] - mean;
      var += dlt * dlt;
    }
    var /= C;
    for (int j = 0; j < C; j++) {
      const double want = (in[static_cast<size_t>(r) * C + j] - mean) / std::sqrt(var + 1e-5);
      worst = std::fmax(worst, std::fabs(want - out[static_cast<size_t>(r) * C + j]));
    }
  }
  CHECK(worst < 1e-4, "LayerNorm: largest error %g", worst);
  cudaFree(d_in);
  cudaFree(d_out);
  printf("timing: element-wise 65536 x 256 threads %.3f s; LayerNorm 400 x 256 threads "
         "(4 barriers, 10 shuffles each) %.3f s\n",
         elementwise, layernorm);
}

/* ---- death tests ---- */

/* Runs scenario in a child; it must die abnormally with "cudasim:" and `expect` in its
 * stderr. */
void expect_death(const char *name, void (*scenario)(), const char *expect) {
  fflush(stdout);
  fflush(stderr);
  int fds[2];
  if (pipe(fds) != 0) {
    perror("pipe");
    exit(1);
  }
  const pid_t pid = fork();
  if (pid < 0) {
    perror("fork");
    exit(1);
  }
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    const rlimit no_core = {0, 0}; /* the abort is expected: no core file */
    setrlimit(RLIMIT_CORE, &no_core);
    scenario();
    cudaDeviceSynchronize();
    _exit(0);
  }
  close(fds[1]);
  std::string err;
  char buf[4096];
  for (ssize_t got; (got = read(fds[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<size_t>(got));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  const bool died = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
  CHECK(died, "%s: the child exited normally (stderr: %s)", name, err.c_str());
  CHECK(err.find("cudasim:") != std::string::npos && err.find(expect) != std::string::npos,
        "%s: stderr lacks \"cudasim:\" and \"%s\": %s", name, expect, err.c_str());
}

float *scratch(size_t n) {
  void *p = nullptr;
  CUDA_OK(cudaMalloc(&p, n * sizeof(float)));
  return static_cast<float *>(p);
}

void death_divergent_deadlock() { CUDASIM_LAUNCH(divergent_deadlock_kernel, 2, 64)(scratch(64)); }
void death_exited_lane() { CUDASIM_LAUNCH(exited_lane_kernel, 1, 64)(scratch(64)); }
void death_missing_lane() { CUDASIM_LAUNCH(missing_lane_kernel, 1, 48)(scratch(48)); }
void death_mask_mismatch() { CUDASIM_LAUNCH(mask_mismatch_kernel, 1, 32)(scratch(32)); }
void death_host_pointer() {
  static float host[64];
  CUDASIM_LAUNCH(exited_lane_kernel, 1, 64)(host);
}
void death_freed_pointer() {
  float *out = scratch(64), *p = scratch(64);
  cudaFree(p);
  CUDASIM_LAUNCH(grid_stride_kernel, 1, 32)(out, p, nullptr, 64);
}

void test_deaths() {
  expect_death("divergent barrier", death_divergent_deadlock,
               "kernel divergent_deadlock_kernel, block (0,0,0), thread (0,0,0): deadlock");
  expect_death("exited lane", death_exited_lane,
               "kernel exited_lane_kernel, block (0,0,0), thread (5,0,0): exited while lane 0");
  expect_death("lane beyond the block", death_missing_lane,
               "kernel missing_lane_kernel, block (0,0,0), thread (32,0,0): __shfl_xor_sync "
               "with mask 0xffffffff names lanes 0xffff0000 that do not exist");
  expect_death("mismatched masks", death_mask_mismatch,
               "kernel mask_mismatch_kernel, block (0,0,0), thread (1,0,0): lanes of warp 0 "
               "meet with different warp operations or masks");
  expect_death("host pointer argument", death_host_pointer,
               "kernel exited_lane_kernel: argument 1 of 1");
  expect_death("freed pointer argument", death_freed_pointer,
               "kernel grid_stride_kernel: argument 2 of 4");
}

} // namespace

int main() {
  test_block_reduce();
  test_shuffles();
  test_atomics();
  test_grid_stride();
  test_launch_config();
  test_indices();
  test_barriers();
  test_intrinsics();
  test_speed();
  test_deaths();
  if (failures) {
    fprintf(stderr, "test_cudasim_kernels: %d check(s) failed\n", failures);
    return 1;
  }
  printf("test_cudasim_kernels: all passed\n");
  return 0;
}
