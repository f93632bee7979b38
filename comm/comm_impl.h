/* Private: the function table behind rcc_comm_t. Only comm/ includes this. */
#pragma once
#include "comm/comm.h"

typedef struct rcc_comm_ops {
  void (*destroy)(rcc_comm_t comm);
  rcc_status_t (*allreduce)(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt,
                            rcc_comm_op_t op);
  rcc_status_t (*broadcast)(rcc_comm_t c, void *buf, size_t n, rcc_comm_dtype_t dt, int root);
  rcc_status_t (*allgather)(rcc_comm_t c, const void *send, void *recv, size_t n,
                            rcc_comm_dtype_t dt);
  rcc_status_t (*barrier)(rcc_comm_t c);
  void (*abort)(rcc_comm_t c, int code);
} rcc_comm_ops_t;

struct rcc_comm {
  const rcc_comm_ops_t *ops;
  const char *name;
  int rank, size, local_rank, local_size;
  void *impl;
};

size_t rcc_comm_dtype_size(rcc_comm_dtype_t dt);
rcc_status_t rcc_comm_self_create(rcc_comm_t *out);
rcc_status_t rcc_comm_mpi_create(rcc_comm_t *out);
/* Defined only when built with NCCL (RCC_HAVE_NCCL). */
rcc_status_t rcc_comm_nccl_create(rcc_comm_t *out);
