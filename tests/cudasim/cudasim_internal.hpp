/* cudasim's internals, shared by its runtime (runtime.cpp), its kernel launcher
 * (launch.cpp, cudasim_device.hpp) and its libraries (cublas.cpp, cusolver.cpp, nccl.cpp).
 *
 * How it works, and why each choice catches bugs that a GPU would show:
 * - Device memory is one arena, reserved with mmap and kept PROT_NONE while host code runs:
 *   host code that dereferences a device pointer faults at once, as it would on a GPU
 *   (where it reads garbage or crashes). The arena opens (read/write) only while device
 *   work runs, and then only the allocations' pages: each allocation ends at a page
 *   boundary with a guard page after it, so device work that runs past a buffer's end
 *   faults too. New allocations are filled with 0xff bytes (NaN as float and double), so
 *   a kernel that reads memory nobody wrote gives NaN.
 * - Work is asynchronous as on a GPU: kernels, cuBLAS/cuSOLVER calls, memsets and
 *   device-to-device copies are queued on their stream and run, in order, only when
 *   something waits for that stream (cudaStreamSynchronize, a copy to or from the host, a
 *   cudaFree, an event). Host code that reads a result without waiting, or one stream
 *   that uses another's output without an event or a synchronization, sees stale memory.
 * - Every pointer that device work is given is checked to lie inside one live allocation,
 *   for the whole extent the call will touch: out-of-bounds leading dimensions, host
 *   pointers handed to kernels and use after cudaFree are reported by name.
 * What it cannot tell: anything about speed, races between threads of one kernel beyond
 *   barrier and warp-shuffle misuse, TF32 or fused-multiply-add rounding, and the real
 *   libraries' numerical choices (cuSOLVER's sign conventions, say). Passing under cudasim
 *   is not running on a GPU. */
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>

namespace cudasim {

/* Prints "cudasim: <message>" and aborts: for what would be undefined behaviour, an
 * illegal address or a hang on a GPU. */
[[noreturn]] void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Queues work on a stream (NULL: the legacy default stream); `what` names it in reports.
 * The work runs later, in stream order, with device memory open. */
void enqueue(cudaStream_t stream, const char *what, std::function<void()> work);

/* Runs everything queued on one stream / on every stream. */
void flush(cudaStream_t stream);
void flush_all();

/* Waits for `stream` (flush), then runs `work` at once with device memory open: for what
 * the real API does synchronously with respect to its stream (NCCL collectives here). */
void run_now(cudaStream_t stream, const char *what, std::function<void()> work);

/* The live device allocation that contains p: its start and size. False if p is not
 * inside one (a host pointer, a freed block, NULL). */
bool find_allocation(const void *p, const void **base, std::size_t *size);

/* Fatal unless [p, p + bytes) lies inside one live device allocation; `what` names the
 * call and the argument ("cublasSgemm: C"). bytes == 0 accepts any p, NULL included. */
void require_device_range(const void *p, std::size_t bytes, const char *what);

/* The error cudaGetLastError returns next (and clears); launch-configuration errors and
 * failed API calls set it, as in the CUDA runtime. */
void set_last_error(cudaError_t err);

} // namespace cudasim
