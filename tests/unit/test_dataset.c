/* IDX reader and datasets: the real Fashion-MNIST files (Debian's dataset-fashion-mnist),
 * IDX files this test writes (plain, gzip, truncated, corrupt), and folder and CSV
 * datasets built in the scratch directory. Every error asserts the status and that the
 * message names the file (and the line for CSV). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/dataset.h"
#include "tests/harness.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- helpers ------------------------------------------------------------------------ */

static const char *scratch(const char *name) {
  static char path[8][4096];
  static int slot = 0;
  slot = (slot + 1) % 8;
  snprintf(path[slot], sizeof path[slot], "%s/%s", rcc_scratch_dir(), name);
  return path[slot];
}

static void run(const char *fmt, const char *arg) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, fmt, arg, arg);
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

static void write_text(const char *path, const char *text) {
  write_bytes(path, text, strlen(text));
}

static void write_gzip(const char *path, const void *data, size_t n) {
  gzFile f = gzopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(gzwrite(f, data, (unsigned)n), (int)n);
  assert_int_equal(gzclose(f), Z_OK);
}

/* An IDX header: magic 00 00 type ndim, then big-endian dims. Returns its length. */
static size_t idx_header(uint8_t *b, int type, int ndim, const uint32_t *dims) {
  b[0] = b[1] = 0;
  b[2] = (uint8_t)type;
  b[3] = (uint8_t)ndim;
  for (int d = 0; d < ndim; d++)
    for (int i = 0; i < 4; i++)
      b[4 + 4 * d + i] = (uint8_t)(dims[d] >> (24 - 8 * i));
  return 4 + 4 * (size_t)ndim;
}

static void assert_failed(rcc_status_t got, rcc_status_t st, const char *path, const char *also) {
  const char *msg = rcc_last_error();
  if (got != st)
    fail_msg("status %s, expected %s (message: %s)", rcc_status_str(got), rcc_status_str(st), msg);
  if (!strstr(msg, path)) fail_msg("message does not name %s: %s", path, msg);
  if (also && !strstr(msg, also)) fail_msg("message does not say '%s': %s", also, msg);
}

/* ---- IDX ---------------------------------------------------------------------------- */

static void test_idx_fashion_mnist(void **state) {
  rcc_idx_t images, labels;
  if (rcc_idx_load(FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &images) != RCC_OK)
    fail_msg("%s (Debian package dataset-fashion-mnist)", rcc_last_error());
  assert_int_equal(images.ndim, 3);
  assert_int_equal(images.dims[0], 10000);
  assert_int_equal(images.dims[1], 28);
  assert_int_equal(images.dims[2], 28);
  assert_int_equal(rcc_idx_load(FMNIST_DIR "/t10k-labels-idx1-ubyte.gz", &labels), RCC_OK);
  assert_int_equal(labels.ndim, 1);
  assert_int_equal(labels.dims[0], 10000);
  int counts[256] = {0};
  for (int i = 0; i < 10000; i++)
    counts[labels.data[i]]++;
  for (int c = 0; c < 10; c++)
    assert_int_equal(counts[c], 1000);
  /* Real photos of clothes: the first image has both black background and bright cloth. */
  int lo = 255, hi = 0;
  for (int i = 0; i < 28 * 28; i++) {
    lo = images.data[i] < lo ? images.data[i] : lo;
    hi = images.data[i] > hi ? images.data[i] : hi;
  }
  assert_int_equal(lo, 0);
  assert_true(hi > 200);
  rcc_idx_free(&images);
  rcc_idx_free(&labels);
  assert_null(images.data);
}

static void test_idx_plain_and_gzip(void **state) {
  uint8_t buf[64];
  uint32_t dims[2] = {3, 5};
  size_t h = idx_header(buf, 0x08, 2, dims);
  for (int i = 0; i < 15; i++)
    buf[h + i] = (uint8_t)(i * 17);
  const char *plain = scratch("small.idx"), *gz = scratch("small.idx.gz");
  write_bytes(plain, buf, h + 15);
  write_gzip(gz, buf, h + 15);
  const char *paths[2] = {plain, gz};
  for (int k = 0; k < 2; k++) {
    rcc_idx_t idx;
    assert_int_equal(rcc_idx_load(paths[k], &idx), RCC_OK);
    assert_int_equal(idx.ndim, 2);
    assert_int_equal(idx.dims[0], 3);
    assert_int_equal(idx.dims[1], 5);
    assert_memory_equal(idx.data, buf + h, 15);
    rcc_idx_free(&idx);
  }
}

static void test_idx_errors(void **state) {
  rcc_idx_t idx;
  uint8_t buf[4096] = {0};
  const char *p = scratch("missing.idx");
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_IO, p, NULL);

  uint32_t dims[3] = {10, 28, 28};
  size_t h = idx_header(buf, 0x08, 3, dims);
  p = scratch("truncated.idx");
  write_bytes(p, buf, h + 100);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "truncated");
  p = scratch("truncated.idx.gz");
  write_gzip(p, buf, h + 100);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "truncated");
  p = scratch("short_header.idx");
  write_bytes(p, buf, 9);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "header");

  /* A header that promises 4 GB on a tiny file fails without allocating it. */
  uint32_t huge[3] = {60000, 65535, 65535};
  h = idx_header(buf, 0x08, 3, huge);
  p = scratch("huge.idx");
  write_bytes(p, buf, h + 10);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "dimension");
  uint32_t big[2] = {40000, 40000};
  h = idx_header(buf, 0x08, 2, big);
  p = scratch("big.idx");
  write_bytes(p, buf, h + 10);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "truncated");

  uint32_t one[1] = {4};
  h = idx_header(buf, 0x08, 1, one);
  p = scratch("extra.idx");
  write_bytes(p, buf, h + 5);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "after");
  h = idx_header(buf, 0x0D, 1, one);
  p = scratch("float.idx");
  write_bytes(p, buf, h + 16);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_UNSUPPORTED, p, "0x0d");
  uint32_t four[4] = {1, 1, 1, 1};
  h = idx_header(buf, 0x08, 4, four);
  p = scratch("4d.idx");
  write_bytes(p, buf, h + 1);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_UNSUPPORTED, p, "4 dimensions");
  uint32_t zero[1] = {0};
  h = idx_header(buf, 0x08, 1, zero);
  p = scratch("zero.idx");
  write_bytes(p, buf, h);
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "dimension 0");

  p = scratch("text.idx");
  write_text(p, "not an idx file\n");
  assert_failed(rcc_idx_load(p, &idx), RCC_ERR_FORMAT, p, "not an IDX");

  /* A gzip stream damaged in the middle: zlib's error reaches the message. */
  h = idx_header(buf, 0x08, 1, (uint32_t[]){3000});
  for (size_t i = 0; i < 3000; i++)
    buf[h + i] = (uint8_t)(i * 7919 >> 3);
  p = scratch("corrupt.idx.gz");
  write_gzip(p, buf, h + 3000);
  FILE *f = fopen(p, "r+b");
  assert_non_null(f);
  fseek(f, 30, SEEK_SET);
  fwrite("\xff\xff\xff\xff\xff\xff\xff\xff", 1, 8, f);
  fclose(f);
  assert_int_not_equal(rcc_idx_load(p, &idx), RCC_OK);
  assert_non_null(strstr(rcc_last_error(), p));
  assert_null(idx.data);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------ */

static void test_fmnist(void **state) {
  static const char *names[10] = {"t-shirt or top", "trouser", "pullover", "dress", "coat",
                                  "sandal",         "shirt",   "sneaker",  "bag",   "ankle boot"};
  unsetenv("RCC_FMNIST_DIR");
  rcc_dataset_t *ds;
  assert_int_equal(rcc_dataset_open("fmnist:test", &ds), RCC_OK);
  assert_int_equal(rcc_dataset_size(ds), 10000);
  assert_int_equal(rcc_dataset_num_classes(ds), 10);
  for (int c = 0; c < 10; c++)
    assert_string_equal(rcc_dataset_class_name(ds, c), names[c]);
  assert_null(rcc_dataset_class_name(ds, 10));
  assert_null(rcc_dataset_caption(ds, 0));
  int counts[10] = {0};
  for (int i = 0; i < 10000; i++) {
    int l = rcc_dataset_label(ds, i);
    assert_in_range(l, 0, 9);
    counts[l]++;
  }
  for (int c = 0; c < 10; c++)
    assert_int_equal(counts[c], 1000);

  rcc_idx_t raw;
  assert_int_equal(rcc_idx_load(FMNIST_DIR "/t10k-images-idx3-ubyte.gz", &raw), RCC_OK);
  rcc_image_t im;
  assert_int_equal(rcc_dataset_image(ds, 9999, &im), RCC_OK);
  assert_int_equal(im.width, 28);
  assert_int_equal(im.height, 28);
  assert_int_equal(im.channels, 1);
  assert_memory_equal(im.pixels, raw.data + (size_t)9999 * 28 * 28, 28 * 28);
  rcc_image_free(&im);
  rcc_idx_free(&raw);
  assert_int_equal(rcc_dataset_image(ds, 10000, &im), RCC_ERR_ARG);
  rcc_dataset_free(ds);

  assert_int_equal(rcc_dataset_open("fmnist:train", &ds), RCC_OK);
  assert_int_equal(rcc_dataset_size(ds), 60000);
  rcc_dataset_free(ds);
}

/* $RCC_FMNIST_DIR with uncompressed files; an empty one is an error naming the file. */
static void test_fmnist_dir(void **state) {
  const char *dir = scratch("fmnist");
  run("mkdir -p '%s'", dir);
  setenv("RCC_FMNIST_DIR", dir, 1);
  rcc_dataset_t *ds;
  assert_failed(rcc_dataset_open("fmnist:test", &ds), RCC_ERR_IO, "t10k-images-idx3-ubyte",
                "RCC_FMNIST_DIR");
  assert_null(ds);

  uint8_t buf[64];
  size_t h = idx_header(buf, 0x08, 3, (uint32_t[]){2, 2, 3});
  memset(buf + h, 200, 12);
  write_bytes(scratch("fmnist/t10k-images-idx3-ubyte"), buf, h + 12);
  h = idx_header(buf, 0x08, 1, (uint32_t[]){2});
  buf[h] = 9;
  buf[h + 1] = 3;
  write_bytes(scratch("fmnist/t10k-labels-idx1-ubyte"), buf, h + 2);
  assert_int_equal(rcc_dataset_open("fmnist:test", &ds), RCC_OK);
  assert_int_equal(rcc_dataset_size(ds), 2);
  assert_int_equal(rcc_dataset_label(ds, 0), 9);
  rcc_image_t im;
  assert_int_equal(rcc_dataset_image(ds, 1, &im), RCC_OK);
  assert_int_equal(im.width, 3);
  assert_int_equal(im.height, 2);
  rcc_image_free(&im);
  rcc_dataset_free(ds);

  buf[h] = 10;
  const char *labels = scratch("fmnist/t10k-labels-idx1-ubyte");
  write_bytes(labels, buf, h + 2);
  assert_failed(rcc_dataset_open("fmnist:test", &ds), RCC_ERR_FORMAT, labels, "label 10");
  h = idx_header(buf, 0x08, 1, (uint32_t[]){3});
  write_bytes(labels, buf, h + 3);
  assert_failed(rcc_dataset_open("fmnist:test", &ds), RCC_ERR_FORMAT, labels, "match");
  unsetenv("RCC_FMNIST_DIR");
}

/* ---- folder:DIR --------------------------------------------------------------------- */

static void copy_fixture(const char *image, const char *to) {
  char cmd[8192];
  snprintf(cmd, sizeof cmd, "cp '%s' '%s'",
           rcc_source_path(strcmp(image, "png") == 0 ? "tests/fixtures/images/coins_la.png"
                                                     : "tests/fixtures/images/rocket_420.jpg"),
           to);
  if (system(cmd) != 0) fail_msg("command failed: %s", cmd);
}

static void test_folder(void **state) {
  const char *root = scratch("folder");
  run("mkdir -p '%s/t_shirt' '%s/bag'", root);
  run("mkdir -p '%s/.cache' && touch '%s/README.txt'", root);
  copy_fixture("jpg", scratch("folder/t_shirt/b.JPG"));
  copy_fixture("png", scratch("folder/t_shirt/a.png"));
  copy_fixture("png", scratch("folder/bag/z.jpeg"));
  copy_fixture("png", scratch("folder/.cache/x.png"));
  write_text(scratch("folder/bag/notes.txt"), "not an image");

  char spec[4200];
  snprintf(spec, sizeof spec, "folder:%s", root);
  rcc_dataset_t *ds;
  assert_int_equal(rcc_dataset_open(spec, &ds), RCC_OK);
  assert_int_equal(rcc_dataset_num_classes(ds), 2);
  assert_string_equal(rcc_dataset_class_name(ds, 0), "bag");
  assert_string_equal(rcc_dataset_class_name(ds, 1), "t shirt");
  assert_int_equal(rcc_dataset_size(ds), 3);
  assert_int_equal(rcc_dataset_label(ds, 0), 0);
  assert_int_equal(rcc_dataset_label(ds, 1), 1);
  assert_int_equal(rcc_dataset_label(ds, 2), 1);
  assert_null(rcc_dataset_caption(ds, 0));
  /* Files sorted by name: t_shirt/a.png (the 24x20 PNG, content decides) then b.JPG. */
  rcc_image_t im;
  assert_int_equal(rcc_dataset_image(ds, 1, &im), RCC_OK);
  assert_int_equal(im.width, 24);
  assert_int_equal(im.channels, 1);
  rcc_image_free(&im);
  assert_int_equal(rcc_dataset_image(ds, 2, &im), RCC_OK);
  assert_int_equal(im.width, 63);
  assert_int_equal(im.channels, 3);
  rcc_image_free(&im);
  rcc_dataset_free(ds);

  /* An image that stops decoding after the dataset was opened: the error names it. */
  const char *broken = scratch("folder/bag/z.jpeg");
  write_text(broken, "garbage");
  assert_int_equal(rcc_dataset_open(spec, &ds), RCC_OK);
  assert_failed(rcc_dataset_image(ds, 0, &im), RCC_ERR_FORMAT, broken, NULL);
  rcc_dataset_free(ds);

  const char *emptycls = scratch("folder/coat");
  run("mkdir -p '%s'", emptycls);
  assert_failed(rcc_dataset_open(spec, &ds), RCC_ERR_FORMAT, emptycls, "no .png");

  const char *flat = scratch("flat");
  run("mkdir -p '%s'", flat);
  copy_fixture("png", scratch("flat/a.png"));
  snprintf(spec, sizeof spec, "folder:%s", flat);
  assert_failed(rcc_dataset_open(spec, &ds), RCC_ERR_FORMAT, flat, "sub-folders");

  const char *missing = scratch("no_such_dir");
  snprintf(spec, sizeof spec, "folder:%s", missing);
  assert_failed(rcc_dataset_open(spec, &ds), RCC_ERR_IO, missing, NULL);
}

/* ---- csv:FILE ----------------------------------------------------------------------- */

static void test_csv(void **state) {
  const char *dir = scratch("csv");
  run("mkdir -p '%s/imgs'", dir);
  copy_fixture("png", scratch("csv/imgs/one.png"));
  copy_fixture("jpg", scratch("csv/two, too.jpg"));
  const char *file = scratch("csv/pairs.csv");
  write_text(file, "image,caption\r\n"
                   "imgs/one.png,a coin\r\n"
                   "\"two, too.jpg\",\"a rocket, \"\"tall\"\", at dawn\"\n"
                   "\n"
                   "imgs/one.png,unquoted, with a comma\n");
  char spec[4200];
  snprintf(spec, sizeof spec, "csv:%s", file);
  rcc_dataset_t *ds;
  assert_int_equal(rcc_dataset_open(spec, &ds), RCC_OK);
  assert_int_equal(rcc_dataset_size(ds), 3);
  assert_int_equal(rcc_dataset_num_classes(ds), 0);
  assert_null(rcc_dataset_class_name(ds, 0));
  assert_int_equal(rcc_dataset_label(ds, 0), -1);
  assert_string_equal(rcc_dataset_caption(ds, 0), "a coin");
  assert_string_equal(rcc_dataset_caption(ds, 1), "a rocket, \"tall\", at dawn");
  assert_string_equal(rcc_dataset_caption(ds, 2), "unquoted, with a comma");
  rcc_image_t im;
  assert_int_equal(rcc_dataset_image(ds, 1, &im), RCC_OK);
  assert_int_equal(im.width, 63);
  rcc_image_free(&im);
  rcc_dataset_free(ds);

  static const struct {
    const char *text, *says;
    rcc_status_t st;
  } bad[] = {
      {"imgs/one.png,ok\nimgs/one.png\n", ":2: expected", RCC_ERR_FORMAT},
      {"imgs/one.png,ok\n\"imgs/one.png,never closed\n", ":2: unterminated", RCC_ERR_FORMAT},
      {"imgs/one.png,\"closed\" then more\n", ":1: text after", RCC_ERR_FORMAT},
      {"imgs/one.png,ok\n\nimgs/gone.png,missing\n", ":3: image 'imgs/gone.png' not found",
       RCC_ERR_IO},
      {",no path\n", ":1: empty image path", RCC_ERR_FORMAT},
      {"image,caption\n", "no 'image_path,caption' lines", RCC_ERR_FORMAT},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_text(file, bad[i].text);
    assert_failed(rcc_dataset_open(spec, &ds), bad[i].st, file, bad[i].says);
    assert_null(ds);
  }
  const char *missing = scratch("csv/none.csv");
  snprintf(spec, sizeof spec, "csv:%s", missing);
  assert_failed(rcc_dataset_open(spec, &ds), RCC_ERR_IO, missing, NULL);
}

static void test_unknown_spec(void **state) {
  rcc_dataset_t *ds;
  const char *specs[] = {"imagenet:val", "fmnist:validation", "folder:", "csv"};
  for (int i = 0; i < 4; i++) {
    assert_failed(rcc_dataset_open(specs[i], &ds), RCC_ERR_ARG, specs[i], "folder:DIR");
    assert_non_null(strstr(rcc_last_error(), "csv:FILE"));
    assert_null(ds);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_idx_fashion_mnist),
      cmocka_unit_test(test_idx_plain_and_gzip),
      cmocka_unit_test(test_idx_errors),
      cmocka_unit_test(test_fmnist),
      cmocka_unit_test(test_fmnist_dir),
      cmocka_unit_test(test_folder),
      cmocka_unit_test(test_csv),
      cmocka_unit_test(test_unknown_spec),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
