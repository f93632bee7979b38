/* The "self" communicator: one process, rank 0 of 1. Reductions and broadcasts leave the
 * buffer as it is (the result over one rank is its own data); all-gather copies. */
#include <stdlib.h>
#include <string.h>

#include "comm/comm_impl.h"

static void self_destroy(rcc_comm_t c) { free(c); }

static rcc_status_t self_allreduce(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                   rcc_comm_op_t op) {
  return RCC_OK;
}

static rcc_status_t self_broadcast(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                                   int root) {
  return RCC_OK;
}

/* recv (1, n) = send; send may already be recv (in place). */
static rcc_status_t self_allgather(rcc_comm_t c, const void *send, void *recv, size_t n,
                                   rcc_comm_dtype_t dt) {
  if (send != recv) memmove(recv, send, n * rcc_comm_dtype_size(dt));
  return RCC_OK;
}

static rcc_status_t self_barrier(rcc_comm_t c) { return RCC_OK; }

/* The abort path (rcc_comm_abort has printed why): the one place a library exits. */
static void self_abort(rcc_comm_t c, int code) { exit(code); }

static const rcc_comm_ops_t self_ops = {
    .destroy = self_destroy,
    .allreduce = self_allreduce,
    .broadcast = self_broadcast,
    .allgather = self_allgather,
    .barrier = self_barrier,
    .abort = self_abort,
};

rcc_status_t rcc_comm_self_create(rcc_comm_t *out) {
  rcc_comm_t c = calloc(1, sizeof *c);
  if (!c) return rcc_fail(RCC_ERR_NOMEM, "comm_self.c: rcc_comm_self_create: out of memory");
  c->ops = &self_ops;
  c->name = "self";
  c->rank = 0;
  c->size = 1;
  c->local_rank = 0;
  c->local_size = 1;
  *out = c;
  return RCC_OK;
}
