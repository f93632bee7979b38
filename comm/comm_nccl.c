/* The "nccl" communicator: collectives on CUDA device buffers with NCCL, bootstrapped over
 * MPI (rank 0 makes the ncclUniqueId and broadcasts it). Each rank drives the GPU
 * local_rank % device_count. Operations run on a stream of our own and are synchronized
 * before returning, so they are blocking as comm.h promises. Compiled only with NCCL. */
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"
#include "common/check_cuda.h"

typedef struct {
  rcc_comm_t mpi; /* bootstrap, barrier and abort */
  ncclComm_t nccl;
  cudaStream_t stream;
  int device;
} nccl_impl_t;

#define RCC_CHECK_NCCL(call)                                                                       \
  do {                                                                                             \
    ncclResult_t rcc_nccl_res_ = (call);                                                           \
    if (rcc_nccl_res_ != ncclSuccess)                                                              \
      return rcc_fail(RCC_ERR_CUDA, "%s:%d: %s failed: %s (%s)", __FILE__, __LINE__, #call,        \
                      ncclGetErrorString(rcc_nccl_res_), ncclGetLastError(NULL));                  \
  } while (0)

static ncclDataType_t nccl_type(rcc_comm_dtype_t dt) {
  switch (dt) {
  case RCC_DT_F32: return ncclFloat32;
  case RCC_DT_F64: return ncclFloat64;
  case RCC_DT_I32: return ncclInt32;
  case RCC_DT_I64: return ncclInt64;
  case RCC_DT_U8: return ncclUint8;
  }
  return ncclFloat32;
}

static ncclRedOp_t nccl_op(rcc_comm_op_t op) {
  switch (op) {
  case RCC_OP_SUM: return ncclSum;
  case RCC_OP_MAX: return ncclMax;
  case RCC_OP_MIN: return ncclMin;
  }
  return ncclSum;
}

static nccl_impl_t *impl_of(rcc_comm_t c) { return (nccl_impl_t *)c->impl; }

/* NCCL counts are size_t: no chunking. Each call waits for its stream, so the caller may
 * read the result (or reuse the buffer) as soon as it returns. */
static rcc_status_t nccl_allreduce(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                   rcc_comm_op_t op) {
  nccl_impl_t *m = impl_of(c);
  RCC_CHECK_CUDA(cudaSetDevice(m->device));
  RCC_CHECK_NCCL(ncclAllReduce(buf, buf, n, nccl_type(dt), nccl_op(op), m->nccl, m->stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(m->stream));
  return RCC_OK;
}

static rcc_status_t nccl_broadcast(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                   int root) {
  nccl_impl_t *m = impl_of(c);
  RCC_CHECK_CUDA(cudaSetDevice(m->device));
  RCC_CHECK_NCCL(ncclBroadcast(buf, buf, n, nccl_type(dt), root, m->nccl, m->stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(m->stream));
  return RCC_OK;
}

/* recv (size, n); NCCL treats send == recv + rank * n as in place. */
static rcc_status_t nccl_allgather(rcc_comm_t c, const void *send, void *recv, size_t n,
                                   rcc_comm_dtype_t dt) {
  nccl_impl_t *m = impl_of(c);
  RCC_CHECK_CUDA(cudaSetDevice(m->device));
  RCC_CHECK_NCCL(ncclAllGather(send, recv, n, nccl_type(dt), m->nccl, m->stream));
  RCC_CHECK_CUDA(cudaStreamSynchronize(m->stream));
  return RCC_OK;
}

/* Our NCCL work is already complete when each call returns, so an MPI barrier suffices. */
static rcc_status_t nccl_barrier(rcc_comm_t c) { return rcc_comm_barrier(impl_of(c)->mpi); }

/* Abort the NCCL communicator first so no kernel waits on a dead peer, then the job. */
static void nccl_abort(rcc_comm_t c, int code) {
  nccl_impl_t *m = impl_of(c);
  if (m->nccl) ncclCommAbort(m->nccl);
  m->mpi->ops->abort(m->mpi, code);
}

static void nccl_destroy(rcc_comm_t c) {
  nccl_impl_t *m = impl_of(c);
  if (m->nccl) ncclCommDestroy(m->nccl);
  if (m->stream) cudaStreamDestroy(m->stream);
  rcc_comm_free(m->mpi);
  free(m);
  free(c);
}

static const rcc_comm_ops_t nccl_ops = {
    .destroy = nccl_destroy,
    .allreduce = nccl_allreduce,
    .broadcast = nccl_broadcast,
    .allgather = nccl_allgather,
    .barrier = nccl_barrier,
    .abort = nccl_abort,
};

/* Picks this rank's GPU. Every rank reports whether it has one (an all-reduce of a flag)
 * before anyone enters NCCL's collective initialisation, so that one rank without a GPU
 * turns into the same clear error everywhere instead of a hang. */
static rcc_status_t choose_device(rcc_comm_t c, nccl_impl_t *m) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    count = 0;
    cudaGetLastError(); /* clear the error so later CUDA calls start clean */
  }
  int have_gpu = count > 0;
  RCC_TRY(rcc_comm_allreduce(m->mpi, &have_gpu, 1, RCC_DT_I32, RCC_OP_MIN));
  if (count == 0)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "comm_nccl.c: rcc_comm_init(\"nccl\"): no CUDA device is visible on rank %d "
                    "(cudaGetDeviceCount: %s); use \"mpi\"",
                    c->rank, err == cudaSuccess ? "0 devices" : cudaGetErrorString(err));
  if (!have_gpu)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "comm_nccl.c: rcc_comm_init(\"nccl\"): another rank sees no CUDA device; "
                    "use \"mpi\"");
  m->device = c->local_rank % count;
  RCC_CHECK_CUDA(cudaSetDevice(m->device));
  return RCC_OK;
}

static rcc_status_t nccl_setup(rcc_comm_t c, nccl_impl_t *m) {
  RCC_TRY(rcc_comm_mpi_create(&m->mpi));
  c->rank = m->mpi->rank;
  c->size = m->mpi->size;
  c->local_rank = m->mpi->local_rank;
  c->local_size = m->mpi->local_size;
  RCC_TRY(choose_device(c, m));
  /* Every rank's stream and rank 0's id are agreed on (an all-reduce of a flag) before the
   * broadcast, so that a failure on any rank ends every rank's setup with an error instead
   * of leaving the others in the broadcast or in ncclCommInitRank. */
  int ok = cudaStreamCreateWithFlags(&m->stream, cudaStreamNonBlocking) == cudaSuccess;
  if (!ok) cudaGetLastError();
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  if (ok && c->rank == 0) ok = ncclGetUniqueId(&id) == ncclSuccess;
  int all = ok;
  RCC_TRY(rcc_comm_allreduce(m->mpi, &all, 1, RCC_DT_I32, RCC_OP_MIN));
  if (!all)
    return rcc_fail(RCC_ERR_CUDA, "comm_nccl.c: rcc_comm_init(\"nccl\"): %s; use \"mpi\"",
                    ok ? "another rank could not create its stream or the NCCL unique id"
                    : c->rank == 0 ? "rank 0 could not create its stream or the NCCL unique id"
                                   : "this rank could not create its CUDA stream");
  RCC_TRY(rcc_comm_broadcast(m->mpi, &id, sizeof id, RCC_DT_U8, 0));
  RCC_CHECK_NCCL(ncclCommInitRank(&m->nccl, c->size, id, c->rank));
  return RCC_OK;
}

rcc_status_t rcc_comm_nccl_create(rcc_comm_t *out) {
  rcc_comm_t c = calloc(1, sizeof *c);
  nccl_impl_t *m = calloc(1, sizeof *m);
  if (!c || !m) {
    free(c);
    free(m);
    return rcc_fail(RCC_ERR_NOMEM, "comm_nccl.c: rcc_comm_nccl_create: out of memory");
  }
  c->ops = &nccl_ops;
  c->name = "nccl";
  c->impl = m;
  rcc_status_t st = nccl_setup(c, m);
  if (st != RCC_OK) {
    nccl_destroy(c);
    return st;
  }
  *out = c;
  return RCC_OK;
}
