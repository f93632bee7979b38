/* rcc_comm_allreduce_sum_packed under mpiexec -n 1, 2 and 4: the unskipped entries are
 * summed exactly (small integers in float), the skipped ones keep each rank's own value,
 * for skip masks that are empty, full, random at 80 % and runs at the bucket boundaries,
 * and for bucket sizes of 1 float, 3 floats and one larger than the buffer. Each rank counts
 * its mismatches, the counts are summed, and the program exits non-zero if any rank saw one. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "comm/allreduce_packed.h"

static int failures = 0;
static int world_rank = 0, world_size = 1;

/* Rank r's value at i: an integer, so sums over 4 ranks are exact in float. */
static float value(int r, int64_t i) { return (float)((i * 13 + r * 7) % 29) - 14.0f; }

static void check_case(rcc_comm_t comm, int64_t n, const uint8_t *skip, size_t bucket_bytes,
                       const char *what) {
  float *buf = malloc((size_t)n * sizeof *buf);
  for (int64_t i = 0; i < n; i++)
    buf[i] = value(world_rank, i);
  rcc_status_t st = rcc_comm_allreduce_sum_packed(comm, buf, n, skip, bucket_bytes);
  int bad = st != RCC_OK;
  for (int64_t i = 0; i < n && !bad; i++) {
    float want = value(world_rank, i);
    if (!skip || !skip[i])
      for (int r = 0; r < world_size; r++)
        if (r != world_rank) want += value(r, i);
    if (buf[i] != want) {
      fprintf(stderr, "rank %d: %s: entry %lld is %g, expected %g\n", world_rank, what,
              (long long)i, buf[i], want);
      bad = 1;
    }
  }
  if (st != RCC_OK) fprintf(stderr, "rank %d: %s: %s\n", world_rank, what, rcc_last_error());
  failures += bad;
  free(buf);
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  rcc_comm_t comm = NULL;
  if (rcc_comm_init(&comm, "auto") != RCC_OK) {
    fprintf(stderr, "rank %d: %s\n", world_rank, rcc_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
  }

  const int64_t n = 1000;
  uint8_t *none = calloc(n, 1), *all = malloc(n), *sparse = malloc(n), *edges = calloc(n, 1);
  uint64_t s = 0x9e3779b97f4a7c15ULL; /* the same draws on every rank */
  for (int64_t i = 0; i < n; i++) {
    all[i] = 1;
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    sparse[i] = (s >> 33) % 10 < 8; /* 80 % skipped, as S at 0.8 sparsity */
  }
  for (int64_t i = 0; i < 3; i++)
    edges[i] = edges[n - 1 - i] = 1; /* skipped runs at both ends */
  const size_t buckets[] = {sizeof(float), 3 * sizeof(float), RCC_ALLREDUCE_BUCKET_BYTES};
  const char *names[] = {"bucket 1", "bucket 3", "default bucket"};
  for (int b = 0; b < 3; b++) {
    char what[96];
    snprintf(what, sizeof what, "%s, nothing skipped", names[b]);
    check_case(comm, n, none, buckets[b], what);
    snprintf(what, sizeof what, "%s, skip NULL", names[b]);
    check_case(comm, n, NULL, buckets[b], what);
    snprintf(what, sizeof what, "%s, everything skipped", names[b]);
    check_case(comm, n, all, buckets[b], what);
    snprintf(what, sizeof what, "%s, 80 %% skipped", names[b]);
    check_case(comm, n, sparse, buckets[b], what);
    snprintf(what, sizeof what, "%s, skipped runs at the ends", names[b]);
    check_case(comm, n, edges, buckets[b], what);
  }
  float x = 1.0f;
  if (rcc_comm_allreduce_sum_packed(comm, &x, 1, NULL, 2) != RCC_ERR_ARG) {
    fprintf(stderr, "rank %d: a bucket smaller than a float was accepted\n", world_rank);
    failures++;
  }

  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank == 0)
    printf("test_allreduce_packed on %d rank%s: %d failure%s\n", world_size,
           world_size == 1 ? "" : "s", total, total == 1 ? "" : "s");
  free(none);
  free(all);
  free(sparse);
  free(edges);
  rcc_comm_free(comm);
  MPI_Finalize();
  return total == 0 ? 0 : 1;
}
