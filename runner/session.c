/* Session setup. MPI is initialised only under a launcher, so that plain `rcc-dist eval`
 * starts instantly and runs as root without Open MPI's root guard. */
#include "runner/session.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "rcc_version.h"

int rcc_session_launched_by_mpi(void) {
  static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (getenv(vars[i])) return 1;
  return 0;
}

/* `srun -n 4 rcc-dist ...` without a PMI plugin starts 4 unrelated copies, each believing it
 * is rank 0 of 1, all writing the same run directory: refuse that. SLURM_STEP_NUM_TASKS is
 * set by srun for the step (not in the batch script itself, where one copy is right). */
static rcc_status_t check_slurm_step(void) {
  const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
  if (!tasks || atoi(tasks) <= 1 || rcc_session_launched_by_mpi()) return RCC_OK;
  return rcc_fail(RCC_ERR_MPI,
                  "this Slurm step has %s tasks but no MPI/PMI environment: they would run as "
                  "%s independent copies writing the same files; launch with `srun --mpi=pmix` "
                  "(see `srun --mpi=list`) or mpirun",
                  tasks, tasks);
}

/* NCCL for device buffers when every rank can use it: a CUDA backend, several ranks, no
 * more ranks on a node than it has GPUs (NCCL refuses two ranks on one GPU), and the
 * backend on the GPU the NCCL communicator picks, cuda:<local rank mod devices> (not so
 * when the job names one device, `backend: cuda:1`, for every rank). The decision is
 * agreed by all ranks first, because opening NCCL is collective. Otherwise device buffers
 * are reduced over MPI through the host, which always works. */
static rcc_status_t open_device_comm(rcc_session_t *s, int devices, int device) {
  if (rcc_comm_size(s->comm) == 1) return RCC_OK;
  int usable = RCC_HAVE_NCCL && rcc_backend_kind(s->backend) == RCC_BACKEND_CUDA &&
               rcc_comm_local_size(s->comm) <= devices &&
               device == rcc_comm_local_rank(s->comm) % devices;
  int all = usable;
  RCC_TRY(rcc_comm_allreduce(s->comm, &all, 1, RCC_DT_I32, RCC_OP_MIN));
  if (!all) {
    if (rcc_backend_kind(s->backend) == RCC_BACKEND_CUDA && rcc_comm_rank(s->comm) == 0)
      RCC_INFO("GPU buffers are reduced over MPI through the host: %s",
               !RCC_HAVE_NCCL ? "this build has no NCCL"
               : usable       ? "another rank cannot use NCCL"
               : rcc_comm_local_size(s->comm) > devices
                   ? "NCCL needs a GPU per rank, and this node has more ranks than GPUs"
                   : "NCCL needs a GPU per rank, and the backend names one GPU for all "
                     "ranks (use backend: cuda or auto)");
    return RCC_OK;
  }
  return rcc_comm_init(&s->device_comm, "nccl");
}

rcc_status_t rcc_session_open(rcc_session_t *s, int *argc, char ***argv, const char *backend_name,
                              int threads) {
  *s = (rcc_session_t){0};
  RCC_TRY(check_slurm_step());
  if (rcc_session_launched_by_mpi()) {
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
      return rcc_fail(RCC_ERR_MPI, "MPI_Init_thread failed");
    s->mpi_initialized = 1;
  }
  rcc_status_t st = rcc_comm_init(&s->comm, s->mpi_initialized ? "mpi" : "self");
  if (st != RCC_OK) {
    rcc_session_close(s);
    return st;
  }
  rcc_log_set_rank(rcc_comm_rank(s->comm), rcc_comm_size(s->comm));
  /* One GPU per local rank: "cuda" and "auto" become cuda:<local rank mod devices>. */
  char name[64];
  int devices = rcc_backend_cuda_device_count();
  if (devices > 0 && (!strcmp(backend_name, "cuda") || !strcmp(backend_name, "auto")))
    snprintf(name, sizeof name, "cuda:%d", rcc_comm_local_rank(s->comm) % devices);
  else
    snprintf(name, sizeof name, "%s", backend_name);
  st = rcc_backend_init(&s->backend, name);
  if (st != RCC_OK) {
    rcc_session_close(s);
    return st;
  }
  if (threads > 0) rcc_backend_set_threads(s->backend, threads);
  int device = -1;
  if (sscanf(name, "cuda:%d", &device) != 1) device = -1;
  st = open_device_comm(s, devices, device);
  if (st != RCC_OK) {
    rcc_session_close(s);
    return st;
  }
  s->backend_comm =
      (rcc_comm_backend_t){.host = s->comm, .device = s->device_comm, .be = s->backend};
  return RCC_OK;
}

rcc_status_t rcc_session_log_placement(const rcc_session_t *s) {
  const int size = rcc_comm_size(s->comm);
  if (size <= 1) return RCC_OK;
  enum { LINE = 384 };
  char mine[LINE] = {0}, host[128] = "?";
  if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "?");
  host[sizeof host - 1] = '\0';
  snprintf(mine, sizeof mine, "%s (local %d): %s", host, rcc_comm_local_rank(s->comm),
           rcc_backend_describe(s->backend));
  char *all = malloc((size_t)size * LINE);
  if (!all) return rcc_fail(RCC_ERR_NOMEM, "out of memory for %d placement lines", size);
  rcc_status_t st = rcc_comm_allgather(s->comm, mine, all, LINE, RCC_DT_U8);
  if (st == RCC_OK && rcc_comm_rank(s->comm) == 0) {
    for (int r = 0; r < size; r++)
      RCC_INFO("rank %d on %s", r, all + (size_t)r * LINE);
    RCC_INFO("collectives: %s for control and host buffers, %s for backend buffers",
             rcc_comm_name(s->comm), rcc_comm_backend_describe(&s->backend_comm));
  }
  free(all);
  return st;
}

void rcc_session_close(rcc_session_t *s) {
  if (s->device_comm) rcc_comm_free(s->device_comm);
  if (s->backend) rcc_backend_free(s->backend);
  if (s->comm) rcc_comm_free(s->comm);
  if (s->mpi_initialized) MPI_Finalize();
  *s = (rcc_session_t){0};
}
