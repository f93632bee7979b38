/* cudasim's device side: what a CUDA kernel source needs to compile as host C++ and run on
 * the CPU. tests/cudasim/translate.cmake turns a .cu file into C++ that defines
 * CUDASIM_KERNEL_SOURCE and includes <cuda_runtime.h>, which then includes this header; it
 * rewrites every `kernel<<<grid, block, shmem, stream>>>(args)` into
 * `CUDASIM_LAUNCH(kernel, grid, block, shmem, stream)(args)`.
 *
 * The model (tests/cudasim/launch.cpp runs it): a launch checks its configuration and its
 * pointer arguments at once, as the CUDA runtime reports launch errors at once, then queues
 * the grid on its stream with the arguments copied. When the stream runs, the blocks run
 * one after another and the threads of a block as cooperative fibers on one OS thread: a
 * thread runs until it exits or reaches __syncthreads() or a warp-synchronous intrinsic,
 * where it waits until every thread (lane) it synchronizes with has arrived. Hence
 * `__shared__` can simply be `static` (one block at a time owns it), atomics need no
 * locking, and a barrier or shuffle that could never complete on a GPU is reported instead
 * of hanging. Not modelled: the memory model between threads (every write is visible at
 * once), dynamic shared memory (`extern __shared__`), textures, cooperative groups. */
#pragma once
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

#include <functional>

/* ---- qualifiers ---- */

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
/* A function-local static is one object for all threads of the block; blocks run one after
 * another, so it is exactly that block's shared memory. Like shared memory it keeps the
 * previous block's contents, which no correct kernel reads. */
#define __shared__ static
/* __restrict__ is already a GCC keyword in C++. */

/* ---- built-in types and variables ---- */

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return uint3{x, y, z}; }
};

namespace cudasim {
namespace detail {
/* The running thread's indices: the scheduler rewrites them at every switch between fibers.
 * Per OS thread, as whichever thread flushes a stream runs its kernels (the runtime's lock
 * keeps two from running device work at once, which is what lets __shared__ be a plain
 * static). __thread, not thread_local: no dynamic initialization, so no TLS wrapper call per
 * read; initial-exec: a plain %fs-relative load even in position-independent code. */
#define CUDASIM_TLS __thread __attribute__((tls_model("initial-exec")))
extern CUDASIM_TLS uint3 tl_thread_idx;
extern CUDASIM_TLS uint3 tl_block_idx;
extern CUDASIM_TLS dim3 tl_block_dim;
extern CUDASIM_TLS dim3 tl_grid_dim;
} // namespace detail
} // namespace cudasim

/* Read-only, as on the device: assigning to threadIdx.x does not compile. */
#define threadIdx (static_cast<const uint3 &>(::cudasim::detail::tl_thread_idx))
#define blockIdx (static_cast<const uint3 &>(::cudasim::detail::tl_block_idx))
#define blockDim (static_cast<const dim3 &>(::cudasim::detail::tl_block_dim))
#define gridDim (static_cast<const dim3 &>(::cudasim::detail::tl_grid_dim))
inline constexpr int warpSize = 32;

/* ---- the scheduler's entry points (launch.cpp) ---- */

namespace cudasim {

/* As in cudasim_internal.hpp (runtime.cpp): queues work on a stream. */
void enqueue(cudaStream_t stream, const char *what, std::function<void()> work);

namespace detail {

/* Warp-synchronous operations; the names index launch.cpp's table for reports. */
enum WarpOp { WARP_SHFL_IDX, WARP_SHFL_UP, WARP_SHFL_DOWN, WARP_SHFL_XOR, WARP_BALLOT, WARP_SYNC };

/* __syncthreads and its reductions: waits until every thread of the block that has not
 * exited has arrived; returns, over the threads that arrived, the number with pred != 0
 * (BAR_COUNT), whether all had it (BAR_AND) or whether any had it (BAR_OR). */
enum BarrierKind { BAR_COUNT, BAR_AND, BAR_OR };
int block_barrier(int pred, BarrierKind kind);

/* One lane's part of a warp-synchronous operation over the lanes in mask: waits for all of
 * them, then returns what op gives this lane (the raw bits of the value it reads, the
 * ballot, or 0). */
uint64_t warp_sync_op(unsigned mask, uint64_t bits, WarpOp op, int param, int width);

/* Launch checks, as cudaLaunchKernel makes them before anything is queued. */
bool launch_config_ok(const char *kernel, dim3 grid, dim3 block, size_t shmem);
void check_pointer_arg(const char *kernel, int position, int count, const void *p);

/* Runs a grid now (from the stream's queue): thread_body(ctx) once per thread. */
void run_grid(const char *kernel, dim3 grid, dim3 block, void (*thread_body)(const void *),
              const void *ctx);

[[noreturn]] void device_trap(const char *what);

template <class T> inline uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8,
                "cudasim: warp shuffles move values of at most 8 bytes");
  uint64_t bits = 0;
  memcpy(&bits, &v, sizeof v);
  return bits;
}
template <class T> inline T from_bits(uint64_t bits) {
  T v;
  memcpy(&v, &bits, sizeof v);
  return v;
}
template <class To, class From> inline To bits_as(From v) {
  static_assert(sizeof(To) == sizeof(From), "cudasim: reinterpreting bits needs equal sizes");
  To to;
  memcpy(&to, &v, sizeof to);
  return to;
}

/* CUDASIM_LAUNCH(k, ...) builds a Launch<&k>; calling it with the kernel's arguments
 * converts them to the parameter types (as a call would), checks and queues the grid. The
 * kernel is a template argument, so each thread's body is a direct call the compiler may
 * inline. */
template <auto Kernel, class Signature = decltype(Kernel)> class Launch;

template <auto Kernel, class... P> class Launch<Kernel, void (*)(P...)> {
public:
  Launch(const char *name, dim3 grid, dim3 block, size_t shmem = 0, cudaStream_t stream = nullptr)
      : name_(name), grid_(grid), block_(block), shmem_(shmem), stream_(stream) {}

  void operator()(P... args) const {
    if (!launch_config_ok(name_, grid_, block_, shmem_)) return;
    check_pointers(std::index_sequence_for<P...>{}, args...);
    ::cudasim::enqueue(stream_, name_, Grid{name_, grid_, block_, Args(args...)});
  }

private:
  using Args = std::tuple<std::decay_t<P>...>;

  /* What the stream runs: owns the arguments as they were at the launch. */
  struct Grid {
    const char *name;
    dim3 grid, block;
    Args args;
    void operator()() const { run_grid(name, grid, block, &thread_body, this); }
    static void thread_body(const void *self) {
      std::apply(Kernel, static_cast<const Grid *>(self)->args);
    }
  };

  template <size_t... I> void check_pointers(std::index_sequence<I...>, const P &...args) const {
    (check_one(static_cast<int>(I) + 1, args), ...);
  }
  template <class T>
  void check_one([[maybe_unused]] int position, [[maybe_unused]] const T &arg) const {
    if constexpr (std::is_pointer_v<T>)
      check_pointer_arg(name_, position, static_cast<int>(sizeof...(P)),
                        reinterpret_cast<const void *>(arg));
  }

  const char *name_;
  dim3 grid_, block_;
  size_t shmem_;
  cudaStream_t stream_;
};

} // namespace detail
} // namespace cudasim

/* CUDASIM_LAUNCH(kernel, grid, block [, shmem [, stream]])(args...): the rewritten
 * kernel<<<grid, block, shmem, stream>>>(args...). grid and block: dim3 or an integer;
 * shmem: dynamic shared memory bytes (checked, not provided); stream: NULL or 0 for the
 * legacy default stream. A bad configuration sets cudaGetLastError() and queues nothing; a
 * pointer argument outside every live device allocation is fatal. */
#define CUDASIM_LAUNCH(kernel, ...) ::cudasim::detail::Launch<&kernel>(#kernel, __VA_ARGS__)

/* ---- synchronization ---- */

inline void __syncthreads() { ::cudasim::detail::block_barrier(0, ::cudasim::detail::BAR_COUNT); }
inline int __syncthreads_count(int pred) {
  return ::cudasim::detail::block_barrier(pred, ::cudasim::detail::BAR_COUNT);
}
inline int __syncthreads_and(int pred) {
  return ::cudasim::detail::block_barrier(pred, ::cudasim::detail::BAR_AND);
}
inline int __syncthreads_or(int pred) {
  return ::cudasim::detail::block_barrier(pred, ::cudasim::detail::BAR_OR);
}
/* Every write is visible at once to every thread: fences have nothing to order. */
inline void __threadfence() {}
inline void __threadfence_block() {}
inline void __threadfence_system() {}

inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::cudasim::detail::warp_sync_op(mask, 0, ::cudasim::detail::WARP_SYNC, 0, 32);
}

template <class T> inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
  using namespace ::cudasim::detail;
  return from_bits<T>(warp_sync_op(mask, to_bits(var), WARP_SHFL_IDX, srcLane, width));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned int delta, int width = 32) {
  using namespace ::cudasim::detail;
  return from_bits<T>(
      warp_sync_op(mask, to_bits(var), WARP_SHFL_UP, static_cast<int>(delta), width));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned int delta, int width = 32) {
  using namespace ::cudasim::detail;
  return from_bits<T>(
      warp_sync_op(mask, to_bits(var), WARP_SHFL_DOWN, static_cast<int>(delta), width));
}
template <class T> inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
  using namespace ::cudasim::detail;
  return from_bits<T>(warp_sync_op(mask, to_bits(var), WARP_SHFL_XOR, laneMask, width));
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
  using namespace ::cudasim::detail;
  return static_cast<unsigned>(warp_sync_op(mask, pred != 0, WARP_BALLOT, 0, 32));
}
inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

inline void __trap() { ::cudasim::detail::device_trap("__trap()"); }

/* ---- atomics: fibers switch only at barriers and warp operations, so a plain
 * read-modify-write is atomic with respect to every other thread of the grid ---- */

#define CUDASIM_ATOMIC_RMW(name, type, expr)                                                       \
  inline type name(type *address, type val) {                                                      \
    const type old = *address;                                                                     \
    *address = (expr);                                                                             \
    return old;                                                                                    \
  }
#define CUDASIM_ATOMIC_INTEGER(type)                                                               \
  CUDASIM_ATOMIC_RMW(atomicAdd, type, old + val)                                                   \
  CUDASIM_ATOMIC_RMW(atomicSub, type, old - val)                                                   \
  CUDASIM_ATOMIC_RMW(atomicExch, type, val)                                                        \
  CUDASIM_ATOMIC_RMW(atomicMin, type, val < old ? val : old)                                       \
  CUDASIM_ATOMIC_RMW(atomicMax, type, val > old ? val : old)                                       \
  CUDASIM_ATOMIC_RMW(atomicAnd, type, old &val)                                                    \
  CUDASIM_ATOMIC_RMW(atomicOr, type, old | val)                                                    \
  CUDASIM_ATOMIC_RMW(atomicXor, type, old ^ val)                                                   \
  inline type atomicCAS(type *address, type compare, type val) {                                   \
    const type old = *address;                                                                     \
    if (old == compare) *address = val;                                                            \
    return old;                                                                                    \
  }
CUDASIM_ATOMIC_INTEGER(int)
CUDASIM_ATOMIC_INTEGER(unsigned int)
CUDASIM_ATOMIC_INTEGER(unsigned long long)
CUDASIM_ATOMIC_INTEGER(long long)
CUDASIM_ATOMIC_RMW(atomicAdd, float, old + val)
CUDASIM_ATOMIC_RMW(atomicAdd, double, old + val)
CUDASIM_ATOMIC_RMW(atomicExch, float, val)
/* CUDA's wrap-around increment and decrement. */
CUDASIM_ATOMIC_RMW(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
CUDASIM_ATOMIC_RMW(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef CUDASIM_ATOMIC_INTEGER
#undef CUDASIM_ATOMIC_RMW

/* ---- arithmetic with a stated rounding: one IEEE operation each, never contracted into
 * an FMA (the build passes -ffp-contract=off; the empty asm keeps it so even without) ---- */

namespace cudasim {
namespace detail {
template <class T> inline T rounded(T v) {
#if defined(__x86_64__)
  __asm__("" : "+x"(v));
#elif defined(__aarch64__)
  __asm__("" : "+w"(v));
#endif
  return v;
}
} // namespace detail
} // namespace cudasim

inline float __fadd_rn(float a, float b) { return ::cudasim::detail::rounded(a + b); }
inline float __fsub_rn(float a, float b) { return ::cudasim::detail::rounded(a - b); }
inline float __fmul_rn(float a, float b) { return ::cudasim::detail::rounded(a * b); }
inline float __fdiv_rn(float a, float b) { return ::cudasim::detail::rounded(a / b); }
inline float __frcp_rn(float a) { return ::cudasim::detail::rounded(1.0f / a); }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return ::cudasim::detail::rounded(a + b); }
inline double __dsub_rn(double a, double b) { return ::cudasim::detail::rounded(a - b); }
inline double __dmul_rn(double a, double b) { return ::cudasim::detail::rounded(a * b); }
inline double __ddiv_rn(double a, double b) { return ::cudasim::detail::rounded(a / b); }
inline double __drcp_rn(double a) { return ::cudasim::detail::rounded(1.0 / a); }
inline double __dsqrt_rn(double a) { return sqrt(a); }
inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }

/* ---- device math beyond <math.h>: correctly rounded stand-ins for CUDA's approximations,
 * so results may differ from a GPU's in the last bits ---- */

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline double rsqrt(double x) { return 1.0 / sqrt(x); }
inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __sinf(float x) { return sinf(x); }
inline float __cosf(float x) { return cosf(x); }
inline float __powf(float x, float y) { return powf(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float fdividef(float x, float y) { return x / y; }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
inline float exp10f(float x) { return powf(10.0f, x); }

/* CUDA's integer min and max (device functions in the global namespace). */
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned int min(unsigned int a, unsigned int b) { return a < b ? a : b; }
inline unsigned int max(unsigned int a, unsigned int b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline unsigned long long min(unsigned long long a, unsigned long long b) { return a < b ? a : b; }
inline unsigned long long max(unsigned long long a, unsigned long long b) { return a > b ? a : b; }
inline float min(float a, float b) { return fminf(a, b); }
inline float max(float a, float b) { return fmaxf(a, b); }
inline double min(double a, double b) { return fmin(a, b); }
inline double max(double a, double b) { return fmax(a, b); }

/* ---- bit reinterpretation and integer intrinsics ---- */

inline unsigned int __float_as_uint(float x) { return ::cudasim::detail::bits_as<unsigned int>(x); }
inline int __float_as_int(float x) { return ::cudasim::detail::bits_as<int>(x); }
inline float __uint_as_float(unsigned int x) { return ::cudasim::detail::bits_as<float>(x); }
inline float __int_as_float(int x) { return ::cudasim::detail::bits_as<float>(x); }
inline long long __double_as_longlong(double x) { return ::cudasim::detail::bits_as<long long>(x); }
inline double __longlong_as_double(long long x) { return ::cudasim::detail::bits_as<double>(x); }
inline int __double2hiint(double x) {
  return static_cast<int>(::cudasim::detail::bits_as<unsigned long long>(x) >> 32);
}
inline int __double2loint(double x) {
  return static_cast<int>(::cudasim::detail::bits_as<unsigned long long>(x) & 0xffffffffu);
}
inline double __hiloint2double(int hi, int lo) {
  return ::cudasim::detail::bits_as<double>(
      static_cast<unsigned long long>(static_cast<unsigned int>(hi)) << 32 |
      static_cast<unsigned int>(lo));
}

inline int __popc(unsigned int x) { return __builtin_popcount(x); }
inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned int>(x)); }
inline int __clzll(long long x) {
  return x == 0 ? 64 : __builtin_clzll(static_cast<unsigned long long>(x));
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __ffsll(long long x) { return __builtin_ffsll(x); }
inline unsigned int __brev(unsigned int x) {
  x = (x >> 1 & 0x55555555u) | (x & 0x55555555u) << 1;
  x = (x >> 2 & 0x33333333u) | (x & 0x33333333u) << 2;
  x = (x >> 4 & 0x0f0f0f0fu) | (x & 0x0f0f0f0fu) << 4;
  return __builtin_bswap32(x);
}
inline int __mulhi(int a, int b) { return static_cast<int>(static_cast<long long>(a) * b >> 32); }
inline unsigned int __umulhi(unsigned int a, unsigned int b) {
  return static_cast<unsigned int>(static_cast<unsigned long long>(a) * b >> 32);
}
/* The low 24 bits of each, sign-extended, multiplied. */
inline int __mul24(int a, int b) {
  return (static_cast<int>(static_cast<unsigned int>(a) << 8) >> 8) *
         (static_cast<int>(static_cast<unsigned int>(b) << 8) >> 8);
}
inline unsigned int __umul24(unsigned int a, unsigned int b) {
  return (a & 0xffffffu) * (b & 0xffffffu);
}

template <class T> inline T __ldg(const T *p) { return *p; }
