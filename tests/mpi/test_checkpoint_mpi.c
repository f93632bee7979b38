/* The checkpoint writer under mpiexec -n 1, 2 and 4: dataset i is owned by rank i % size,
 * each rank holds only the data it owns, and every rank reads the whole file back and
 * checks every value, with independent and with collective transfer (RCC_CKPT_COLLECTIVE).
 * Failures on one rank alone (an owner without data; an H5Dwrite that fails, through the
 * H5Dwrite defined below) make every rank return an error without hanging, leave no PATH.tmp
 * and keep the previous PATH. Each rank counts its failed checks, the counts are summed, and
 * the program exits non-zero if any rank saw one. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "tests/harness.h"

static int failures = 0;
static int world_rank = 0, world_size = 1;

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

/* The rank whose next H5Dwrite reports a failure (-1: none). This definition takes the place
 * of libhdf5's in this program: it runs the real write (so a collective write is entered
 * by every rank) and then fails, as an I/O error found during the write would. */
static int fail_write_rank = -1;

herr_t H5Dwrite(hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id,
                hid_t dxpl_id, const void *buf) {
  static herr_t (*real)(hid_t, hid_t, hid_t, hid_t, hid_t, const void *);
  if (!real) *(void **)&real = dlsym(RTLD_NEXT, "H5Dwrite");
  herr_t st = real(dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf);
  return world_rank == fail_write_rank ? -1 : st;
}

enum { N_SETS = 11 };
static const rcc_dtype_t dtypes[] = {RCC_DTYPE_F32, RCC_DTYPE_F64, RCC_DTYPE_I64, RCC_DTYPE_I32,
                                     RCC_DTYPE_U8};

/* Element j of dataset i: an integer, exact in every dtype (below 256 for U8). */
static double value(int i, int64_t j) { return (double)((i * 37 + j * 11) % 251); }

static void put(void *buf, rcc_dtype_t dt, int64_t j, double v) {
  switch (dt) {
  case RCC_DTYPE_F32: ((float *)buf)[j] = (float)v; break;
  case RCC_DTYPE_F64: ((double *)buf)[j] = v; break;
  case RCC_DTYPE_I64: ((int64_t *)buf)[j] = (int64_t)v; break;
  case RCC_DTYPE_I32: ((int32_t *)buf)[j] = (int32_t)v; break;
  default: ((uint8_t *)buf)[j] = (uint8_t)v; break;
  }
}

static double get(const void *buf, rcc_dtype_t dt, int64_t j) {
  switch (dt) {
  case RCC_DTYPE_F32: return ((const float *)buf)[j];
  case RCC_DTYPE_F64: return ((const double *)buf)[j];
  case RCC_DTYPE_I64: return (double)((const int64_t *)buf)[j];
  case RCC_DTYPE_I32: return ((const int32_t *)buf)[j];
  default: return ((const uint8_t *)buf)[j];
  }
}

static char names[N_SETS][64];
static rcc_ckpt_dataset_t sets[N_SETS];

/* Dataset i: dtype i % 5, 1-D for even i, 2-D for odd i, dataset 4 has zero elements;
 * owned by rank i % size, which alone gets its data. */
static void make_sets(void) {
  for (int i = 0; i < N_SETS; i++) {
    rcc_ckpt_dataset_t *d = &sets[i];
    snprintf(names[i], sizeof names[i], "layers/block%d.mlp/%s%d", i / 3, i % 2 ? "U" : "V", i);
    *d = (rcc_ckpt_dataset_t){.name = names[i], .dtype = dtypes[i % 5], .owner = i % world_size};
    d->ndim = i % 2 ? 2 : 1;
    d->shape[0] = i == 4 ? 0 : 3 + i;
    d->shape[1] = d->ndim == 2 ? 2 + i % 3 : 0;
    int64_t numel = d->shape[0] * (d->ndim == 2 ? d->shape[1] : 1);
    if (d->owner != world_rank || numel == 0) continue;
    void *buf = malloc((size_t)numel * rcc_dtype_size(d->dtype));
    if (!buf) abort();
    for (int64_t j = 0; j < numel; j++)
      put(buf, d->dtype, j, value(i, j));
    d->data = buf;
  }
}

static rcc_ckpt_meta_t test_meta(int stage) {
  rcc_ckpt_meta_t m = {.stage_index = stage, .history = "[{\"stage\":\"nullu\"}]"};
  memset(m.fingerprint, 'f', 64);
  return m;
}

/* Every rank reads `path` alone and checks every value; returns the stage index read. */
static int check_file(const char *path, const char *what) {
  rcc_ckpt_t ck;
  rcc_status_t st = rcc_ckpt_read(path, &ck);
  CHECK(st == RCC_OK, "%s: read", what);
  if (st != RCC_OK) return -1;
  CHECK(ck.n == N_SETS, "%s: %d datasets", what, ck.n);
  CHECK(ck.meta.history && strcmp(ck.meta.history, "[{\"stage\":\"nullu\"}]") == 0, "%s: history",
        what);
  for (int i = 0; i < N_SETS; i++) {
    const rcc_tensor_t *t = rcc_ckpt_find(&ck, sets[i].name);
    CHECK(t != NULL, "%s: %s missing", what, sets[i].name);
    if (!t) continue;
    CHECK(t->dtype == sets[i].dtype && t->ndim == sets[i].ndim && t->shape[0] == sets[i].shape[0] &&
              (t->ndim == 1 || t->shape[1] == sets[i].shape[1]),
          "%s: %s dtype or shape", what, t->name);
    int bad = 0;
    for (int64_t j = 0; j < t->numel; j++)
      bad += get(t->data, t->dtype, j) != value(i, j);
    CHECK(bad == 0, "%s: %s: %d wrong values", what, t->name, bad);
  }
  int stage = ck.meta.stage_index;
  rcc_ckpt_free(&ck);
  return stage;
}

static void test_round_trip(const char *dir, const char *mode) {
  char path[4200];
  snprintf(path, sizeof path, "%s/round_%s.h5", dir, mode);
  rcc_ckpt_meta_t m = test_meta(5);
  CHECK(rcc_ckpt_write(path, &m, sets, N_SETS) == RCC_OK, "%s write", mode);
  CHECK(check_file(path, mode) == 5, "%s stage index", mode);
}

/* `break_it` makes the last rank fail, with a message containing `cause`; every rank must
 * return an error (the others naming the last rank), and PATH keep stage 1. */
static void test_failure(const char *dir, const char *what, void (*break_it)(int on),
                         const char *cause) {
  char path[4200], tmp[4300];
  snprintf(path, sizeof path, "%s/fail.h5", dir);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  rcc_ckpt_meta_t m = test_meta(1);
  CHECK(rcc_ckpt_write(path, &m, sets, N_SETS) == RCC_OK, "%s: first write", what);
  m.stage_index = 2;
  break_it(1);
  rcc_status_t st = rcc_ckpt_write(path, &m, sets, N_SETS);
  break_it(0);
  CHECK(st != RCC_OK, "%s: the failed write returned ok", what);
  char expect[64];
  snprintf(expect, sizeof expect, "rank %d failed", world_size - 1);
  CHECK(strstr(rcc_last_error(), world_rank == world_size - 1 ? cause : expect), "%s: the message",
        what);
  CHECK(access(tmp, F_OK) != 0, "%s: %s left behind", what, tmp);
  CHECK(check_file(path, what) == 1, "%s: previous checkpoint replaced", what);
  MPI_Barrier(MPI_COMM_WORLD);
  if (world_rank == 0) unlink(path);
}

/* The last rank owns dataset size-1 but passes no data for it. */
static void owner_without_data(int on) {
  static const void *saved;
  rcc_ckpt_dataset_t *d = &sets[world_size - 1];
  if (world_rank != world_size - 1) return;
  if (on) saved = d->data;
  d->data = on ? NULL : saved;
}

/* The last rank's H5Dwrite fails. */
static void write_fails(int on) { fail_write_rank = on ? world_size - 1 : -1; }

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  /* A rank left waiting in a collective call is a failure, not a hung test run. */
  alarm(120);
  MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world_size);
  /* One directory for all ranks: rank 0's scratch directory. */
  char dir[4096] = "";
  if (world_rank == 0) snprintf(dir, sizeof dir, "%s", rcc_scratch_dir());
  MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
  make_sets();

  const char *modes[] = {"independent", "collective"};
  for (int c = 0; c < 2; c++) {
    setenv("RCC_CKPT_COLLECTIVE", c ? "1" : "0", 1);
    test_round_trip(dir, modes[c]);
    test_failure(dir, "owner without data", owner_without_data, "passed no data");
    test_failure(dir, c ? "H5Dwrite fails (collective)" : "H5Dwrite fails", write_fails,
                 "H5Dwrite(");
  }

  for (int i = 0; i < N_SETS; i++)
    free((void *)sets[i].data);
  int total = 0;
  MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (world_rank == 0) {
    if (total)
      fprintf(stderr, "test_checkpoint_mpi: %d failed checks over %d ranks\n", total, world_size);
    else
      printf("test_checkpoint_mpi: all checks passed on %d rank%s\n", world_size,
             world_size == 1 ? "" : "s");
  }
  MPI_Finalize();
  return total ? 1 : 0;
}
