/* Tests of the checkpoint writer and reader (io/checkpoint.h) in one process (no MPI): round
 * trips of every dtype in 1 and 2 dimensions (zero-length and nested names included) with a
 * history past 64 KiB; corrupted files (a flipped data byte, a truncated file, not HDF5, a
 * missing attribute, a wrong format version, a dataset larger than its file) give
 * RCC_ERR_FORMAT naming the file and the dataset; failed writes leave nothing behind and
 * never replace an existing checkpoint. */
#include "tests/harness.h"

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"

static const char *scratch_path(const char *name) {
  static char buf[4][4096];
  static int slot = 0;
  slot = (slot + 1) % 4;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", rcc_scratch_dir(), name);
  return buf[slot];
}

static int exists(const char *path) { return access(path, F_OK) == 0; }

static const char *tmp_of(const char *path) {
  static char buf[4200];
  snprintf(buf, sizeof buf, "%s.tmp", path);
  return buf;
}

/* ---- a checkpoint with every dtype ------------------------------------------------------ */

enum { N_SETS = 8 };

static float f32[3][4];
static double f64[5];
static int64_t i64[3] = {-(1LL << 40), 0, (1LL << 62) + 7};
static int32_t i32[2][2] = {{-2147483647 - 1, 1}, {2, 2147483647}};
static uint8_t u8[7] = {0, 1, 2, 127, 128, 254, 255};
static float g32[16];

static const rcc_ckpt_dataset_t sets[N_SETS] = {
    {"layers/vision_model.encoder.layers.0.mlp.fc1/U", RCC_DTYPE_F32, 2, {3, 4}, 0, f32},
    {"layers/vision_model.encoder.layers.0.mlp.fc1/alpha", RCC_DTYPE_F64, 1, {5, 0}, 0, f64},
    {"layers/text/deeper/still/idx", RCC_DTYPE_I64, 1, {3, 0}, 0, i64},
    {"counts", RCC_DTYPE_I32, 2, {2, 2}, 0, i32},
    {"mask", RCC_DTYPE_U8, 1, {7, 0}, 0, u8},
    {"layers/empty/S", RCC_DTYPE_F32, 1, {0, 0}, 0, NULL},
    {"layers/empty/V", RCC_DTYPE_F64, 2, {0, 3}, 0, NULL},
    {"layers/w", RCC_DTYPE_F32, 1, {16, 0}, 0, g32},
};

static char *long_history(size_t n) {
  static const char unit[] = "{\"stage\":\"dare\",\"retention\":0.987},\n";
  char *h = malloc(n + 1);
  assert_non_null(h);
  for (size_t i = 0; i < n; i++)
    h[i] = unit[i % (sizeof unit - 1)];
  h[n] = '\0';
  return h;
}

static void fill_data(void) {
  uint64_t state = 42;
  rcc_fill_uniform(&f32[0][0], 12, -1.0f, 1.0f, &state);
  rcc_fill_uniform(g32, 16, -3.0f, 3.0f, &state);
  for (int i = 0; i < 5; i++)
    f64[i] = 1.0 / (i + 3) + 1e-300;
}

static rcc_ckpt_meta_t test_meta(int stage, char *history) {
  rcc_ckpt_meta_t m = {.stage_index = stage, .history = history};
  for (int i = 0; i < 64; i++)
    m.fingerprint[i] = "0123456789abcdef"[(i * 7 + stage) % 16];
  return m;
}

/* Writes the full test checkpoint at `name` (stage index `stage`, a short history). */
static const char *write_full(const char *name, int stage) {
  const char *path = scratch_path(name);
  fill_data();
  rcc_ckpt_meta_t m = test_meta(stage, "[{\"stage\":\"dare\"}]");
  assert_int_equal(rcc_ckpt_write(path, &m, sets, N_SETS), RCC_OK);
  return path;
}

static void check_full(const rcc_ckpt_t *ck) {
  assert_int_equal(ck->n, N_SETS);
  assert_int_equal(ck->format_version, RCC_CKPT_FORMAT_VERSION);
  for (int i = 0; i < N_SETS; i++) {
    const rcc_tensor_t *t = rcc_ckpt_find(ck, sets[i].name);
    assert_non_null(t);
    assert_int_equal(t->dtype, sets[i].dtype);
    assert_int_equal(t->ndim, sets[i].ndim);
    int64_t numel = 1;
    for (int k = 0; k < t->ndim; k++) {
      assert_int_equal(t->shape[k], sets[i].shape[k]);
      numel *= sets[i].shape[k];
    }
    assert_int_equal(t->numel, numel);
    if (numel) assert_memory_equal(t->data, sets[i].data, (size_t)numel * rcc_dtype_size(t->dtype));
  }
  assert_null(rcc_ckpt_find(ck, "layers"));
  assert_null(rcc_ckpt_find(ck, "nope"));
}

static void test_round_trip(void **state) {
  (void)state;
  const char *path = scratch_path("round.h5");
  fill_data();
  char *history = long_history(100000); /* past 64 KiB: dense attribute storage */
  rcc_ckpt_meta_t m = test_meta(3, history);
  assert_int_equal(rcc_ckpt_write(path, &m, sets, N_SETS), RCC_OK);
  assert_false(exists(tmp_of(path)));

  rcc_ckpt_t ck;
  assert_int_equal(rcc_ckpt_read(path, &ck), RCC_OK);
  check_full(&ck);
  assert_string_equal(ck.meta.fingerprint, m.fingerprint);
  assert_int_equal(ck.meta.stage_index, 3);
  assert_non_null(ck.meta.history);
  assert_int_equal(strlen(ck.meta.history), 100000);
  assert_string_equal(ck.meta.history, history);
  rcc_ckpt_free(&ck);
  assert_int_equal(ck.n, 0);
  assert_null(ck.datasets);
  free(history);
}

static void test_no_history_no_datasets(void **state) {
  (void)state;
  const char *path = scratch_path("empty.h5");
  rcc_ckpt_meta_t m = test_meta(0, NULL);
  assert_int_equal(rcc_ckpt_write(path, &m, NULL, 0), RCC_OK);
  rcc_ckpt_t ck;
  assert_int_equal(rcc_ckpt_read(path, &ck), RCC_OK);
  assert_int_equal(ck.n, 0);
  assert_null(ck.meta.history);
  assert_int_equal(ck.meta.stage_index, 0);
  assert_string_equal(ck.meta.fingerprint, m.fingerprint);
  rcc_ckpt_free(&ck);
}

/* ---- corrupted files ----------------------------------------------------------------------- */

/* Reads `path`, expecting `st` and a message that contains `what` (and the path). */
static void expect_read_error(const char *path, rcc_status_t st, const char *what) {
  rcc_ckpt_t ck;
  rcc_status_t got = rcc_ckpt_read(path, &ck);
  if (got != st || !strstr(rcc_last_error(), path) || (what && !strstr(rcc_last_error(), what)))
    fail_msg("read %s: got %s, expected %s naming '%s': %s", path, rcc_status_str(got),
             rcc_status_str(st), what ? what : "", rcc_last_error());
  assert_int_equal(ck.n, 0);
  assert_null(ck.datasets);
}

static void test_flipped_data_byte(void **state) {
  (void)state;
  const char *path = write_full("flip.h5", 1);
  hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
  assert_true(file >= 0);
  hid_t dset = H5Dopen2(file, "layers/w", H5P_DEFAULT);
  assert_true(dset >= 0);
  haddr_t offset = H5Dget_offset(dset);
  assert_true(offset != HADDR_UNDEF);
  H5Dclose(dset);
  H5Fclose(file);

  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  assert_int_equal(fseek(f, (long)offset + 9, SEEK_SET), 0);
  int c = fgetc(f);
  assert_int_equal(fseek(f, (long)offset + 9, SEEK_SET), 0);
  fputc(c ^ 0x10, f);
  assert_int_equal(fclose(f), 0);
  expect_read_error(path, RCC_ERR_FORMAT, "'layers/w'");
  assert_non_null(strstr(rcc_last_error(), "CRC"));
}

static void test_truncated(void **state) {
  (void)state;
  const char *path = write_full("trunc.h5", 1);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(truncate(path, st.st_size / 2), 0);
  expect_read_error(path, RCC_ERR_FORMAT, NULL);
}

static void test_not_hdf5(void **state) {
  (void)state;
  const char *path = scratch_path("text.h5");
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  for (int i = 0; i < 1000; i++)
    fputs("not an HDF5 file\n", f);
  assert_int_equal(fclose(f), 0);
  expect_read_error(path, RCC_ERR_FORMAT, NULL);
}

static void test_missing_file(void **state) {
  (void)state;
  expect_read_error(scratch_path("absent.h5"), RCC_ERR_IO, "No such file");
}

/* Opens a written checkpoint for editing with HDF5 directly. */
static hid_t open_rw(const char *path) {
  hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
  assert_true(file >= 0);
  return file;
}

static void test_missing_crc_attribute(void **state) {
  (void)state;
  const char *path = write_full("nocrc.h5", 1);
  hid_t file = open_rw(path);
  assert_true(H5Adelete_by_name(file, "counts", "crc32", H5P_DEFAULT) >= 0);
  H5Fclose(file);
  expect_read_error(path, RCC_ERR_FORMAT, "'counts'");
  assert_non_null(strstr(rcc_last_error(), "crc32"));
}

static void test_missing_root_attribute(void **state) {
  (void)state;
  const char *path = write_full("nofp.h5", 1);
  hid_t file = open_rw(path);
  assert_true(H5Adelete(file, "fingerprint") >= 0);
  H5Fclose(file);
  expect_read_error(path, RCC_ERR_FORMAT, "fingerprint");
}

static void test_wrong_format_version(void **state) {
  (void)state;
  const char *path = write_full("v2.h5", 1);
  hid_t file = open_rw(path);
  hid_t attr = H5Aopen(file, "format_version", H5P_DEFAULT);
  assert_true(attr >= 0);
  int v = RCC_CKPT_FORMAT_VERSION + 1;
  assert_true(H5Awrite(attr, H5T_NATIVE_INT, &v) >= 0);
  H5Aclose(attr);
  H5Fclose(file);
  expect_read_error(path, RCC_ERR_FORMAT, "format_version 2");
}

/* A dataset of 2^30 x 4 doubles (never written, so never allocated) in a file of a few
 * KiB: refused before the reader allocates 32 GiB. */
static void test_dataset_larger_than_file(void **state) {
  (void)state;
  const char *path = write_full("huge.h5", 1);
  hid_t file = open_rw(path);
  hsize_t dims[2] = {(hsize_t)1 << 30, 4};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t dset =
      H5Dcreate2(file, "huge", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  assert_true(dset >= 0);
  H5Dclose(dset);
  H5Sclose(space);
  H5Fclose(file);
  expect_read_error(path, RCC_ERR_FORMAT, "'huge'");
}

/* ---- failed writes ---------------------------------------------------------------------- */

static void test_write_missing_directory(void **state) {
  (void)state;
  const char *path = scratch_path("no/such/dir/ck.h5");
  rcc_ckpt_meta_t m = test_meta(1, NULL);
  assert_int_equal(rcc_ckpt_write(path, &m, sets, N_SETS), RCC_ERR_IO);
  assert_non_null(strstr(rcc_last_error(), "ck.h5"));
  assert_false(exists(path));
  assert_false(exists(tmp_of(path)));
  assert_false(exists(scratch_path("no")));
}

static void test_write_bad_arguments(void **state) {
  (void)state;
  const char *path = scratch_path("bad.h5");
  rcc_ckpt_meta_t m = test_meta(1, NULL);
  rcc_ckpt_dataset_t d = sets[0];
  d.dtype = RCC_DTYPE_F16;
  assert_int_equal(rcc_ckpt_write(path, &m, &d, 1), RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "F16"));
  d = sets[0];
  d.ndim = 3;
  assert_int_equal(rcc_ckpt_write(path, &m, &d, 1), RCC_ERR_ARG);
  d = sets[0];
  d.name = "/absolute";
  assert_int_equal(rcc_ckpt_write(path, &m, &d, 1), RCC_ERR_ARG);
  d = sets[0];
  d.data = NULL;
  assert_int_equal(rcc_ckpt_write(path, &m, &d, 1), RCC_ERR_ARG);
  assert_int_equal(rcc_ckpt_write(path, NULL, sets, 1), RCC_ERR_ARG);
  assert_false(exists(path));
  assert_false(exists(tmp_of(path)));
}

/* A write that fails inside HDF5 (a duplicate name, found when the second is created)
 * leaves the previous checkpoint as it was; a complete one replaces it. */
static void test_replace_only_when_complete(void **state) {
  (void)state;
  const char *path = write_full("replace.h5", 1);
  rcc_ckpt_dataset_t dup[2] = {sets[0], sets[0]};
  rcc_ckpt_meta_t m = test_meta(2, NULL);
  assert_int_equal(rcc_ckpt_write(path, &m, dup, 2), RCC_ERR_IO);
  assert_non_null(strstr(rcc_last_error(), sets[0].name));
  assert_false(exists(tmp_of(path)));

  rcc_ckpt_t ck;
  assert_int_equal(rcc_ckpt_read(path, &ck), RCC_OK);
  assert_int_equal(ck.meta.stage_index, 1);
  check_full(&ck);
  rcc_ckpt_free(&ck);

  assert_int_equal(rcc_ckpt_write(path, &m, sets, 1), RCC_OK);
  assert_int_equal(rcc_ckpt_read(path, &ck), RCC_OK);
  assert_int_equal(ck.meta.stage_index, 2);
  assert_int_equal(ck.n, 1);
  rcc_ckpt_free(&ck);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_no_history_no_datasets),
      cmocka_unit_test(test_flipped_data_byte),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_not_hdf5),
      cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_missing_crc_attribute),
      cmocka_unit_test(test_missing_root_attribute),
      cmocka_unit_test(test_wrong_format_version),
      cmocka_unit_test(test_dataset_larger_than_file),
      cmocka_unit_test(test_write_missing_directory),
      cmocka_unit_test(test_write_bad_arguments),
      cmocka_unit_test(test_replace_only_when_complete),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
