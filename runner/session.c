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

static void host_name(char *buf, size_t len) {
  if (gethostname(buf, len) != 0) snprintf(buf, len, "?");
  buf[len - 1] = '\0';
}

/* *shared = 1 when two ranks use the same physical GPU: the same GPU UUID (unique across
 * hosts and containers). Counting visible devices cannot tell: under Slurm's
 * --gpus-per-task=1 every rank sees one device, its own. */
static rcc_status_t gpu_shared(const rcc_session_t *s, int *shared) {
  enum { ID = 64 };
  const int size = rcc_comm_size(s->comm);
  char mine[ID] = {0};
  snprintf(mine, sizeof mine, "%s", rcc_backend_device_id(s->backend));
  char *all = malloc((size_t)size * ID);
  if (!all) return rcc_fail(RCC_ERR_NOMEM, "out of memory for %d device ids", size);
  rcc_status_t st = rcc_comm_allgather(s->comm, mine, all, ID, RCC_DT_U8);
  *shared = 0;
  for (int a = 0; st == RCC_OK && a < size && !*shared; a++)
    for (int b = a + 1; b < size && !*shared; b++)
      *shared = !strcmp(all + (size_t)a * ID, all + (size_t)b * ID);
  free(all);
  return st;
}

/* NCCL for device buffers when every rank can use it: a CUDA backend, several ranks, the
 * backend on the GPU the NCCL communicator picks (cuda:<local rank mod visible devices>;
 * not so when the job names one device, `backend: cuda:1`), and no GPU shared by two ranks
 * (NCCL refuses that). The decision is agreed by all ranks first, because opening NCCL is
 * collective. Otherwise device buffers are reduced over MPI through the host, which always
 * works. */
static rcc_status_t open_device_comm(rcc_session_t *s, int devices, int device) {
  if (rcc_comm_size(s->comm) == 1) return RCC_OK;
  const bool cuda = rcc_backend_kind(s->backend) == RCC_BACKEND_CUDA;
  int usable = RCC_HAVE_NCCL && cuda && device == rcc_comm_local_rank(s->comm) % devices;
  int all = usable;
  RCC_TRY(rcc_comm_allreduce(s->comm, &all, 1, RCC_DT_I32, RCC_OP_MIN));
  int shared = 0;
  if (all) RCC_TRY(gpu_shared(s, &shared));
  if (!all || shared) {
    if (cuda && rcc_comm_rank(s->comm) == 0)
      RCC_INFO("GPU buffers are reduced over MPI through the host: %s",
               !RCC_HAVE_NCCL ? "this build has no NCCL"
               : shared       ? "two ranks share a GPU, and NCCL needs one GPU per rank"
               : usable       ? "another rank's backend is not on the GPU NCCL would use"
                              : "the backend names one GPU for every rank; use backend: cuda "
                                "or auto for one GPU per local rank");
    return RCC_OK;
  }
  /* A job that cannot start NCCL still runs, staged through the host: all ranks see the
   * same outcome (comm_nccl.c agrees on its own failures before the collective init). */
  const int mine = rcc_comm_init(&s->device_comm, "nccl") == RCC_OK;
  int opened = mine;
  RCC_TRY(rcc_comm_allreduce(s->comm, &opened, 1, RCC_DT_I32, RCC_OP_MIN));
  if (!opened) {
    if (rcc_comm_rank(s->comm) == 0)
      RCC_WARN("NCCL did not start (%s); GPU buffers are reduced over MPI through the host",
               mine ? "on another rank" : rcc_last_error());
    if (s->device_comm) rcc_comm_free(s->device_comm);
    s->device_comm = NULL;
  }
  return RCC_OK;
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
  char mine[LINE] = {0}, host[128];
  host_name(host, sizeof host);
  const char *id = rcc_backend_device_id(s->backend);
  snprintf(mine, sizeof mine, "%s (local %d): %s%s%s", host, rcc_comm_local_rank(s->comm),
           rcc_backend_describe(s->backend), *id ? ", " : "", id);
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
