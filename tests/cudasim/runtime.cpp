/* cudasim's CUDA runtime: devices, device memory, streams, events and errors, by the
 * semantics of the CUDA runtime's documentation (cudasim_internal.hpp says why each choice
 * is made). Configuration, from the environment:
 *   CUDASIM_DEVICES     devices per process (default 1); CUDA_VISIBLE_DEVICES narrows them
 *   CUDASIM_MEMORY_MIB  memory of each device (default 8192)
 *   CUDASIM_NO_POOLS=1  devices without stream-ordered memory pools (cudaMalloc paths)
 *   CUDASIM_UUID_SEED   derive GPU UUIDs from this instead of the process id: processes with
 *                       the same seed see the same GPUs, as ranks sharing a GPU do
 *   CUDASIM_PROTECT=0   leave device memory readable from the host (for debugging) */
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "cudasim_internal.hpp"

struct cudasim_stream {
  struct item {
    std::function<void()> work;
    const char *what;
  };
  std::deque<item> queue;
  std::uint64_t queued = 0, done = 0; /* items ever queued / ever run: event positions */
  unsigned flags = 0;
  int device = 0;
};

struct cudasim_event {
  cudaStream_t stream = nullptr;
  std::uint64_t position = 0; /* the event completes when stream has run this many items */
  bool recorded = false;
  double seconds = 0; /* host time when its marker ran */
};

struct cudasim_pool {
  int device = 0;
  bool destroyed = false;
};

namespace cudasim {
namespace {

constexpr std::size_t kAlign = 256; /* cudaMalloc's documented alignment */
constexpr int kMaxDevices = 16;

/* Each allocation ends where a page ends, with an inaccessible guard page after it: a kernel
 * that writes or reads past the end of its buffer faults there (past the 256-byte
 * alignment slack), instead of silently using the next allocation, as on a GPU it may. */
struct allocation {
  std::size_t size;  /* what the caller asked for */
  std::size_t span;  /* size rounded to the alignment: what the device's memory counts */
  std::size_t block; /* offset of its pages in the arena; the data ends at block + pages */
  std::size_t pages; /* bytes of its pages, the guard page not included */
  int device;
};

struct state {
  std::recursive_mutex mutex;
  bool configured = false;
  int devices = 1;
  std::vector<int> physical; /* visible device i is physical device physical[i] */
  std::size_t memory_per_device = std::size_t(8192) << 20;
  bool pools = true, protect = true;
  std::string uuid_seed;
  /* The arena: [base, base + reserved), PROT_NONE beyond what is open. */
  unsigned char *base = nullptr;
  std::size_t reserved = 0, high_water = 0;
  int open_depth = 0;
  std::map<std::size_t, std::size_t> free_spans; /* offset -> length, coalesced */
  std::map<std::size_t, allocation> live;        /* offset -> allocation */
  std::size_t used[kMaxDevices] = {};
  cudaError_t last_error = cudaSuccess;
  cudasim_stream legacy; /* the NULL stream */
  std::set<cudaStream_t> streams;
};

state &S() {
  static state s;
  return s;
}

thread_local int current_device = 0;

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

cudaError_t fail(cudaError_t err) {
  if (err != cudaSuccess) S().last_error = err;
  return err;
}

struct sigaction previous_segv;

/* A fault inside the arena is host code reading device memory: say so, then die as the
 * fault would have. Only async-signal-safe calls. */
void on_segv(int sig, siginfo_t *info, void *ctx) {
  state &s = S();
  auto *addr = static_cast<unsigned char *>(info->si_addr);
  if (s.base && addr >= s.base && addr < s.base + s.reserved) {
    static const char host[] =
        "cudasim: host code dereferenced a device pointer (a GPU build would read garbage or "
        "crash here; copy to the host first)\n";
    static const char device[] =
        "cudasim: device work (a kernel or a library call) accessed memory outside every live "
        "allocation: past the end of a buffer, or a freed one\n";
    ssize_t ignored =
        s.open_depth > 0 ? write(2, device, sizeof device - 1) : write(2, host, sizeof host - 1);
    (void)ignored;
    signal(SIGABRT, SIG_DFL);
    abort();
  }
  sigaction(SIGSEGV, &previous_segv, nullptr);
  raise(sig);
  (void)ctx;
}

int env_int(const char *name, int fallback) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

void configure() {
  state &s = S();
  if (s.configured) return;
  s.configured = true;
  int physical = env_int("CUDASIM_DEVICES", 1);
  if (physical < 0) physical = 0;
  if (physical > kMaxDevices) physical = kMaxDevices;
  const char *visible = getenv("CUDA_VISIBLE_DEVICES");
  if (visible) {
    /* As the driver does: the listed ordinals, in order, up to the first invalid one. */
    const char *p = visible;
    while (*p) {
      char *end;
      long id = strtol(p, &end, 10);
      if (end == p || id < 0 || id >= physical) break;
      s.physical.push_back(int(id));
      p = *end == ',' ? end + 1 : end;
      if (*end != ',') break;
    }
  } else {
    for (int i = 0; i < physical; i++)
      s.physical.push_back(i);
  }
  s.devices = int(s.physical.size());
  long mib = env_int("CUDASIM_MEMORY_MIB", 8192);
  if (mib < 16) mib = 16;
  s.memory_per_device = std::size_t(mib) << 20;
  s.pools = env_int("CUDASIM_NO_POOLS", 0) == 0;
  s.protect = env_int("CUDASIM_PROTECT", 1) != 0;
  if (const char *seed = getenv("CUDASIM_UUID_SEED")) s.uuid_seed = seed;
  /* Address space for every device's memory plus room for page rounding, guard pages and
   * fragmentation; nothing is committed until written. */
  s.reserved = s.memory_per_device * std::size_t(s.devices > 0 ? s.devices : 1) * 4 +
               (std::size_t(64) << 30);
  void *base = mmap(nullptr, s.reserved, s.protect ? PROT_NONE : PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) fatal("cannot reserve %zu bytes of address space", s.reserved);
  s.base = static_cast<unsigned char *>(base);
  s.free_spans[0] = s.reserved;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &previous_segv);
}

void protect_range(std::size_t from, std::size_t to, int prot) {
  state &s = S();
  if (to <= from) return;
  if (mprotect(s.base + from, to - from, prot) != 0) fatal("mprotect failed");
}

/* Device memory is readable and writable only while device work runs. */
struct open_device_memory {
  open_device_memory() {
    state &s = S();
    if (s.open_depth++ == 0 && s.protect)
      for (const auto &live : s.live)
        protect_range(live.second.block, live.second.block + live.second.pages,
                      PROT_READ | PROT_WRITE);
  }
  ~open_device_memory() {
    state &s = S();
    if (--s.open_depth == 0 && s.protect) protect_range(0, s.high_water, PROT_NONE);
  }
  open_device_memory(const open_device_memory &) = delete;
  open_device_memory &operator=(const open_device_memory &) = delete;
};

cudasim_stream &stream_of(cudaStream_t stream) { return stream ? *stream : S().legacy; }

bool valid_stream(cudaStream_t stream) { return !stream || S().streams.count(stream) != 0; }

/* Runs items of one stream until it has run `until` of them. */
void run_stream_until(cudasim_stream &st, std::uint64_t until) {
  if (st.done >= until) return;
  open_device_memory open;
  while (st.done < until && !st.queue.empty()) {
    cudasim_stream::item it = std::move(st.queue.front());
    st.queue.pop_front();
    it.work();
    st.done++;
  }
}

void run_stream(cudasim_stream &st) { run_stream_until(st, st.queued); }

/* The legacy default stream waits for every blocking stream and they wait for it. */
void order_with_legacy(cudaStream_t stream) {
  state &s = S();
  if (!stream) {
    for (cudaStream_t other : s.streams)
      if (!(other->flags & cudaStreamNonBlocking)) run_stream(*other);
  } else if (!(stream->flags & cudaStreamNonBlocking)) {
    run_stream(s.legacy);
  }
}

bool valid_device(int device) {
  configure();
  return device >= 0 && device < S().devices;
}

std::size_t round_up(std::size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

/* Fills allocation a (its data at offset) with 0xff bytes, NaN as float and double. When
 * device memory is closed only a's own pages are opened for it: opening every allocation
 * would make each cudaMalloc cost a system call per live allocation. */
void poison(const allocation &a, std::size_t offset) {
  state &s = S();
  const bool closed = s.protect && s.open_depth == 0;
  if (closed) protect_range(a.block, a.block + a.pages, PROT_READ | PROT_WRITE);
  memset(s.base + offset, 0xff, a.span);
  if (closed) protect_range(a.block, a.block + a.pages, PROT_NONE);
}

cudaError_t allocate(void **out, std::size_t size, int device) {
  state &s = S();
  if (!out) return fail(cudaErrorInvalidValue);
  *out = nullptr;
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  if (size > s.memory_per_device) return fail(cudaErrorMemoryAllocation);
  const std::size_t span = round_up(size ? size : 1);
  if (s.used[device] + span > s.memory_per_device) return fail(cudaErrorMemoryAllocation);
  const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
  const std::size_t pages = (span + page - 1) / page * page, need = pages + page;
  for (auto it = s.free_spans.begin(); it != s.free_spans.end(); ++it) {
    if (it->second < need) continue;
    const std::size_t block = it->first, rest = it->second - need;
    s.free_spans.erase(it);
    if (rest) s.free_spans[block + need] = rest;
    const std::size_t offset = block + pages - span;
    s.live[offset] = allocation{size, span, block, pages, device};
    s.used[device] += span;
    if (block + need > s.high_water) s.high_water = block + need;
    if (s.open_depth > 0 && s.protect) protect_range(block, block + pages, PROT_READ | PROT_WRITE);
    /* Fresh device memory holds garbage: make it NaN so that reading it shows. */
    poison(s.live[offset], offset);
    *out = s.base + offset;
    return cudaSuccess;
  }
  return fail(cudaErrorMemoryAllocation);
}

/* Gives an allocation back; its bytes are poisoned so that use after free shows. */
void release(std::size_t offset) {
  state &s = S();
  auto it = s.live.find(offset);
  const allocation a = it->second;
  poison(a, offset);
  s.live.erase(it);
  s.used[a.device] -= a.span;
  std::size_t start = a.block, length = a.pages + std::size_t(sysconf(_SC_PAGESIZE));
  auto next = s.free_spans.lower_bound(offset);
  if (next != s.free_spans.end() && next->first == start + length) {
    length += next->second;
    next = s.free_spans.erase(next);
  }
  if (next != s.free_spans.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      length += prev->second;
      s.free_spans.erase(prev);
    }
  }
  s.free_spans[start] = length;
}

/* The offset of a live allocation that starts exactly at p, or false. */
bool allocation_start(const void *p, std::size_t *offset) {
  const void *base;
  std::size_t size;
  if (!find_allocation(p, &base, &size) || base != p) return false;
  *offset = std::size_t(static_cast<const unsigned char *>(p) - S().base);
  return true;
}

bool is_device(const void *p) {
  const void *base;
  std::size_t size;
  return find_allocation(p, &base, &size);
}

} // namespace

void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("cudasim: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  fflush(stderr);
  abort();
}

void enqueue(cudaStream_t stream, const char *what, std::function<void()> work) {
  std::lock_guard<std::recursive_mutex> lock(S().mutex);
  configure();
  if (!valid_stream(stream)) fatal("%s: queued on a stream that does not exist", what);
  order_with_legacy(stream);
  cudasim_stream &st = stream_of(stream);
  st.queue.push_back(cudasim_stream::item{std::move(work), what});
  st.queued++;
}

void flush(cudaStream_t stream) {
  std::lock_guard<std::recursive_mutex> lock(S().mutex);
  configure();
  order_with_legacy(stream);
  run_stream(stream_of(stream));
}

void flush_all() {
  std::lock_guard<std::recursive_mutex> lock(S().mutex);
  configure();
  run_stream(S().legacy);
  for (cudaStream_t st : S().streams)
    run_stream(*st);
}

void run_now(cudaStream_t stream, const char *what, std::function<void()> work) {
  std::lock_guard<std::recursive_mutex> lock(S().mutex);
  flush(stream);
  open_device_memory open;
  work();
}

bool find_allocation(const void *p, const void **base, std::size_t *size) {
  std::lock_guard<std::recursive_mutex> lock(S().mutex);
  state &s = S();
  auto *c = static_cast<const unsigned char *>(p);
  if (!p || !s.base || c < s.base || c >= s.base + s.reserved) return false;
  std::size_t off = std::size_t(c - s.base);
  auto it = s.live.upper_bound(off);
  if (it == s.live.begin()) return false;
  --it;
  if (off >= it->first + it->second.size) return false;
  *base = s.base + it->first;
  *size = it->second.size;
  return true;
}

void require_device_range(const void *p, std::size_t bytes, const char *what) {
  if (bytes == 0) return;
  const void *base;
  std::size_t size;
  if (!find_allocation(p, &base, &size))
    fatal("%s: %p is not device memory (a host pointer, a freed block or NULL)", what, p);
  std::size_t offset =
      std::size_t(static_cast<const unsigned char *>(p) - static_cast<const unsigned char *>(base));
  if (bytes > size - offset)
    fatal("%s: %zu bytes from offset %zu run past the end of a %zu-byte allocation", what, bytes,
          offset, size);
}

void set_last_error(cudaError_t err) { fail(err); }

} // namespace cudasim

using namespace cudasim;

#define LOCKED std::lock_guard<std::recursive_mutex> lock_(S().mutex)

extern "C" {

cudaError_t cudaGetDeviceCount(int *count) {
  LOCKED;
  configure();
  if (!count) return fail(cudaErrorInvalidValue);
  *count = S().devices;
  return S().devices == 0 ? fail(cudaErrorNoDevice) : cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  LOCKED;
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  current_device = device;
  return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
  if (!device) return fail(cudaErrorInvalidValue);
  *device = current_device;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
  LOCKED;
  if (!prop) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  const state &s = S();
  memset(prop, 0, sizeof *prop);
  snprintf(prop->name, sizeof prop->name, "cudasim (CPU emulation of a CUDA device)");
  /* A UUID of this process's GPU number `physical`: FNV-1a over the seed (or host and pid,
   * so that every process owns its GPUs, as ranks with one GPU each do) and the number. */
  char key[512];
  if (!s.uuid_seed.empty()) {
    snprintf(key, sizeof key, "%s/%d", s.uuid_seed.c_str(), s.physical[device]);
  } else {
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    snprintf(key, sizeof key, "%s/%ld/%d", host, long(getpid()), s.physical[device]);
  }
  std::uint64_t h[2] = {1469598103934665603ull, 1099511628211ull};
  for (const char *c = key; *c; c++) {
    h[0] = (h[0] ^ std::uint8_t(*c)) * 1099511628211ull;
    h[1] = (h[1] ^ std::uint8_t(*c)) * 14695981039346656037ull + 1;
  }
  memcpy(prop->uuid.bytes, h, sizeof h);
  prop->totalGlobalMem = s.memory_per_device;
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 2;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  prop->maxGridSize[0] = 2147483647;
  prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
  prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
  prop->maxThreadsDim[2] = 64;
  prop->sharedMemPerBlock = 48 * 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
  LOCKED;
  if (!value) return fail(cudaErrorInvalidValue);
  if (!valid_device(device)) return fail(cudaErrorInvalidDevice);
  switch (attr) {
  case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
  case cudaDevAttrMultiProcessorCount: *value = 2; return cudaSuccess;
  case cudaDevAttrMemoryPoolsSupported: *value = S().pools ? 1 : 0; return cudaSuccess;
  }
  return fail(cudaErrorInvalidValue);
}

cudaError_t cudaDeviceSynchronize(void) {
  flush_all();
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
  LOCKED;
  configure();
  if (!free_bytes || !total_bytes) return fail(cudaErrorInvalidValue);
  if (!valid_device(current_device)) return fail(cudaErrorInvalidDevice);
  *total_bytes = S().memory_per_device;
  *free_bytes = S().memory_per_device - S().used[current_device];
  return cudaSuccess;
}

cudaError_t cudaGetLastError(void) {
  LOCKED;
  cudaError_t err = S().last_error;
  S().last_error = cudaSuccess;
  return err;
}

cudaError_t cudaPeekAtLastError(void) {
  LOCKED;
  return S().last_error;
}

const char *cudaGetErrorName(cudaError_t error) {
  switch (error) {
  case cudaSuccess: return "cudaSuccess";
  case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
  case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
  case cudaErrorInitializationError: return "cudaErrorInitializationError";
  case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
  case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
  case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
  case cudaErrorNoDevice: return "cudaErrorNoDevice";
  case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
  case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
  case cudaErrorNotReady: return "cudaErrorNotReady";
  case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
  case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  case cudaErrorNotSupported: return "cudaErrorNotSupported";
  case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "unrecognized error code";
}

const char *cudaGetErrorString(cudaError_t error) {
  switch (error) {
  case cudaSuccess: return "no error";
  case cudaErrorInvalidValue: return "invalid argument";
  case cudaErrorMemoryAllocation: return "out of memory";
  case cudaErrorInvalidConfiguration: return "invalid configuration argument";
  case cudaErrorNoDevice: return "no CUDA-capable device is detected";
  case cudaErrorInvalidDevice: return "invalid device ordinal";
  case cudaErrorInvalidResourceHandle: return "invalid resource handle";
  default: return cudaGetErrorName(error);
  }
}

cudaError_t cudaMalloc(void **ptr, size_t size) {
  LOCKED;
  return allocate(ptr, size, current_device);
}

/* cudaFree synchronizes the device before it frees. */
cudaError_t cudaFree(void *ptr) {
  LOCKED;
  if (!ptr) return cudaSuccess;
  flush_all();
  std::size_t offset;
  if (!allocation_start(ptr, &offset)) return fail(cudaErrorInvalidValue);
  release(offset);
  return cudaSuccess;
}

cudaError_t cudaMallocAsync(void **ptr, size_t size, cudaStream_t stream) {
  LOCKED;
  if (!S().pools) return fail(cudaErrorNotSupported);
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return allocate(ptr, size, current_device);
}

/* The block goes back in stream order: only once the work queued before it has run. */
cudaError_t cudaFreeAsync(void *ptr, cudaStream_t stream) {
  LOCKED;
  if (!ptr) return cudaSuccess;
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  std::size_t offset;
  if (!allocation_start(ptr, &offset)) return fail(cudaErrorInvalidValue);
  enqueue(stream, "cudaFreeAsync", [offset] { release(offset); });
  return cudaSuccess;
}

cudaError_t cudaMemPoolCreate(cudaMemPool_t *pool, const struct cudaMemPoolProps *props) {
  LOCKED;
  configure();
  if (!pool || !props) return fail(cudaErrorInvalidValue);
  if (!S().pools) return fail(cudaErrorNotSupported);
  if (props->allocType != cudaMemAllocationTypePinned ||
      props->location.type != cudaMemLocationTypeDevice || !valid_device(props->location.id))
    return fail(cudaErrorInvalidValue);
  *pool = new cudasim_pool{props->location.id, false};
  return cudaSuccess;
}

/* Blocks still allocated from a destroyed pool stay valid until freed, as in CUDA; the
 * pool object is kept so that late frees find it. */
cudaError_t cudaMemPoolDestroy(cudaMemPool_t pool) {
  LOCKED;
  if (!pool || pool->destroyed) return fail(cudaErrorInvalidValue);
  pool->destroyed = true;
  return cudaSuccess;
}

cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t pool, enum cudaMemPoolAttr attr, void *value) {
  LOCKED;
  if (!pool || pool->destroyed || !value) return fail(cudaErrorInvalidValue);
  switch (attr) {
  case cudaMemPoolReuseFollowEventDependencies:
  case cudaMemPoolReuseAllowOpportunistic:
  case cudaMemPoolReuseAllowInternalDependencies:
  case cudaMemPoolAttrReleaseThreshold: return cudaSuccess; /* cudasim keeps nothing cached */
  default: return fail(cudaErrorInvalidValue);              /* read-only attributes */
  }
}

cudaError_t cudaMemPoolTrimTo(cudaMemPool_t pool, size_t min_bytes_to_keep) {
  LOCKED;
  if (!pool || pool->destroyed) return fail(cudaErrorInvalidValue);
  return cudaSuccess;
}

cudaError_t cudaMallocFromPoolAsync(void **ptr, size_t size, cudaMemPool_t pool,
                                    cudaStream_t stream) {
  LOCKED;
  if (!pool || pool->destroyed) return fail(cudaErrorInvalidValue);
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  return allocate(ptr, size, pool->device);
}

namespace {

/* The direction a copy really has, from where its pointers lie; explicit kinds must agree
 * (the runtime's documentation calls a mismatch undefined behaviour). */
cudaError_t copy_kind(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                      cudaMemcpyKind *real) {
  const bool dd = is_device(dst), sd = is_device(src);
  cudaMemcpyKind actual = sd ? (dd ? cudaMemcpyDeviceToDevice : cudaMemcpyDeviceToHost)
                             : (dd ? cudaMemcpyHostToDevice : cudaMemcpyHostToHost);
  if (kind != cudaMemcpyDefault && kind != actual)
    fatal("cudaMemcpy: kind %d given but dst %p is %s memory and src %p is %s memory", int(kind),
          dst, dd ? "device" : "host", src, sd ? "device" : "host");
  if (dd) require_device_range(dst, count, "cudaMemcpy: dst");
  if (sd) require_device_range(src, count, "cudaMemcpy: src");
  *real = actual;
  return cudaSuccess;
}

/* Copies to or from pageable host memory wait for the stream and complete before the call
 * returns (the runtime's "API synchronization behavior"); device-to-device copies queue. */
cudaError_t copy(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                 cudaStream_t stream) {
  LOCKED;
  configure();
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  if (!dst || !src) return fail(cudaErrorInvalidValue);
  cudaMemcpyKind real;
  copy_kind(dst, src, count, kind, &real);
  if (real == cudaMemcpyDeviceToDevice) {
    enqueue(stream, "cudaMemcpyAsync", [=] { memmove(dst, src, count); });
  } else if (real == cudaMemcpyHostToHost) {
    flush(stream);
    memmove(dst, src, count);
  } else {
    run_now(stream, "cudaMemcpyAsync", [=] { memcpy(dst, src, count); });
  }
  return cudaSuccess;
}

cudaError_t set(void *ptr, int value, size_t count, cudaStream_t stream) {
  LOCKED;
  configure();
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  if (count == 0) return cudaSuccess;
  require_device_range(ptr, count, "cudaMemset");
  enqueue(stream, "cudaMemsetAsync", [=] { memset(ptr, value, count); });
  return cudaSuccess;
}

} // namespace

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
  return copy(dst, src, count, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
  return copy(dst, src, count, kind, stream);
}

cudaError_t cudaMemset(void *ptr, int value, size_t count) { return set(ptr, value, count, 0); }

cudaError_t cudaMemsetAsync(void *ptr, int value, size_t count, cudaStream_t stream) {
  return set(ptr, value, count, stream);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
  LOCKED;
  configure();
  if (!stream || (flags & ~unsigned(cudaStreamNonBlocking))) return fail(cudaErrorInvalidValue);
  if (!valid_device(current_device)) return fail(cudaErrorInvalidDevice);
  cudaStream_t st = new cudasim_stream;
  st->flags = flags;
  st->device = current_device;
  S().streams.insert(st);
  *stream = st;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) {
  return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

/* Work still queued completes first, as the runtime promises. */
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  LOCKED;
  if (!stream || !S().streams.count(stream)) return fail(cudaErrorInvalidResourceHandle);
  run_stream(*stream);
  S().streams.erase(stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  LOCKED;
  if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  flush(stream);
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  if (!event) return fail(cudaErrorInvalidValue);
  *event = new cudasim_event;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  LOCKED;
  if (!event || !valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
  enqueue(stream, "cudaEventRecord", [event] { event->seconds = now_seconds(); });
  event->stream = stream;
  event->position = stream_of(stream).queued;
  event->recorded = true;
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  LOCKED;
  if (!event) return fail(cudaErrorInvalidResourceHandle);
  if (event->recorded) {
    if (!valid_stream(event->stream)) fatal("cudaEventSynchronize: its stream was destroyed");
    run_stream_until(stream_of(event->stream), event->position);
  }
  return cudaSuccess;
}

/* Later work on `stream` waits for the event: cudasim runs the event's stream up to it now,
 * which is one of the orders a GPU may choose. */
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  LOCKED;
  if (!valid_stream(stream) || !event) return fail(cudaErrorInvalidResourceHandle);
  return cudaEventSynchronize(event);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
  LOCKED;
  if (!ms || !start || !end) return fail(cudaErrorInvalidValue);
  if (!start->recorded || !end->recorded) return fail(cudaErrorInvalidResourceHandle);
  cudasim_stream &a = stream_of(start->stream), &b = stream_of(end->stream);
  if (a.done < start->position || b.done < end->position) return fail(cudaErrorNotReady);
  *ms = float(1e3 * (end->seconds - start->seconds));
  return cudaSuccess;
}

} // extern "C"
