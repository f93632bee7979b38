/* cudasim's NCCL: the functions of include/nccl.h, by the semantics of NVIDIA's NCCL
 * documentation, carried out with MPI (rcc-dist always runs under MPI, which it initialises
 * itself; without MPI every call that needs it returns ncclInvalidUsage).
 *
 * - ncclCommInitRank is collective over MPI_COMM_WORLD: an MPI_Comm_split whose colour is a
 *   hash of the unique id and whose key is the NCCL rank, so the new communicator's ranks
 *   are the NCCL ranks. Every process of the job must call it (a limitation: NCCL allows
 *   communicators over part of the job). Wrong nranks, a rank given twice or an id that did
 *   not come from ncclGetUniqueId fail on every member alike, instead of hanging.
 * - A collective checks its buffers lie in device memory (exact bytes), waits for the work
 *   queued before it on ITS stream only, then runs at once (cudasim::run_now). A buffer
 *   written on another stream without an event or a synchronization is therefore read
 *   stale, as it may be on a GPU: that is the bug the tests should see.
 * - In place follows NCCL: sendbuff == recvbuff (all-reduce, broadcast), sendbuff ==
 *   recvbuff + rank * sendcount (all-gather). Any other overlap is undefined: reported. */
#define OMPI_SKIP_MPICXX 1 /* the C API only: rcc_cudasim links MPI::MPI_C */
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <set>

#include "cudasim_internal.hpp"
#include <nccl.h>

struct cudasim_nccl_comm {
  MPI_Comm mpi;
  int nranks, rank;
};

namespace {

/* Marks ids made by ncclGetUniqueId, so that a zeroed or never-broadcast id is caught. */
constexpr char kMagic[8] = {'c', 'u', 'd', 'a', 's', 'i', 'm', 'N'};
/* Elements per MPI call: MPI counts are int. */
constexpr std::size_t kChunk = std::size_t(1) << 30;

std::mutex state_mutex;
char last_error[512] = "";

std::set<ncclComm_t> &live_comms() {
  static std::set<ncclComm_t> comms;
  return comms;
}

/* Records the message ncclGetLastError returns, and passes the result on. */
ncclResult_t fail(ncclResult_t result, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
ncclResult_t fail(ncclResult_t result, const char *fmt, ...) {
  std::lock_guard<std::mutex> lock(state_mutex);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return result;
}

bool mpi_usable() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

/* NULL is ncclInvalidArgument, as NCCL checks; any other pointer that is not a live
 * communicator (destroyed, aborted, never created) is undefined behaviour: report it. */
ncclResult_t check_comm(ncclComm_t comm, const char *fn) {
  if (!comm) return fail(ncclInvalidArgument, "%s: comm is NULL", fn);
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    if (!live_comms().count(comm))
      cudasim::fatal("%s: %p is not a live NCCL communicator (destroyed, aborted, or never "
                     "created)",
                     fn, static_cast<void *>(comm));
  }
  if (!mpi_usable()) return fail(ncclInvalidUsage, "%s: MPI has been finalized", fn);
  return ncclSuccess;
}

/* The MPI type of an NCCL type and its size. The 16- and 8-bit floating types are valid in
 * NCCL but not emulated: say so rather than compute something else. */
ncclResult_t resolve_type(ncclDataType_t dt, const char *fn, MPI_Datatype *type,
                          std::size_t *size) {
  switch (dt) {
  case ncclInt8: *type = MPI_INT8_T, *size = 1; return ncclSuccess;
  case ncclUint8: *type = MPI_UINT8_T, *size = 1; return ncclSuccess;
  case ncclInt32: *type = MPI_INT32_T, *size = 4; return ncclSuccess;
  case ncclUint32: *type = MPI_UINT32_T, *size = 4; return ncclSuccess;
  case ncclInt64: *type = MPI_INT64_T, *size = 8; return ncclSuccess;
  case ncclUint64: *type = MPI_UINT64_T, *size = 8; return ncclSuccess;
  case ncclFloat32: *type = MPI_FLOAT, *size = 4; return ncclSuccess;
  case ncclFloat64: *type = MPI_DOUBLE, *size = 8; return ncclSuccess;
  case ncclFloat16:
  case ncclBfloat16:
  case ncclFloat8e4m3:
  case ncclFloat8e5m2:
    cudasim::fatal("%s: datatype %d is valid NCCL but cudasim does not emulate it", fn, int(dt));
  case ncclNumTypes: break;
  }
  return fail(ncclInvalidArgument, "%s: invalid datatype %d", fn, int(dt));
}

/* count elements of `size` bytes (times `times`) as bytes, or false on overflow. */
bool byte_count(std::size_t count, std::size_t size, std::size_t times, std::size_t *bytes) {
  return !__builtin_mul_overflow(count, size, bytes) &&
         !__builtin_mul_overflow(*bytes, times, bytes);
}

void require(const char *fn, const char *arg, const void *p, std::size_t bytes) {
  char what[64];
  snprintf(what, sizeof what, "%s: %s", fn, arg);
  cudasim::require_device_range(p, bytes, what);
}

bool overlap(const void *p, std::size_t pn, const void *q, std::size_t qn) {
  const auto a = reinterpret_cast<std::uintptr_t>(p), b = reinterpret_cast<std::uintptr_t>(q);
  return pn && qn && a < b + qn && b < a + pn;
}

/* A stream that does not exist is an error of the CUDA call NCCL would make on it. Waiting
 * for the stream here changes nothing: run_now waits for it anyway. */
ncclResult_t check_stream(cudaStream_t stream, const char *fn) {
  if (cudaStreamSynchronize(stream) != cudaSuccess)
    return fail(ncclUnhandledCudaError, "%s: stream %p is not a valid CUDA stream", fn,
                static_cast<void *>(stream));
  return ncclSuccess;
}

template <typename T> void divide(void *buf, std::size_t count, int by) {
  T *p = static_cast<T *>(buf);
  for (std::size_t i = 0; i < count; i++)
    p[i] = T(p[i] / T(by));
}

/* ncclAvg: the sum divided by the number of ranks, in the element type. */
void average(void *buf, std::size_t count, ncclDataType_t dt, int nranks) {
  switch (dt) {
  case ncclInt8: divide<std::int8_t>(buf, count, nranks); break;
  case ncclUint8: divide<std::uint8_t>(buf, count, nranks); break;
  case ncclInt32: divide<std::int32_t>(buf, count, nranks); break;
  case ncclUint32: divide<std::uint32_t>(buf, count, nranks); break;
  case ncclInt64: divide<std::int64_t>(buf, count, nranks); break;
  case ncclUint64: divide<std::uint64_t>(buf, count, nranks); break;
  case ncclFloat32: divide<float>(buf, count, nranks); break;
  case ncclFloat64: divide<double>(buf, count, nranks); break;
  default: break;
  }
}

std::uint64_t fnv1a(const void *data, std::size_t n) {
  const auto *p = static_cast<const unsigned char *>(data);
  std::uint64_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

} // namespace

extern "C" {

/* Random bytes, the process id and the time: distinct across processes and calls. */
ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
  if (!uniqueId) return fail(ncclInvalidArgument, "ncclGetUniqueId: uniqueId is NULL");
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  std::size_t at = 0;
  memcpy(id.internal + at, kMagic, sizeof kMagic);
  at += sizeof kMagic;
  const std::int64_t pid = getpid();
  memcpy(id.internal + at, &pid, sizeof pid);
  at += sizeof pid;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const std::int64_t ns = std::int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  memcpy(id.internal + at, &ns, sizeof ns);
  at += sizeof ns;
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 ||
      read(fd, id.internal + at, sizeof id.internal - at) != ssize_t(sizeof id.internal - at)) {
    if (fd >= 0) close(fd);
    return fail(ncclSystemError, "ncclGetUniqueId: cannot read /dev/urandom");
  }
  close(fd);
  *uniqueId = id;
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
  static const char fn[] = "ncclCommInitRank";
  if (!mpi_usable())
    return fail(ncclInvalidUsage, "%s: MPI is not initialized (cudasim's NCCL runs over MPI)", fn);
  if (comm) *comm = nullptr;
  /* A local error still takes part in the split and the agreement below, so that the other
   * ranks get an error too instead of waiting for this one. */
  ncclResult_t result = ncclSuccess;
  if (!comm)
    result = fail(ncclInvalidArgument, "%s: comm is NULL", fn);
  else if (nranks < 1 || rank < 0 || rank >= nranks)
    result = fail(ncclInvalidArgument, "%s: rank %d is not in [0, nranks %d)", fn, rank, nranks);
  else if (memcmp(commId.internal, kMagic, sizeof kMagic) != 0)
    result = fail(ncclInvalidArgument, "%s: the id did not come from ncclGetUniqueId", fn);
  const int colour = int(fnv1a(commId.internal, sizeof commId.internal) & 0x7fffffffu);
  MPI_Comm split;
  MPI_Comm_split(MPI_COMM_WORLD, colour, result == ncclSuccess ? rank : 0, &split);
  int size = 0, me = 0;
  MPI_Comm_size(split, &size);
  MPI_Comm_rank(split, &me);
  if (result == ncclSuccess && size != nranks)
    result = fail(ncclInvalidUsage,
                  "%s: %d processes called with this id but nranks is %d (every rank must pass "
                  "the same id and nranks)",
                  fn, size, nranks);
  else if (result == ncclSuccess && me != rank)
    result = fail(ncclInvalidUsage, "%s: rank %d was given by more than one process", fn, rank);
  int mine = int(result), worst = 0;
  MPI_Allreduce(&mine, &worst, 1, MPI_INT, MPI_MAX, split);
  if (result == ncclSuccess && worst != ncclSuccess)
    result = fail(ncclInvalidUsage, "%s: another rank's ncclCommInitRank with this id failed", fn);
  if (result != ncclSuccess) {
    MPI_Comm_free(&split);
    return result;
  }
  ncclComm_t c = new cudasim_nccl_comm{split, nranks, rank};
  std::lock_guard<std::mutex> lock(state_mutex);
  live_comms().insert(c);
  *comm = c;
  return ncclSuccess;
}

/* Every collective here has completed when it returns, so destroying finalizes nothing. */
ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    if (!live_comms().erase(comm))
      cudasim::fatal("ncclCommDestroy: %p is not a live NCCL communicator (destroyed twice, "
                     "aborted, or never created)",
                     static_cast<void *>(comm));
  }
  if (mpi_usable()) MPI_Comm_free(&comm->mpi);
  delete comm;
  return ncclSuccess;
}

/* Local only, as NCCL's abort is: the MPI communicator is dropped without MPI_Comm_free,
 * which is collective and whose peers may be gone. */
ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm) return ncclSuccess;
  {
    std::lock_guard<std::mutex> lock(state_mutex);
    if (!live_comms().erase(comm))
      cudasim::fatal("ncclCommAbort: %p is not a live NCCL communicator (destroyed, aborted, "
                     "or never created)",
                     static_cast<void *>(comm));
  }
  delete comm;
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
  switch (result) {
  case ncclSuccess: return "no error";
  case ncclUnhandledCudaError: return "unhandled cuda error";
  case ncclSystemError: return "unhandled system error";
  case ncclInternalError: return "internal error";
  case ncclInvalidArgument: return "invalid argument";
  case ncclInvalidUsage: return "invalid usage";
  case ncclRemoteError: return "remote process exited or there was a network error";
  case ncclInProgress: return "NCCL operation in progress";
  case ncclNumResults: break;
  }
  return "unknown result code";
}

/* The message of the last failure (not cleared by reading it), whatever the comm. */
const char *ncclGetLastError(ncclComm_t comm) {
  (void)comm;
  return last_error;
}

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                           cudaStream_t stream) {
  static const char fn[] = "ncclAllReduce";
  ncclResult_t r = check_comm(comm, fn);
  if (r != ncclSuccess) return r;
  MPI_Datatype type;
  std::size_t esize, bytes;
  if ((r = resolve_type(datatype, fn, &type, &esize)) != ncclSuccess) return r;
  if (unsigned(op) >= unsigned(ncclNumOps))
    return fail(ncclInvalidArgument, "%s: invalid reduction op %d", fn, int(op));
  if (!byte_count(count, esize, 1, &bytes))
    return fail(ncclInvalidArgument, "%s: count %zu is too large", fn, count);
  if (count == 0) return ncclSuccess;
  if (!sendbuff || !recvbuff)
    return fail(ncclInvalidArgument, "%s: sendbuff or recvbuff is NULL", fn);
  require(fn, "sendbuff", sendbuff, bytes);
  require(fn, "recvbuff", recvbuff, bytes);
  if (sendbuff != recvbuff && overlap(sendbuff, bytes, recvbuff, bytes))
    cudasim::fatal("%s: sendbuff and recvbuff overlap without being equal: undefined", fn);
  if ((r = check_stream(stream, fn)) != ncclSuccess) return r;
  const MPI_Op mop = op == ncclProd  ? MPI_PROD
                     : op == ncclMax ? MPI_MAX
                     : op == ncclMin ? MPI_MIN
                                     : MPI_SUM; /* ncclSum, ncclAvg */
  cudasim::run_now(stream, fn, [&] {
    for (std::size_t off = 0; off < count; off += kChunk) {
      const int n = int(std::min(kChunk, count - off));
      char *recv = static_cast<char *>(recvbuff) + off * esize;
      const void *send =
          sendbuff == recvbuff ? MPI_IN_PLACE : static_cast<const char *>(sendbuff) + off * esize;
      MPI_Allreduce(send, recv, n, type, mop, comm->mpi);
    }
    if (op == ncclAvg) average(recvbuff, count, datatype, comm->nranks);
  });
  return ncclSuccess;
}

/* sendbuff is read on the root only, as documented. */
ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  static const char fn[] = "ncclBroadcast";
  ncclResult_t r = check_comm(comm, fn);
  if (r != ncclSuccess) return r;
  MPI_Datatype type;
  std::size_t esize, bytes;
  if ((r = resolve_type(datatype, fn, &type, &esize)) != ncclSuccess) return r;
  if (root < 0 || root >= comm->nranks)
    return fail(ncclInvalidArgument, "%s: root %d is not in [0, %d)", fn, root, comm->nranks);
  if (!byte_count(count, esize, 1, &bytes))
    return fail(ncclInvalidArgument, "%s: count %zu is too large", fn, count);
  if (count == 0) return ncclSuccess;
  const bool is_root = comm->rank == root;
  if (!recvbuff || (is_root && !sendbuff))
    return fail(ncclInvalidArgument, "%s: sendbuff or recvbuff is NULL", fn);
  if (is_root) require(fn, "sendbuff", sendbuff, bytes);
  require(fn, "recvbuff", recvbuff, bytes);
  if (is_root && sendbuff != recvbuff && overlap(sendbuff, bytes, recvbuff, bytes))
    cudasim::fatal("%s: sendbuff and recvbuff overlap without being equal: undefined", fn);
  if ((r = check_stream(stream, fn)) != ncclSuccess) return r;
  cudasim::run_now(stream, fn, [&] {
    if (is_root && sendbuff != recvbuff) memcpy(recvbuff, sendbuff, bytes);
    for (std::size_t off = 0; off < count; off += kChunk)
      MPI_Bcast(static_cast<char *>(recvbuff) + off * esize, int(std::min(kChunk, count - off)),
                type, root, comm->mpi);
  });
  return ncclSuccess;
}

/* recvbuff holds nranks * sendcount elements, rank r's at r * sendcount. */
ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream) {
  static const char fn[] = "ncclAllGather";
  ncclResult_t r = check_comm(comm, fn);
  if (r != ncclSuccess) return r;
  MPI_Datatype type;
  std::size_t esize, bytes, total;
  if ((r = resolve_type(datatype, fn, &type, &esize)) != ncclSuccess) return r;
  if (!byte_count(sendcount, esize, 1, &bytes) ||
      !byte_count(sendcount, esize, std::size_t(comm->nranks), &total))
    return fail(ncclInvalidArgument, "%s: sendcount %zu is too large", fn, sendcount);
  if (sendcount == 0) return ncclSuccess;
  if (!sendbuff || !recvbuff)
    return fail(ncclInvalidArgument, "%s: sendbuff or recvbuff is NULL", fn);
  require(fn, "sendbuff", sendbuff, bytes);
  require(fn, "recvbuff", recvbuff, total);
  char *mine = static_cast<char *>(recvbuff) + std::size_t(comm->rank) * bytes;
  if (sendbuff != mine && overlap(sendbuff, bytes, recvbuff, total))
    cudasim::fatal("%s: sendbuff overlaps recvbuff but is not recvbuff + rank * sendcount "
                   "(NCCL's in-place form): undefined",
                   fn);
  if ((r = check_stream(stream, fn)) != ncclSuccess) return r;
  /* Our block goes in first and every rank gathers in place: MPI wants MPI_IN_PLACE on all
   * ranks or none, while NCCL lets each rank choose. */
  cudasim::run_now(stream, fn, [&] {
    if (sendbuff != mine) memcpy(mine, sendbuff, bytes);
    if (sendcount <= kChunk) {
      MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recvbuff, int(sendcount), type, comm->mpi);
      return;
    }
    for (int from = 0; from < comm->nranks; from++)
      for (std::size_t off = 0; off < sendcount; off += kChunk)
        MPI_Bcast(static_cast<char *>(recvbuff) + (std::size_t(from) * sendcount + off) * esize,
                  int(std::min(kChunk, sendcount - off)), type, from, comm->mpi);
  });
  return ncclSuccess;
}

} // extern "C"
