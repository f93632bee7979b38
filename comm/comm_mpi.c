/* The "mpi" communicator: collectives on host buffers over a private duplicate of
 * MPI_COMM_WORLD. The caller (runner/) owns MPI_Init and MPI_Finalize. Errors return
 * (MPI_ERRORS_RETURN on our communicator) and are reported with MPI's own message. */
#include <limits.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

typedef struct {
  MPI_Comm comm;    /* duplicate of MPI_COMM_WORLD: our messages never match the caller's */
  size_t max_count; /* elements per MPI call: MPI counts are int */
} mpi_impl_t;

/* Records "file:line: call failed on rank R (host): MPI's message" and returns RCC_ERR_MPI. */
static rcc_status_t mpi_fail(int rc, const char *call, const char *file, int line) {
  char msg[MPI_MAX_ERROR_STRING] = "unknown MPI error", host[MPI_MAX_PROCESSOR_NAME] = "?";
  int len = 0, rank = -1;
  MPI_Error_string(rc, msg, &len);
  MPI_Get_processor_name(host, &len);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rcc_fail(RCC_ERR_MPI, "%s:%d: %s failed on rank %d (%s): %s", file, line, call, rank, host,
                  msg);
}

#define RCC_CHECK_MPI(call)                                                                        \
  do {                                                                                             \
    int rcc_mpi_rc_ = (call);                                                                      \
    if (rcc_mpi_rc_ != MPI_SUCCESS) return mpi_fail(rcc_mpi_rc_, #call, __FILE__, __LINE__);       \
  } while (0)

static MPI_Datatype mpi_type(rcc_comm_dtype_t dt) {
  switch (dt) {
  case RCC_DT_F32: return MPI_FLOAT;
  case RCC_DT_F64: return MPI_DOUBLE;
  case RCC_DT_I32: return MPI_INT32_T;
  case RCC_DT_I64: return MPI_INT64_T;
  case RCC_DT_U8: return MPI_UINT8_T;
  }
  return MPI_DATATYPE_NULL;
}

static MPI_Op mpi_op(rcc_comm_op_t op) {
  switch (op) {
  case RCC_OP_SUM: return MPI_SUM;
  case RCC_OP_MAX: return MPI_MAX;
  case RCC_OP_MIN: return MPI_MIN;
  }
  return MPI_OP_NULL;
}

static mpi_impl_t *impl_of(rcc_comm_t c) { return (mpi_impl_t *)c->impl; }

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Element-wise operations are independent per element, so a count past INT_MAX is done
 * as consecutive chunks of at most max_count elements. */
static rcc_status_t mpi_allreduce(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                  rcc_comm_op_t op) {
  mpi_impl_t *m = impl_of(c);
  size_t esize = rcc_comm_dtype_size(dt);
  for (size_t off = 0; off < n; off += m->max_count) {
    int count = (int)min_size(m->max_count, n - off);
    RCC_CHECK_MPI(MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esize, count, mpi_type(dt),
                                mpi_op(op), m->comm));
  }
  return RCC_OK;
}

static rcc_status_t mpi_broadcast(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                  int root) {
  mpi_impl_t *m = impl_of(c);
  size_t esize = rcc_comm_dtype_size(dt);
  for (size_t off = 0; off < n; off += m->max_count) {
    int count = (int)min_size(m->max_count, n - off);
    RCC_CHECK_MPI(MPI_Bcast((char *)buf + off * esize, count, mpi_type(dt), root, m->comm));
  }
  return RCC_OK;
}

/* One chunk [off, off + count) of every rank's block, in place. The receive type is
 * `count` elements resized to the extent of a whole block (n elements), so that MPI reads
 * and writes rank r's piece at recv + off + r * n: each chunk stays inside its block. */
static rcc_status_t allgather_chunk(mpi_impl_t *m, void *recv, size_t n, size_t off, int count,
                                    MPI_Datatype type, size_t esize) {
  MPI_Datatype piece, strided;
  RCC_CHECK_MPI(MPI_Type_contiguous(count, type, &piece));
  int rc = MPI_Type_create_resized(piece, 0, (MPI_Aint)(n * esize), &strided);
  MPI_Type_free(&piece);
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Type_create_resized", __FILE__, __LINE__);
  rc = MPI_Type_commit(&strided);
  if (rc == MPI_SUCCESS)
    rc = MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, (char *)recv + off * esize, 1, strided,
                       m->comm);
  MPI_Type_free(&strided);
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allgather (chunked)", __FILE__, __LINE__);
  return RCC_OK;
}

/* recv (size, n): rank r's n elements at r * n. MPI wants MPI_IN_PLACE on all ranks or on
 * none, and callers may pass either form, so our block is filled first and the gather is
 * always in place. */
static rcc_status_t mpi_allgather(rcc_comm_t c, const void *send, void *recv, size_t n,
                                  rcc_comm_dtype_t dt) {
  mpi_impl_t *m = impl_of(c);
  size_t esize = rcc_comm_dtype_size(dt);
  MPI_Datatype type = mpi_type(dt);
  char *mine = (char *)recv + (size_t)c->rank * n * esize;
  if (send != mine) memmove(mine, send, n * esize);
  if (n <= m->max_count) {
    RCC_CHECK_MPI(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, recv, (int)n, type, m->comm));
    return RCC_OK;
  }
  for (size_t off = 0; off < n; off += m->max_count)
    RCC_TRY(allgather_chunk(m, recv, n, off, (int)min_size(m->max_count, n - off), type, esize));
  return RCC_OK;
}

static rcc_status_t mpi_barrier(rcc_comm_t c) {
  RCC_CHECK_MPI(MPI_Barrier(impl_of(c)->comm));
  return RCC_OK;
}

/* Ends every rank of the job, not only those of our duplicate (they are the same ranks,
 * but the world communicator is what the MPI launcher watches). */
static void mpi_abort(rcc_comm_t c, int code) { MPI_Abort(MPI_COMM_WORLD, code); }

static void mpi_destroy(rcc_comm_t c) {
  mpi_impl_t *m = impl_of(c);
  int finalized = 1;
  MPI_Finalized(&finalized);
  if (!finalized && m->comm != MPI_COMM_NULL) MPI_Comm_free(&m->comm);
  free(m);
  free(c);
}

static const rcc_comm_ops_t mpi_ops = {
    .destroy = mpi_destroy,
    .allreduce = mpi_allreduce,
    .broadcast = mpi_broadcast,
    .allgather = mpi_allgather,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
};

/* A non-negative integer from the environment, or -1 when unset or malformed. */
static long env_count(const char *name) {
  const char *s = getenv(name);
  if (!s || !*s) return -1;
  char *end = NULL;
  long v = strtol(s, &end, 10);
  return (*end == '\0' && v >= 0) ? v : -1;
}

/* Rank and size within the node. The launcher's variables come first (SLURM_LOCALID under
 * srun, OMPI_COMM_WORLD_LOCAL_RANK under Open MPI's mpiexec) since they are what the
 * launcher bound GPUs and cores by; otherwise the rank among the processes that share
 * memory with us. The size always comes from the shared-memory split. */
static rcc_status_t find_local_rank(rcc_comm_t c, MPI_Comm comm) {
  MPI_Comm node;
  RCC_CHECK_MPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &node));
  int node_rank = 0, node_size = 1;
  int rc = MPI_Comm_rank(node, &node_rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(node, &node_size);
  MPI_Comm_free(&node);
  if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Comm_rank/size (node)", __FILE__, __LINE__);
  long env = env_count("SLURM_LOCALID");
  if (env < 0) env = env_count("OMPI_COMM_WORLD_LOCAL_RANK");
  c->local_rank = (env >= 0 && env < node_size) ? (int)env : node_rank;
  c->local_size = node_size;
  return RCC_OK;
}

rcc_status_t rcc_comm_mpi_create(rcc_comm_t *out) {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Finalized(&finalized);
  if (!initialized || finalized)
    return rcc_fail(RCC_ERR_ARG,
                    "comm_mpi.c: rcc_comm_init(\"mpi\"): MPI is %s; the program must call "
                    "MPI_Init before creating an MPI communicator (and not finalize it before)",
                    finalized ? "already finalized" : "not initialised");
  rcc_comm_t c = calloc(1, sizeof *c);
  mpi_impl_t *m = calloc(1, sizeof *m);
  if (!c || !m) {
    free(c);
    free(m);
    return rcc_fail(RCC_ERR_NOMEM, "comm_mpi.c: rcc_comm_mpi_create: out of memory");
  }
  c->ops = &mpi_ops;
  c->name = "mpi";
  c->impl = m;
  m->comm = MPI_COMM_NULL;
  /* RCC_MPI_MAX_COUNT lowers the elements per MPI call below INT_MAX, for MPI libraries
   * that mishandle messages over 2 GiB (and for tests of the chunked path). */
  long max_count = env_count("RCC_MPI_MAX_COUNT");
  m->max_count = (max_count > 0 && max_count < INT_MAX) ? (size_t)max_count : (size_t)INT_MAX;
  rcc_status_t st = RCC_OK;
  int rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_rank(m->comm, &c->rank);
  if (rc == MPI_SUCCESS) rc = MPI_Comm_size(m->comm, &c->size);
  if (rc != MPI_SUCCESS)
    st = mpi_fail(rc, "MPI_Comm_dup/set_errhandler/rank/size", __FILE__, __LINE__);
  if (st == RCC_OK) st = find_local_rank(c, m->comm);
  if (st != RCC_OK) {
    mpi_destroy(c);
    return rcc_fail_context(st, "comm_mpi.c: rcc_comm_mpi_create");
  }
  *out = c;
  return RCC_OK;
}
