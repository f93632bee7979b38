/* rcc_comm_backend_allreduce under mpiexec -n 1, 2 and 4 on the CPU backend, both ways a
 * buffer can travel without a GPU: straight to the host communicator, and staged through a
 * host buffer (force_staging, the path a CUDA job without NCCL takes; on the CPU the upload
 * and download are copies). Checked: float64 and int64 sums, exact (small integers), a max,
 * and a buffer longer than one staging chunk (16 MiB) so that the chunk loop and its last,
 * shorter chunk run. Each rank counts its mismatches; the counts are summed and the program
 * exits non-zero if any rank saw one. */
#include <mpi.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm_backend.h"

static int failures = 0;
static int world_rank = 0, world_size = 1;

/* Rank r's value at i, an integer so that the sums are exact. */
static int64_t value(int r, size_t i) { return (int64_t)((i * 13 + (size_t)r * 7) % 29) - 14; }

static int64_t expected(size_t i, rcc_comm_op_t op) {
  int64_t want = value(0, i);
  for (int r = 1; r < world_size; r++)
    want = op == RCC_OP_SUM ? want + value(r, i) : (value(r, i) > want ? value(r, i) : want);
  return want;
}

static void check(const rcc_comm_backend_t *c, size_t n, rcc_comm_dtype_t dt, rcc_comm_op_t op,
                  const char *what) {
  double *d = dt == RCC_DT_F64 ? malloc(n * sizeof *d) : NULL;
  int64_t *l = dt == RCC_DT_I64 ? malloc(n * sizeof *l) : NULL;
  for (size_t i = 0; i < n; i++)
    if (d)
      d[i] = (double)value(world_rank, i);
    else
      l[i] = value(world_rank, i);
  rcc_status_t st = rcc_comm_backend_allreduce(c, d ? (void *)d : (void *)l, n, dt, op);
  int bad = st != RCC_OK;
  if (bad) fprintf(stderr, "rank %d: %s: %s\n", world_rank, what, rcc_last_error());
  for (size_t i = 0; i < n && !bad; i++) {
    const int64_t got = d ? (int64_t)d[i] : l[i], want = expected(i, op);
    if (got != want) {
      fprintf(stderr, "rank %d: %s (%s): entry %zu is %lld, expected %lld\n", world_rank, what,
              rcc_comm_backend_describe(c), i, (long long)got, (long long)want);
      bad = 1;
    }
  }
  failures += bad;
  free(d);
  free(l);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  rcc_comm_t comm = NULL;
  rcc_backend_t be = NULL;
  if (rcc_comm_init(&comm, "auto") != RCC_OK || rcc_backend_init(&be, "cpu") != RCC_OK) {
    fprintf(stderr, "rank %d: %s\n", world_rank, rcc_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  const size_t chunk_doubles = (16u << 20) / sizeof(double);
  for (int staging = 0; staging <= 1; staging++) {
    const rcc_comm_backend_t c = {.host = comm, .be = be, .force_staging = staging};
    check(&c, 1, RCC_DT_F64, RCC_OP_SUM, "one double");
    check(&c, 1000, RCC_DT_I64, RCC_OP_SUM, "1000 int64");
    check(&c, 777, RCC_DT_F64, RCC_OP_MAX, "max of 777 doubles");
    check(&c, 2 * chunk_doubles + 3, RCC_DT_F64, RCC_OP_SUM, "two chunks and 3 doubles");
  }

  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank == 0)
    printf("%s: %d failure(s) over %d rank(s)\n", total ? "FAIL" : "ok", total, world_size);
  rcc_backend_free(be);
  rcc_comm_free(comm);
  MPI_Finalize();
  return total ? 1 : 0;
}
