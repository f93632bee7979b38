/* Collectives on buffers in a compute backend's memory. A job on `backend: cuda` holds two
 * communicators: the host one (mpi or self: control, host buffers) and, when NCCL is built
 * in and each rank has a GPU of its own, an NCCL one that reduces device buffers in place.
 * Without the NCCL one, a device buffer is staged through the host and reduced over the host
 * communicator (slower, always available). On the CPU backend the buffer is host memory and
 * goes straight to the host communicator. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "backend/backend.h"
#include "comm/comm.h"

typedef struct {
  rcc_comm_t host;   /* required */
  rcc_comm_t device; /* NCCL on the backend's GPU, or NULL */
  rcc_backend_t be;  /* whose memory the buffers are in */
  /* Stage through the host even where the buffer could go straight to `host`: lets the
   * CPU-only tests run the staging path (upload and download are copies on the CPU). */
  bool force_staging;
} rcc_comm_backend_t;

/* In place over `count` elements of buf (backend memory); blocking, like comm.h. */
rcc_status_t rcc_comm_backend_allreduce(const rcc_comm_backend_t *c, void *buf, size_t count,
                                        rcc_comm_dtype_t dt, rcc_comm_op_t op);
/* "nccl", "mpi", "self", or "mpi, staged through the host": for the placement log. */
const char *rcc_comm_backend_describe(const rcc_comm_backend_t *c);
