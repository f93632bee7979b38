/* The communicators under mpiexec -n 1, 2 and 4: all-reduce (sum, max, min) for every
 * dtype, broadcast from every root, all-gather (also in place), barrier, local rank and
 * size; the "mpi" comm both whole and chunked (RCC_MPI_MAX_COUNT=7), and "self" on every
 * rank. Each rank counts its mismatches, the counts are summed, rank 0 reports, and the
 * program exits non-zero if any rank saw one. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "comm/comm.h"

static int failures = 0;
static int world_rank = 0;

#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "rank %d: %s:%d: check failed: %s: ", world_rank, __FILE__, __LINE__,        \
              #cond);                                                                              \
      fprintf(stderr, __VA_ARGS__);                                                                \
      fprintf(stderr, " (last error: %s)\n", rcc_last_error());                                    \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static const rcc_comm_dtype_t dtypes[] = {RCC_DT_F32, RCC_DT_F64, RCC_DT_I32, RCC_DT_I64,
                                          RCC_DT_U8};
static const char *dtype_names[] = {"f32", "f64", "i32", "i64", "u8"};

/* Rank r's value at index i: integers, exact in every dtype (u8 stays below 256 even
 * summed over 4 ranks; i64 goes past 32 bits, still exact as a double). */
static double value(rcc_comm_dtype_t dt, int r, size_t i) {
  switch (dt) {
  case RCC_DT_U8: return (double)((r * 7 + i) % 60);
  case RCC_DT_I64: return (double)((i % 11) + 1) * (double)(1LL << 40) * (r % 2 ? -1 : 1) + r;
  default: return (double)(((long)i * 31 + r * 17) % 101) - 50.0;
  }
}

static size_t dtype_bytes(rcc_comm_dtype_t dt) {
  return dt == RCC_DT_U8 ? 1 : (dt == RCC_DT_F32 || dt == RCC_DT_I32) ? 4 : 8;
}

static void put(void *buf, rcc_comm_dtype_t dt, size_t i, double v) {
  switch (dt) {
  case RCC_DT_F32: ((float *)buf)[i] = (float)v; break;
  case RCC_DT_F64: ((double *)buf)[i] = v; break;
  case RCC_DT_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
  case RCC_DT_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
  case RCC_DT_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
  }
}

static double get(const void *buf, rcc_comm_dtype_t dt, size_t i) {
  switch (dt) {
  case RCC_DT_F32: return ((const float *)buf)[i];
  case RCC_DT_F64: return ((const double *)buf)[i];
  case RCC_DT_I32: return ((const int32_t *)buf)[i];
  case RCC_DT_I64: return (double)((const int64_t *)buf)[i];
  case RCC_DT_U8: return ((const uint8_t *)buf)[i];
  }
  return 0;
}

/* Counts the indices where buf differs from expect(i); reports the first. */
static int count_mismatches(const void *buf, rcc_comm_dtype_t dt, size_t n, const double *expect,
                            const char *what) {
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    double got = get(buf, dt, i);
    if (got != expect[i]) {
      if (!bad)
        fprintf(stderr, "rank %d: %s: [%zu] = %.17g, expected %.17g\n", world_rank, what, i, got,
                expect[i]);
      bad++;
    }
  }
  return bad;
}

static void check_allreduce(rcc_comm_t c, rcc_comm_dtype_t dt, const char *dname, size_t n) {
  int size = rcc_comm_size(c), rank = rcc_comm_rank(c);
  const rcc_comm_op_t ops[] = {RCC_OP_SUM, RCC_OP_MAX, RCC_OP_MIN};
  const char *op_names[] = {"sum", "max", "min"};
  void *buf = malloc(n * 8);
  double *expect = malloc(n * sizeof *expect);
  for (int o = 0; o < 3; o++) {
    for (size_t i = 0; i < n; i++) {
      put(buf, dt, i, value(dt, rank, i));
      double e = value(dt, 0, i);
      for (int r = 1; r < size; r++) {
        double v = value(dt, r, i);
        e = ops[o] == RCC_OP_SUM ? e + v : ops[o] == RCC_OP_MAX ? (v > e ? v : e) : (v < e ? v : e);
      }
      expect[i] = e;
    }
    char what[96];
    snprintf(what, sizeof what, "%s allreduce %s %s n=%zu", rcc_comm_name(c), op_names[o], dname,
             n);
    CHECK(rcc_comm_allreduce(c, buf, n, dt, ops[o]) == RCC_OK, "%s", what);
    CHECK(count_mismatches(buf, dt, n, expect, what) == 0, "%s", what);
  }
  free(buf);
  free(expect);
}

static void check_broadcast(rcc_comm_t c, rcc_comm_dtype_t dt, const char *dname, size_t n) {
  int size = rcc_comm_size(c), rank = rcc_comm_rank(c);
  void *buf = malloc(n * 8);
  double *expect = malloc(n * sizeof *expect);
  for (int root = 0; root < size; root++) {
    for (size_t i = 0; i < n; i++) {
      put(buf, dt, i, rank == root ? value(dt, root, i) : 99.0); /* 99: not a value of root */
      expect[i] = value(dt, root, i);
    }
    char what[96];
    snprintf(what, sizeof what, "%s broadcast root %d %s n=%zu", rcc_comm_name(c), root, dname, n);
    CHECK(rcc_comm_broadcast(c, buf, n, dt, root) == RCC_OK, "%s", what);
    CHECK(count_mismatches(buf, dt, n, expect, what) == 0, "%s", what);
  }
  free(buf);
  free(expect);
}

/* recv (size, n) with rank r's block at r * n; in place when send is our own block. */
static void check_allgather(rcc_comm_t c, rcc_comm_dtype_t dt, const char *dname, size_t n,
                            int in_place) {
  int size = rcc_comm_size(c), rank = rcc_comm_rank(c);
  size_t es = dtype_bytes(dt), total = (size_t)size * n;
  char *recv = malloc(total * es), *send = in_place ? recv + (size_t)rank * n * es : malloc(n * es);
  double *expect = malloc(total * sizeof *expect);
  for (size_t i = 0; i < total; i++)
    put(recv, dt, i, 99.0);
  for (size_t i = 0; i < n; i++)
    put(send, dt, i, value(dt, rank, i));
  for (int r = 0; r < size; r++)
    for (size_t i = 0; i < n; i++)
      expect[(size_t)r * n + i] = value(dt, r, i);
  char what[96];
  snprintf(what, sizeof what, "%s allgather%s %s n=%zu", rcc_comm_name(c),
           in_place ? " in place" : "", dname, n);
  CHECK(rcc_comm_allgather(c, send, recv, n, dt) == RCC_OK, "%s", what);
  CHECK(count_mismatches(recv, dt, total, expect, what) == 0, "%s", what);
  if (!in_place) free(send);
  free(recv);
  free(expect);
}

/* Every rank's (node, local rank): on each node the local ranks are 0..local_size-1. */
static void check_local_ranks(rcc_comm_t c) {
  int size = rcc_comm_size(c), lr = rcc_comm_local_rank(c), ls = rcc_comm_local_size(c);
  CHECK(ls >= 1 && ls <= size, "local size %d of %d", ls, size);
  CHECK(lr >= 0 && lr < ls, "local rank %d of %d", lr, ls);
  char host[MPI_MAX_PROCESSOR_NAME] = {0};
  int len = 0;
  MPI_Get_processor_name(host, &len);
  uint64_t hash = 1469598103934665603ULL; /* FNV-1a of the host name, unsigned: it wraps */
  for (int i = 0; i < len; i++)
    hash = (hash ^ (unsigned char)host[i]) * 1099511628211ULL;
  int64_t node = (int64_t)(hash >> 1);
  int64_t mine[2] = {node, lr}, *all = malloc(sizeof mine * size);
  CHECK(rcc_comm_allgather(c, mine, all, 2, RCC_DT_I64) == RCC_OK, "allgather of local ranks");
  int on_node = 0, seen = 0;
  for (int r = 0; r < size; r++)
    if (all[2 * r] == node) {
      on_node++;
      if (all[2 * r + 1] >= 0 && all[2 * r + 1] < 31) seen |= 1 << all[2 * r + 1];
    }
  CHECK(on_node == ls, "%d ranks on this node, local size %d", on_node, ls);
  CHECK(ls > 30 || seen == (1 << ls) - 1, "local ranks on this node are not 0..%d", ls - 1);
  free(all);
}

static void check_comm(rcc_comm_t c) {
  int mpi_rank = 0, mpi_size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &mpi_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &mpi_size);
  if (strcmp(rcc_comm_name(c), "self") == 0) {
    CHECK(rcc_comm_rank(c) == 0 && rcc_comm_size(c) == 1, "self is rank 0 of 1");
    CHECK(rcc_comm_local_rank(c) == 0 && rcc_comm_local_size(c) == 1, "self is local 0 of 1");
  } else {
    CHECK(rcc_comm_rank(c) == mpi_rank && rcc_comm_size(c) == mpi_size, "rank %d of %d",
          rcc_comm_rank(c), rcc_comm_size(c));
    check_local_ranks(c);
  }
  const size_t counts[] = {1, 10, 1000};
  for (size_t d = 0; d < sizeof dtypes / sizeof dtypes[0]; d++)
    for (size_t k = 0; k < 3; k++) {
      check_allreduce(c, dtypes[d], dtype_names[d], counts[k]);
      check_broadcast(c, dtypes[d], dtype_names[d], counts[k]);
      check_allgather(c, dtypes[d], dtype_names[d], counts[k], 0);
      check_allgather(c, dtypes[d], dtype_names[d], counts[k], 1);
    }
  CHECK(rcc_comm_barrier(c) == RCC_OK, "barrier");
  /* Empty collectives are no-ops on every rank; bad arguments fail before any message. */
  CHECK(rcc_comm_allreduce(c, NULL, 0, RCC_DT_F32, RCC_OP_SUM) == RCC_OK, "empty allreduce");
  float x = 1;
  CHECK(rcc_comm_broadcast(c, &x, 1, RCC_DT_F32, rcc_comm_size(c)) == RCC_ERR_ARG, "bad root");
  CHECK(rcc_comm_broadcast(c, &x, 1, RCC_DT_F32, -1) == RCC_ERR_ARG, "negative root");
  CHECK(rcc_comm_allreduce(c, &x, 1, (rcc_comm_dtype_t)42, RCC_OP_SUM) == RCC_ERR_ARG, "bad dtype");
  CHECK(rcc_comm_allreduce(c, &x, 1, RCC_DT_F32, (rcc_comm_op_t)42) == RCC_ERR_ARG, "bad op");
  CHECK(rcc_comm_allreduce(c, NULL, 1, RCC_DT_F32, RCC_OP_SUM) == RCC_ERR_ARG, "NULL buffer");
  rcc_clear_error(); /* the expected errors above are not the last error of a later check */
}

static void run_named(const char *name) {
  rcc_comm_t c = NULL;
  CHECK(rcc_comm_init(&c, name) == RCC_OK, "rcc_comm_init(\"%s\")", name);
  if (c) check_comm(c);
  rcc_comm_free(c);
}

int main(int argc, char **argv) {
  /* Before MPI_Init the "mpi" comm must refuse with a clear message. */
  rcc_comm_t early = NULL;
  CHECK(rcc_comm_init(&early, "mpi") == RCC_ERR_ARG, "mpi comm before MPI_Init");
  CHECK(strstr(rcc_last_error(), "MPI_Init") != NULL, "message names MPI_Init");

  MPI_Init(&argc, &argv);
  int size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);

  run_named("mpi");
  run_named("self");
  /* The chunked path: at most 7 elements per MPI call (set before the comm is made). */
  setenv("RCC_MPI_MAX_COUNT", "7", 1);
  run_named("mpi");
  unsetenv("RCC_MPI_MAX_COUNT");

  rcc_comm_t c = NULL;
  CHECK(rcc_comm_init(&c, "auto") == RCC_OK, "auto");
  if (c)
    CHECK(strcmp(rcc_comm_name(c), size > 1 ? "mpi" : "self") == 0, "auto picked %s",
          rcc_comm_name(c));
  rcc_comm_free(c);
  CHECK(rcc_comm_init(&c, "bogus") == RCC_ERR_ARG, "unknown comm name");

  /* Without a GPU, "nccl" fails with the same clear error on every rank (no hang). */
  rcc_backend_t be = NULL;
  if (rcc_backend_init(&be, "auto") == RCC_OK && rcc_backend_kind(be) == RCC_BACKEND_CPU) {
    CHECK(rcc_comm_init(&c, "nccl") == RCC_ERR_UNSUPPORTED, "nccl without a GPU");
    CHECK(strstr(rcc_last_error(), "nccl") != NULL, "message names nccl");
  }
  rcc_backend_free(be);

  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank == 0) {
    if (total)
      fprintf(stderr, "test_comm: %d failed checks over %d ranks\n", total, size);
    else
      printf("test_comm: all checks passed on %d rank%s\n", size, size == 1 ? "" : "s");
  }
  MPI_Finalize();
  return total ? 1 : 0;
}
