/* The "nccl" communicator on device buffers: all-reduce (sum, max, min), broadcast,
 * all-gather (also in place) and barrier, data moved with the CUDA backend. CTest runs it
 * as one process (an MPI singleton); `mpiexec -n G` on a machine with G GPUs runs it
 * across GPUs. Without a GPU or an NCCL build: "skipped: no GPU", exit 77. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "comm/comm.h"
#include "rcc_version.h"

static int failures = 0, rank = 0, size = 1;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", rank, __FILE__, __LINE__, #cond);      \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, " (last error: %s)\n", rcc_last_error());                                    \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

#define N 4099 /* not a multiple of anything NCCL might chunk by */

/* Rank r's value at i: small integers, exact in float whatever the sum. */
static double value(int r, int i) { return (double)((i * 7 + r * 13) % 41) - 20.0; }

static void check_floats(const float *got, const double *want, int n, const char *what) {
  int bad = 0;
  for (int i = 0; i < n; i++)
    if ((double)got[i] != want[i]) {
      if (!bad)
        fprintf(stderr, "rank %d: %s: [%d] = %g, expected %g\n", rank, what, i, (double)got[i],
                want[i]);
      bad++;
    }
  CHECK(bad == 0, "%s: %d mismatches", what, bad);
}

static void run(rcc_backend_t gpu, rcc_comm_t comm) {
  float *host = malloc(sizeof(float) * N * size);
  double *want = malloc(sizeof(double) * N * size);
  float *dev = rcc_backend_alloc(gpu, sizeof(float) * N * size);
  CHECK(dev != NULL, "device buffer");
  if (!dev) return;
  const rcc_comm_op_t ops[] = {RCC_OP_SUM, RCC_OP_MAX, RCC_OP_MIN};
  const char *names[] = {"allreduce sum", "allreduce max", "allreduce min"};
  for (int o = 0; o < 3; o++) {
    for (int i = 0; i < N; i++) {
      host[i] = (float)value(rank, i);
      double e = value(0, i);
      for (int r = 1; r < size; r++) {
        double v = value(r, i);
        e = o == 0 ? e + v : o == 1 ? (v > e ? v : e) : (v < e ? v : e);
      }
      want[i] = e;
    }
    CHECK(rcc_backend_upload(gpu, dev, host, sizeof(float) * N) == RCC_OK, "upload");
    CHECK(rcc_comm_allreduce(comm, dev, N, RCC_DT_F32, ops[o]) == RCC_OK, "%s", names[o]);
    CHECK(rcc_backend_download(gpu, host, dev, sizeof(float) * N) == RCC_OK, "download");
    check_floats(host, want, N, names[o]);
  }
  for (int root = 0; root < size; root++) {
    for (int i = 0; i < N; i++) {
      host[i] = rank == root ? (float)value(root, i) : 99.0f;
      want[i] = value(root, i);
    }
    CHECK(rcc_backend_upload(gpu, dev, host, sizeof(float) * N) == RCC_OK, "upload");
    CHECK(rcc_comm_broadcast(comm, dev, N, RCC_DT_F32, root) == RCC_OK, "broadcast %d", root);
    CHECK(rcc_backend_download(gpu, host, dev, sizeof(float) * N) == RCC_OK, "download");
    check_floats(host, want, N, "broadcast");
  }
  /* In place: our block of the receive buffer is the send buffer. */
  for (int i = 0; i < N * size; i++)
    host[i] = 99.0f;
  for (int i = 0; i < N; i++)
    host[rank * N + i] = (float)value(rank, i);
  for (int r = 0; r < size; r++)
    for (int i = 0; i < N; i++)
      want[r * N + i] = value(r, i);
  CHECK(rcc_backend_upload(gpu, dev, host, sizeof(float) * N * size) == RCC_OK, "upload");
  CHECK(rcc_comm_allgather(comm, dev + (size_t)rank * N, dev, N, RCC_DT_F32) == RCC_OK,
        "allgather in place");
  CHECK(rcc_backend_download(gpu, host, dev, sizeof(float) * N * size) == RCC_OK, "download");
  check_floats(host, want, N * size, "allgather in place");
  CHECK(rcc_comm_barrier(comm) == RCC_OK, "barrier");
  rcc_backend_release(gpu, dev);
  free(host);
  free(want);
}

int main(int argc, char **argv) {
  if (!RCC_HAVE_NCCL || rcc_backend_cuda_device_count() == 0) {
    printf("skipped: no GPU\n");
    return 77;
  }
  MPI_Init(&argc, &argv);
  rcc_comm_t comm = NULL;
  rcc_backend_t gpu = NULL;
  CHECK(rcc_comm_init(&comm, "nccl") == RCC_OK, "nccl comm");
  if (comm) {
    rank = rcc_comm_rank(comm);
    size = rcc_comm_size(comm);
    /* The backend must drive the GPU the comm chose: local_rank % device count. */
    char name[32];
    snprintf(name, sizeof name, "cuda:%d",
             rcc_comm_local_rank(comm) % rcc_backend_cuda_device_count());
    CHECK(rcc_backend_init(&gpu, name) == RCC_OK, "backend %s", name);
  }
  if (comm && gpu) run(gpu, comm);
  rcc_backend_free(gpu);
  rcc_comm_free(comm);
  int total = failures;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (rank == 0) printf("test_comm_nccl: %d failed checks on %d ranks\n", total, size);
  MPI_Finalize();
  return total ? 1 : 0;
}
