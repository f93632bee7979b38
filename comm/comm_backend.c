/* Collectives on backend memory: NCCL directly, the host communicator directly for host
 * memory, else staged through a host buffer in bounded chunks. */
#include "comm/comm_backend.h"

#include <stdlib.h>

#include "comm/comm_impl.h"

/* Staging chunk: bounds the host memory a reduction of a large device buffer takes (a
 * 3072 x 3072 float64 calibration matrix is 72 MiB). */
enum { STAGING_BYTES = 16 << 20 };

/* rcc_backend_device_path: also the CPU backend under RCC_STAGES_ON_BACKEND=1, so that the
 * device paths tested on the CPU reduce their buffers the way a GPU job without NCCL does. */
static bool staged(const rcc_comm_backend_t *c) {
  return c->force_staging || (!c->device && rcc_backend_device_path(c->be));
}

rcc_status_t rcc_comm_backend_allreduce(const rcc_comm_backend_t *c, void *buf, size_t count,
                                        rcc_comm_dtype_t dt, rcc_comm_op_t op) {
  if (c->device) {
    /* NCCL runs on its own stream while the backend queues work on another: the kernels
     * that wrote buf must finish before NCCL reads it. (NCCL's call returns after its stream
     * is done, so the backend's later work sees the reduced values.) */
    RCC_TRY(rcc_backend_synchronize(c->be));
    return rcc_comm_allreduce(c->device, buf, count, dt, op);
  }
  if (!staged(c)) return rcc_comm_allreduce(c->host, buf, count, dt, op);
  if (rcc_comm_size(c->host) == 1 || count == 0) return RCC_OK;
  const size_t esize = rcc_comm_dtype_size(dt);
  const size_t chunk = STAGING_BYTES / esize;
  void *host = malloc((count < chunk ? count : chunk) * esize);
  if (!host)
    return rcc_fail(RCC_ERR_NOMEM, "comm_backend.c: out of memory for a %zu-byte staging buffer",
                    (count < chunk ? count : chunk) * esize);
  rcc_status_t st = RCC_OK;
  for (size_t off = 0; off < count && st == RCC_OK; off += chunk) {
    const size_t n = count - off < chunk ? count - off : chunk;
    char *dev = (char *)buf + off * esize;
    st = rcc_backend_download(c->be, host, dev, n * esize);
    if (st == RCC_OK) st = rcc_comm_allreduce(c->host, host, n, dt, op);
    if (st == RCC_OK) st = rcc_backend_upload(c->be, dev, host, n * esize);
  }
  free(host);
  return st;
}

const char *rcc_comm_backend_describe(const rcc_comm_backend_t *c) {
  if (c->device) return rcc_comm_name(c->device);
  if (rcc_comm_size(c->host) == 1) return rcc_comm_name(c->host);
  return staged(c) ? "mpi, staged through the host" : rcc_comm_name(c->host);
}
