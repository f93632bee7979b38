/* Process-wide setup shared by the sub-commands: MPI (only when launched by mpirun/srun),
 * the communicator, the compute backend, and rank-aware logging. */
#pragma once
#include "backend/backend.h"
#include "comm/comm.h"
#include "comm/comm_backend.h"

typedef struct {
  rcc_comm_t comm; /* host buffers and control: mpi under a launcher, else self */
  rcc_backend_t backend;
  /* NCCL, for buffers in GPU memory: opened on `backend: cuda` with several ranks when NCCL
   * is built in and every rank has a GPU of its own; NULL otherwise. */
  rcc_comm_t device_comm;
  /* Collectives on backend memory (device_comm, or comm through the host). */
  rcc_comm_backend_t backend_comm;
  int mpi_initialized; /* we called MPI_Init and must finalize */
} rcc_session_t;

/* backend_name: "cpu", "cuda", "cuda:N", "auto"; threads 0 leaves the default. */
rcc_status_t rcc_session_open(rcc_session_t *s, int *argc, char ***argv, const char *backend_name,
                              int threads);
void rcc_session_close(rcc_session_t *s);
/* Collective: rank 0 logs one line per rank with its host, local rank and backend
 * ("rank 1 on node7 (local 1): cuda:1 (NVIDIA H100 ...)"), so a user sees which GPU or how
 * many CPU threads every rank got, then how backend buffers are reduced (nccl, mpi, or mpi
 * staged through the host). Nothing with one rank (the job line says it). */
rcc_status_t rcc_session_log_placement(const rcc_session_t *s);
/* True when a launcher (mpirun, srun with PMIx/PMI) started this process. */
int rcc_session_launched_by_mpi(void);
