/* cudasim's kernel launcher and fiber scheduler (the device side of cudasim_device.hpp).
 *
 * A grid runs on the OS thread that flushes its stream: blocks one after another (x, then
 * y, then z), the threads of a block as cooperative fibers, each on a stack of its own. A
 * fiber runs its thread until the thread exits or reaches a barrier (__syncthreads) or a
 * warp-synchronous operation (__shfl_*_sync, __ballot_sync, __syncwarp), which completes
 * when the last participant arrives: that one goes on at once, the others become ready.
 *
 * Why it is fast enough to run whole forward passes:
 * - A fiber is a worker that runs threads one after another: when its thread exits it
 *   takes the next thread not yet started (the next block's first when the block is done)
 *   on the same stack, without a switch. An element-wise kernel, which never waits, runs
 *   its whole grid as plain calls on one stack. A new fiber (stack) starts only when a
 *   thread waits while others have not started yet.
 * - A waiting thread switches directly to the next ready fiber (or a new one), never
 *   through a scheduler loop; the switch is a few instructions of assembly on x86-64
 *   (ucontext elsewhere, which costs a sigprocmask system call per switch).
 * - Stacks are kept for the life of the OS thread and reused by every block and launch.
 *
 * What would hang or be undefined on a GPU is fatal here, naming kernel, block and thread:
 * a barrier or warp operation that can never complete (deadlock), a warp operation whose
 * mask names a lane that has exited or does not exist, lanes of one operation with
 * different masks or operations. */
#include <cuda_runtime.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "cudasim_device.hpp"
#include "cudasim_internal.hpp"

/* -DCUDASIM_FIBER_UCONTEXT forces the portable switch (to test it, or for tools that
 * follow ucontext switches only). */
#if defined(__x86_64__) && !defined(CUDASIM_FIBER_UCONTEXT)
#define CUDASIM_FIBER_ASM 1
/* Defined by the assembly below: saves the running context's stack pointer to *save_sp and
 * resumes the one saved at load_sp. */
extern "C" void cudasim_fiber_switch(void **save_sp, void *load_sp);
#else
#include <ucontext.h>
#endif

namespace cudasim {
namespace detail {

CUDASIM_TLS uint3 tl_thread_idx;
CUDASIM_TLS uint3 tl_block_idx;
CUDASIM_TLS dim3 tl_block_dim;
CUDASIM_TLS dim3 tl_grid_dim;

namespace {

/* ---- contexts ---- */

#if defined(CUDASIM_FIBER_ASM)
/* A suspended context is its stack pointer: cudasim_fiber_switch pushes the callee-saved
 * registers and the MXCSR and x87 control words (the SysV ABI has them preserved across
 * calls) on the old stack, stores rsp, loads the new one and pops the same in reverse. */
struct Context {
  void *sp;
};
__asm__(R"(
  .pushsection .text
  .p2align 4
  .globl cudasim_fiber_switch
  .hidden cudasim_fiber_switch
  .type cudasim_fiber_switch, @function
cudasim_fiber_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size cudasim_fiber_switch, .-cudasim_fiber_switch
  .popsection
)");

/* A fresh context: the frame cudasim_fiber_switch pops, returning into entry with the
 * stack aligned as after a call (entry must never return). */
void context_init(Context *c, char *stack, size_t size, void (*entry)()) {
  uint64_t *top = reinterpret_cast<uint64_t *>(reinterpret_cast<uintptr_t>(stack + size) &
                                               ~static_cast<uintptr_t>(15));
  uint32_t control[2] = {0, 0};
  __asm__ volatile("stmxcsr %0" : "=m"(control[0]));
  __asm__ volatile("fnstcw %0" : "=m"(control[1]));
  *--top = 0;                                  /* entry's return address: none */
  *--top = reinterpret_cast<uintptr_t>(entry); /* popped by ret */
  for (int i = 0; i < 6; i++)
    *--top = 0; /* rbp rbx r12 r13 r14 r15 */
  *--top = static_cast<uint64_t>(control[0]) | static_cast<uint64_t>(control[1]) << 32;
  c->sp = top;
}

inline void context_switch(Context *from, Context *to) { cudasim_fiber_switch(&from->sp, to->sp); }
#else
struct Context {
  ucontext_t uc;
};
void context_init(Context *c, char *stack, size_t size, void (*entry)()) {
  if (getcontext(&c->uc) != 0) fatal("getcontext: %s", strerror(errno));
  c->uc.uc_stack.ss_sp = stack;
  c->uc.uc_stack.ss_size = size;
  c->uc.uc_link = nullptr;
  makecontext(&c->uc, entry, 0);
}
inline void context_switch(Context *from, Context *to) { swapcontext(&from->uc, &to->uc); }
#endif

/* ---- fibers ---- */

/* Kernels here keep small locals (the largest: 64 doubles); 64 KiB leaves room for libm and
 * for cudasim::fatal's formatting. Below each stack an inaccessible page turns an overflow
 * into a segmentation fault instead of silent corruption. */
constexpr size_t kStackSize = 64 * 1024;

struct Fiber {
  Context ctx;
  char *mapping; /* guard page, then the stack */
  int tid;       /* the thread of the block it runs, -1 while idle */
};

enum ThreadState : uint8_t { RUNNING, READY, AT_BARRIER, AT_WARP_OP, EXITED };

struct ThreadRec {
  Fiber *fiber;
  ThreadState state;
  WarpOp op;
  unsigned mask;
  int param, width;
  uint64_t bits, result;
};

struct WarpRec {
  unsigned exists;  /* lanes that are threads of the block */
  unsigned exited;  /* lanes whose thread has returned */
  unsigned waiting; /* lanes waiting at a warp operation */
};

constexpr int kMaxThreads = 1024;
constexpr int kMaxWarps = kMaxThreads / 32;

const char *const kWarpOpNames[] = {"__shfl_sync",     "__shfl_up_sync", "__shfl_down_sync",
                                    "__shfl_xor_sync", "__ballot_sync",  "__syncwarp"};

/* The state of one OS thread's running grid. */
struct Scheduler {
  bool running = false;
  const char *kernel = nullptr;
  dim3 grid, block;
  void (*body)(const void *) = nullptr;
  const void *ctx = nullptr;
  unsigned nthreads = 0, nwarps = 0;
  uint64_t nblocks = 0, block_lin = 0;

  /* The current block. */
  unsigned next_tid = 0; /* threads [next_tid, nthreads) have not started */
  unsigned live = 0;     /* threads not exited, started or not */
  unsigned bar_arrived = 0, bar_pred = 0;
  int bar_result = 0;
  BarrierKind bar_kind = BAR_COUNT;
  unsigned nbar_waiters = 0;
  Fiber *bar_waiters[kMaxThreads];

  ThreadRec threads[kMaxThreads];
  WarpRec warps[kMaxWarps];
  uint3 idx[kMaxThreads]; /* threadIdx of each linear thread id */

  /* Fibers whose thread may go on, in the order they became so. */
  Fiber *ready[kMaxThreads];
  unsigned ready_head = 0, ready_count = 0;

  std::vector<Fiber *> idle; /* stacks free for new workers */
  std::vector<Fiber *> all;
  Context main_ctx;         /* run_grid's own stack */
  Fiber *current = nullptr; /* the running fiber; null on main */

  ~Scheduler() {
    for (Fiber *f : all) {
      munmap(f->mapping, kStackSize + page_size());
      delete f;
    }
  }

  static size_t page_size() {
    static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return size;
  }

  /* ---- reports ---- */

  [[noreturn]] __attribute__((format(printf, 3, 4))) void die(int tid, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const uint3 &b = tl_block_idx;
    if (tid >= 0)
      fatal("kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s", kernel, b.x, b.y, b.z, idx[tid].x,
            idx[tid].y, idx[tid].z, msg);
    fatal("kernel %s, block (%u,%u,%u): %s", kernel, b.x, b.y, b.z, msg);
  }

  /* Every live thread waits and none can go on: says where they wait. */
  [[noreturn]] void deadlock() {
    unsigned at_barrier = 0, at_warp = 0, exited = 0;
    int example = -1;
    for (unsigned t = 0; t < nthreads; t++) {
      const ThreadState s = threads[t].state;
      at_barrier += s == AT_BARRIER;
      exited += s == EXITED;
      if (s == AT_WARP_OP && at_warp++ == 0) example = static_cast<int>(t);
    }
    if (example < 0)
      die(-1, "deadlock: %u threads wait at __syncthreads, %u have exited (a scheduler error)",
          at_barrier, exited);
    const ThreadRec &r = threads[example];
    const unsigned w = static_cast<unsigned>(example) / 32;
    const unsigned missing = r.mask & ~warps[w].waiting;
    die(example,
        "deadlock: %u threads wait at __syncthreads, %u at warp operations and %u have "
        "exited; this one waits at %s with mask 0x%08x for lanes 0x%08x of warp %u, which wait "
        "elsewhere (a barrier or warp operation that not every thread reaches)",
        at_barrier, at_warp, exited, kWarpOpNames[r.op], r.mask, missing, w);
  }

  /* ---- fibers ---- */

  Fiber *new_fiber() {
    if (!idle.empty()) {
      Fiber *f = idle.back();
      idle.pop_back();
      return f;
    }
    const size_t guard = page_size();
    void *m = mmap(nullptr, kStackSize + guard, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (m == MAP_FAILED)
      fatal("kernel %s: no memory for a fiber stack: %s", kernel, strerror(errno));
    if (mprotect(m, guard, PROT_NONE) != 0)
      fatal("kernel %s: mprotect of a stack guard page: %s", kernel, strerror(errno));
    Fiber *f = new Fiber;
    f->mapping = static_cast<char *>(m);
    f->tid = -1;
    all.push_back(f);
    return f;
  }

  /* A fiber that will start threads not yet started, beginning at worker_main. */
  Fiber *new_worker() {
    Fiber *f = new_fiber();
    context_init(&f->ctx, f->mapping + page_size(), kStackSize, &worker_main);
    return f;
  }

  void make_ready(Fiber *f) {
    threads[f->tid].state = READY;
    ready[(ready_head + ready_count++) % kMaxThreads] = f;
  }

  /* Leaves the running fiber `self` (waiting, or idle with no thread) for the next that can
   * go on: a ready one, else a new worker while threads have not started, else main (which
   * finds the block finished or deadlocked). Returns when self is resumed. */
  void switch_away(Fiber *self) {
    Fiber *next;
    if (ready_count > 0) {
      next = ready[ready_head];
      ready_head = (ready_head + 1) % kMaxThreads;
      ready_count--;
      threads[next->tid].state = RUNNING;
      tl_thread_idx = idx[next->tid];
    } else if (next_tid < nthreads) {
      next = new_worker();
    } else {
      current = nullptr;
      context_switch(&self->ctx, &main_ctx);
      return;
    }
    current = next;
    context_switch(&self->ctx, &next->ctx);
  }

  /* ---- blocks and threads ---- */

  void begin_block(uint64_t lin) {
    block_lin = lin;
    tl_block_idx =
        uint3{static_cast<unsigned>(lin % grid.x), static_cast<unsigned>(lin / grid.x % grid.y),
              static_cast<unsigned>(lin / grid.x / grid.y)};
    next_tid = 0;
    live = nthreads;
    bar_arrived = bar_pred = 0;
    nbar_waiters = 0;
    for (unsigned w = 0; w < nwarps; w++)
      warps[w].exited = warps[w].waiting = 0;
  }

  /* The next thread for a worker to run: of this block, or the next block's first once
   * every thread of this one has exited. -1: none now. */
  int take_thread() {
    if (next_tid < nthreads) return static_cast<int>(next_tid++);
    if (live == 0 && block_lin + 1 < nblocks) {
      begin_block(block_lin + 1);
      return static_cast<int>(next_tid++);
    }
    return -1;
  }

  void release_barrier() {
    switch (bar_kind) {
    case BAR_COUNT: bar_result = static_cast<int>(bar_pred); break;
    case BAR_AND: bar_result = bar_pred == bar_arrived; break;
    case BAR_OR: bar_result = bar_pred != 0; break;
    }
    for (unsigned i = 0; i < nbar_waiters; i++)
      make_ready(bar_waiters[i]);
    nbar_waiters = 0;
    bar_arrived = bar_pred = 0;
  }

  void thread_exit(int tid) {
    threads[tid].state = EXITED;
    live--;
    WarpRec &w = warps[tid / 32];
    const unsigned bit = 1u << (tid % 32);
    w.exited |= bit;
    if (w.waiting != 0)
      for (unsigned lanes = w.waiting; lanes != 0; lanes &= lanes - 1) {
        const int other = tid / 32 * 32 + __builtin_ctz(lanes);
        if (threads[other].mask & bit)
          die(tid,
              "exited while lane %d of its warp waits for it at %s (mask 0x%08x): every lane "
              "named in the mask must reach the operation",
              other % 32, kWarpOpNames[threads[other].op], threads[other].mask);
      }
    /* Exited threads no longer count: the others' barrier may now be complete. */
    if (bar_arrived != 0 && bar_arrived == live) release_barrier();
  }

  static void worker_main();

  /* ---- warp operations ---- */

  /* The lane whose value `lane` reads, as PTX's shfl defines it for a segment of `width`
   * lanes; -1: its own value. */
  static int source_lane(const ThreadRec &r, int lane) {
    const int delta = r.param & 31, first = lane & ~(r.width - 1), last = first + r.width - 1;
    int src = lane;
    switch (r.op) {
    case WARP_SHFL_IDX: src = first | (r.param & (r.width - 1)); break;
    case WARP_SHFL_UP: src = lane - delta >= first ? lane - delta : lane; break;
    case WARP_SHFL_DOWN: src = lane + delta <= last ? lane + delta : lane; break;
    case WARP_SHFL_XOR: src = (lane ^ delta) <= last ? lane ^ delta : lane; break;
    default: break;
    }
    return src;
  }

  /* Every lane of `mask` in warp w has arrived: computes each one's result. */
  void complete_warp_op(unsigned w, unsigned mask, int tid) {
    ThreadRec *lanes = threads + w * 32;
    const WarpOp op = threads[tid].op;
    unsigned ballot = 0;
    for (unsigned m = mask; m != 0; m &= m - 1) {
      const int l = __builtin_ctz(m);
      if (lanes[l].mask != mask || lanes[l].op != op)
        die(tid,
            "lanes of warp %u meet with different warp operations or masks: this lane at %s "
            "with mask 0x%08x, lane %d at %s with mask 0x%08x",
            w, kWarpOpNames[op], mask, l, kWarpOpNames[lanes[l].op], lanes[l].mask);
      ballot |= static_cast<unsigned>(lanes[l].bits != 0) << l;
    }
    for (unsigned m = mask; m != 0; m &= m - 1) {
      const int l = __builtin_ctz(m);
      ThreadRec &r = lanes[l];
      if (op == WARP_BALLOT) {
        r.result = ballot;
      } else if (op == WARP_SYNC) {
        r.result = 0;
      } else {
        /* A lane outside the mask has no defined value to give (CUDA: undefined); all ones
         * is NaN as float and double, as the arena's poison. */
        const int src = source_lane(r, l);
        r.result = (mask >> src & 1u) ? lanes[src].bits : ~static_cast<uint64_t>(0);
      }
    }
    warps[w].waiting &= ~mask;
    for (unsigned m = mask; m != 0; m &= m - 1) {
      const int l = __builtin_ctz(m);
      if (static_cast<int>(w * 32) + l != tid) make_ready(lanes[l].fiber);
    }
  }

  uint64_t warp_op(unsigned mask, uint64_t bits, WarpOp op, int param, int width) {
    Fiber *self = current;
    const int tid = self->tid;
    const unsigned w = static_cast<unsigned>(tid) / 32, lane = static_cast<unsigned>(tid) % 32;
    WarpRec &warp = warps[w];
    const char *name = kWarpOpNames[op];
    if (!(mask >> lane & 1u))
      die(tid, "%s with mask 0x%08x, which leaves out the calling lane %u", name, mask, lane);
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
      die(tid, "%s with width %d: not a power of two in 1..32", name, width);
    if (mask & ~warp.exists)
      die(tid,
          "%s with mask 0x%08x names lanes 0x%08x that do not exist (the block has %u threads, "
          "not a multiple of 32)",
          name, mask, mask & ~warp.exists, nthreads);
    if (mask & warp.exited)
      die(tid, "%s with mask 0x%08x names lanes 0x%08x that have exited", name, mask,
          mask & warp.exited);
    ThreadRec &r = threads[tid];
    r.fiber = self;
    r.op = op;
    r.mask = mask;
    r.param = param;
    r.width = width;
    r.bits = bits;
    warp.waiting |= 1u << lane;
    if ((warp.waiting & mask) == mask) {
      complete_warp_op(w, mask, tid);
      return r.result;
    }
    r.state = AT_WARP_OP;
    switch_away(self);
    return threads[tid].result;
  }

  int barrier(int pred, BarrierKind kind) {
    Fiber *self = current;
    const int tid = self->tid;
    if (bar_arrived == 0) bar_kind = kind;
    bar_arrived++;
    bar_pred += pred != 0;
    if (bar_arrived == live) {
      release_barrier();
      return bar_result;
    }
    threads[tid].state = AT_BARRIER;
    bar_waiters[nbar_waiters++] = self;
    switch_away(self);
    /* Stays valid: the next barrier completes only after this thread has arrived there. */
    return bar_result;
  }

  /* ---- a grid ---- */

  void run(const char *name, dim3 g, dim3 b, void (*thread_body)(const void *),
           const void *thread_ctx) {
    if (running)
      fatal("kernel %s: launched from inside kernel %s (device-side launches are not "
            "supported)",
            name, kernel);
    const uint64_t threads = static_cast<uint64_t>(b.x) * b.y * b.z;
    if (threads == 0 || threads > kMaxThreads)
      fatal("kernel %s: %" PRIu64 " threads per block reached the scheduler", name, threads);
    running = true;
    kernel = name;
    grid = g;
    block = b;
    body = thread_body;
    ctx = thread_ctx;
    nthreads = b.x * b.y * b.z;
    nwarps = (nthreads + 31) / 32;
    nblocks = static_cast<uint64_t>(g.x) * g.y * g.z;
    tl_grid_dim = g;
    tl_block_dim = b;
    for (unsigned t = 0; t < nthreads; t++)
      idx[t] = uint3{t % b.x, t / b.x % b.y, t / b.x / b.y};
    for (unsigned w = 0; w < nwarps; w++) {
      const unsigned lanes = nthreads - w * 32;
      warps[w].exists = lanes >= 32 ? 0xffffffffu : (1u << lanes) - 1;
    }
    ready_head = ready_count = 0;
    begin_block(0);
    for (;;) {
      /* Workers run every block they can; control comes back here when nothing can go on:
       * the grid is done, or the block is deadlocked. */
      Fiber *f = new_worker();
      current = f;
      context_switch(&main_ctx, &f->ctx);
      if (live > 0) deadlock();
      if (block_lin + 1 >= nblocks) break;
      begin_block(block_lin + 1);
    }
    running = false;
  }
};

CUDASIM_TLS Scheduler *tl_sched;

/* Each OS thread's scheduler goes, stacks and all, when the thread exits (the main
 * thread's with the process). */
pthread_key_t sched_key;
pthread_once_t sched_key_once = PTHREAD_ONCE_INIT;

Scheduler &scheduler() {
  if (!tl_sched) {
    pthread_once(&sched_key_once, [] {
      pthread_key_create(&sched_key, [](void *p) { delete static_cast<Scheduler *>(p); });
    });
    tl_sched = new Scheduler;
    pthread_setspecific(sched_key, tl_sched);
  }
  return *tl_sched;
}

/* The running thread's scheduler, or fatal for device code called outside a kernel. */
Scheduler &in_kernel(const char *what) {
  Scheduler *s = tl_sched;
  if (!s || !s->current) fatal("%s called outside a running kernel", what);
  return *s;
}

void Scheduler::worker_main() {
  Scheduler &s = *tl_sched;
  Fiber *self = s.current;
  for (int tid; (tid = s.take_thread()) >= 0;) {
    self->tid = tid;
    s.threads[tid].state = RUNNING;
    s.threads[tid].fiber = self;
    tl_thread_idx = s.idx[tid];
    s.body(s.ctx);
    s.thread_exit(tid);
  }
  /* No thread to start: this stack is free again. switch_away picks a ready fiber or main,
   * never a new worker (none is needed while take_thread finds nothing), so this fiber,
   * now idle, is not restarted under its own feet. */
  self->tid = -1;
  s.idle.push_back(self);
  s.switch_away(self);
  fatal("kernel %s: an idle fiber was resumed (a scheduler error)", s.kernel);
}

} // namespace

/* ---- entry points of cudasim_device.hpp ---- */

int block_barrier(int pred, BarrierKind kind) {
  return in_kernel("__syncthreads").barrier(pred, kind);
}

uint64_t warp_sync_op(unsigned mask, uint64_t bits, WarpOp op, int param, int width) {
  return in_kernel(kWarpOpNames[op]).warp_op(mask, bits, op, param, width);
}

void device_trap(const char *what) {
  Scheduler &s = in_kernel(what);
  s.die(s.current->tid, "%s", what);
}

bool launch_config_ok(const char *kernel, dim3 grid, dim3 block, size_t shmem) {
  const uint64_t threads = static_cast<uint64_t>(block.x) * block.y * block.z;
  const bool ok = grid.x >= 1 && grid.y >= 1 && grid.z >= 1 && block.x >= 1 && block.y >= 1 &&
                  block.z >= 1 && grid.x <= 0x7fffffffu && grid.y <= 65535 && grid.z <= 65535 &&
                  block.x <= 1024 && block.y <= 1024 && block.z <= 64 && threads <= 1024 &&
                  shmem <= 48 * 1024;
  if (!ok) set_last_error(cudaErrorInvalidConfiguration);
  (void)kernel;
  return ok;
}

void check_pointer_arg(const char *kernel, int position, int count, const void *p) {
  const void *base;
  size_t size;
  if (p && !find_allocation(p, &base, &size))
    fatal("kernel %s: argument %d of %d is %p, which is not inside a live device allocation "
          "(a host pointer, or freed memory)",
          kernel, position, count, p);
}

void run_grid(const char *kernel, dim3 grid, dim3 block, void (*thread_body)(const void *),
              const void *ctx) {
  scheduler().run(kernel, grid, block, thread_body, ctx);
}

} // namespace detail
} // namespace cudasim
