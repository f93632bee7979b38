/* The public communicator API: picks a back end by name, checks arguments once here (so
 * that self, mpi and nccl can assume them valid), forwards to the back end's function
 * table (comm_impl.h), and owns the abort path. */
#include "comm/comm_impl.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "rcc_version.h"

size_t rcc_comm_dtype_size(rcc_comm_dtype_t dt) {
  switch (dt) {
  case RCC_DT_F32: return 4;
  case RCC_DT_F64: return 8;
  case RCC_DT_I32: return 4;
  case RCC_DT_I64: return 8;
  case RCC_DT_U8: return 1;
  }
  return 0;
}

/* True when MPI_Init has run and MPI_Finalize has not. */
static int mpi_usable(void) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return 0;
  MPI_Finalized(&finalized);
  return !finalized;
}

rcc_status_t rcc_comm_init(rcc_comm_t *out, const char *name) {
  if (!out || !name)
    return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_init: NULL %s", out ? "name" : "output handle");
  *out = NULL;
  if (strcmp(name, "self") == 0) return rcc_comm_self_create(out);
  if (strcmp(name, "mpi") == 0) return rcc_comm_mpi_create(out);
  if (strcmp(name, "nccl") == 0) {
#if RCC_HAVE_NCCL
    return rcc_comm_nccl_create(out);
#else
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "comm.c: rcc_comm_init: comm 'nccl' requested but this build has no NCCL "
                    "(configure with the CUDA toolkit and NCCL present); use \"mpi\"");
#endif
  }
  if (strcmp(name, "auto") == 0) {
    int size = 1;
    if (mpi_usable()) MPI_Comm_size(MPI_COMM_WORLD, &size);
    return size > 1 ? rcc_comm_mpi_create(out) : rcc_comm_self_create(out);
  }
  return rcc_fail(RCC_ERR_ARG,
                  "comm.c: rcc_comm_init: unknown comm '%s' (accepted: \"self\", \"mpi\", "
                  "\"nccl\", \"auto\")",
                  name);
}

void rcc_comm_free(rcc_comm_t comm) {
  if (comm) comm->ops->destroy(comm);
}

const char *rcc_comm_name(rcc_comm_t comm) { return comm ? comm->name : "(none)"; }
int rcc_comm_rank(rcc_comm_t comm) { return comm ? comm->rank : 0; }
int rcc_comm_size(rcc_comm_t comm) { return comm ? comm->size : 1; }
int rcc_comm_local_rank(rcc_comm_t comm) { return comm ? comm->local_rank : 0; }
int rcc_comm_local_size(rcc_comm_t comm) { return comm ? comm->local_size : 1; }

/* Checks shared by the collectives: a handle, a known dtype, a buffer when non-empty. */
static rcc_status_t check_args(rcc_comm_t comm, const char *fn, const void *buf, size_t count,
                               rcc_comm_dtype_t dt) {
  if (!comm) return rcc_fail(RCC_ERR_ARG, "comm.c: %s: NULL communicator", fn);
  if (rcc_comm_dtype_size(dt) == 0)
    return rcc_fail(RCC_ERR_ARG, "comm.c: %s: unknown dtype %d", fn, (int)dt);
  if (count > 0 && !buf) return rcc_fail(RCC_ERR_ARG, "comm.c: %s: NULL buffer", fn);
  return RCC_OK;
}

/* Every rank must call each collective, even with count 0, so none of the early returns
 * below skips a peer's matching call: count 0 is the same on every rank. */
rcc_status_t rcc_comm_allreduce(rcc_comm_t comm, void *buf, size_t count, rcc_comm_dtype_t dt,
                                rcc_comm_op_t op) {
  RCC_TRY(check_args(comm, "rcc_comm_allreduce", buf, count, dt));
  if (op != RCC_OP_SUM && op != RCC_OP_MAX && op != RCC_OP_MIN)
    return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_allreduce: unknown op %d", (int)op);
  if (count == 0) return RCC_OK;
  return comm->ops->allreduce(comm, buf, count, dt, op);
}

rcc_status_t rcc_comm_broadcast(rcc_comm_t comm, void *buf, size_t count, rcc_comm_dtype_t dt,
                                int root) {
  RCC_TRY(check_args(comm, "rcc_comm_broadcast", buf, count, dt));
  if (root < 0 || root >= comm->size)
    return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_broadcast: root %d outside 0..%d", root,
                    comm->size - 1);
  if (count == 0) return RCC_OK;
  return comm->ops->broadcast(comm, buf, count, dt, root);
}

rcc_status_t rcc_comm_allgather(rcc_comm_t comm, const void *send, void *recv, size_t count,
                                rcc_comm_dtype_t dt) {
  RCC_TRY(check_args(comm, "rcc_comm_allgather", send, count, dt));
  if (count > 0 && !recv)
    return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_allgather: NULL receive buffer");
  if (count == 0) return RCC_OK;
  if (count > SIZE_MAX / rcc_comm_dtype_size(dt) / (size_t)comm->size)
    return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_allgather: %zu elements x %d ranks overflow",
                    count, comm->size);
  return comm->ops->allgather(comm, send, recv, count, dt);
}

rcc_status_t rcc_comm_barrier(rcc_comm_t comm) {
  if (!comm) return rcc_fail(RCC_ERR_ARG, "comm.c: rcc_comm_barrier: NULL communicator");
  return comm->ops->barrier(comm);
}

_Noreturn void rcc_comm_abort(rcc_comm_t comm, int code, const char *why) {
  RCC_ERROR("aborting (exit code %d): %s", code, why ? why : "(no reason given)");
  if (comm) comm->ops->abort(comm, code);
  /* Reached without a communicator, or if MPI_Abort returned (it must not): this process
   * at least ends, with the same code. */
  exit(code);
}
