/* Communicator: one interface, back ends "self" (one process), "mpi" (host buffers) and
 * "nccl" (device buffers, bootstrapped over MPI). Collectives are blocking from the
 * caller's point of view. A rank that fails calls rcc_comm_abort() so no peer hangs. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct rcc_comm *rcc_comm_t;

typedef enum { RCC_DT_F32, RCC_DT_F64, RCC_DT_I32, RCC_DT_I64, RCC_DT_U8 } rcc_comm_dtype_t;
typedef enum { RCC_OP_SUM, RCC_OP_MAX, RCC_OP_MIN } rcc_comm_op_t;

/* "self", "mpi" (MPI must already be initialised by the caller: runner/ owns MPI_Init),
 * "nccl" (needs MPI for the ncclUniqueId broadcast and a CUDA device per local rank),
 * "auto": mpi when MPI is initialised with more than one rank, else self. */
rcc_status_t rcc_comm_init(rcc_comm_t *out, const char *name);
void rcc_comm_free(rcc_comm_t comm);
const char *rcc_comm_name(rcc_comm_t comm);
int rcc_comm_rank(rcc_comm_t comm);
int rcc_comm_size(rcc_comm_t comm);
/* Rank within the node: SLURM_LOCALID, OMPI_COMM_WORLD_LOCAL_RANK, else a shared-memory split. */
int rcc_comm_local_rank(rcc_comm_t comm);
int rcc_comm_local_size(rcc_comm_t comm);

/* In place over `count` elements. */
rcc_status_t rcc_comm_allreduce(rcc_comm_t comm, void *buf, size_t count, rcc_comm_dtype_t dt,
                                rcc_comm_op_t op);
rcc_status_t rcc_comm_broadcast(rcc_comm_t comm, void *buf, size_t count, rcc_comm_dtype_t dt,
                                int root);
/* recv holds size * count elements, rank r's block at r * count. */
rcc_status_t rcc_comm_allgather(rcc_comm_t comm, const void *send, void *recv, size_t count,
                                rcc_comm_dtype_t dt);
rcc_status_t rcc_comm_barrier(rcc_comm_t comm);
/* Ends every rank of the job (MPI_Abort under MPI, exit otherwise) after printing `why`. */
_Noreturn void rcc_comm_abort(rcc_comm_t comm, int code, const char *why);
