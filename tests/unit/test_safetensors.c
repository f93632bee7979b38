/* Tests of the safetensors reader and writer (io/safetensors.h) and the dtype helpers
 * (io/tensor.h): round trips of every dtype, exact F16/BF16/F64 -> F32 conversion, a file
 * written by Python's `safetensors` (read exactly, and re-written byte for byte), one test
 * per malformed header, corrupted and truncated files, and atomic saves that fail cleanly. */
#include "tests/harness.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"

/* ---- helpers ---------------------------------------------------------------------- */

static const char *scratch_path(const char *name) {
  static char buf[4][4096];
  static int slot = 0;
  slot = (slot + 1) % 4;
  snprintf(buf[slot], sizeof buf[slot], "%s/%s", rcc_scratch_dir(), name);
  return buf[slot];
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(bytes, 1, n, f), n);
  assert_int_equal(fclose(f), 0);
}

/* Returns a malloc'ed copy of the file's bytes; *n its size. */
static unsigned char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *p = malloc((size_t)size + 1);
  assert_non_null(p);
  assert_int_equal(fread(p, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  *n = (size_t)size;
  return p;
}

/* Writes a safetensors file: u64 LE length of `header`, the header as given, then data. */
static const char *write_st(const char *name, const char *header, const void *data,
                            size_t data_len) {
  const char *path = scratch_path(name);
  size_t hlen = strlen(header);
  unsigned char *buf = malloc(8 + hlen + data_len + 1);
  assert_non_null(buf);
  for (int i = 0; i < 8; i++)
    buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
  memcpy(buf + 8, header, hlen);
  if (data_len) memcpy(buf + 8 + hlen, data, data_len);
  write_bytes(path, buf, 8 + hlen + data_len);
  free(buf);
  return path;
}

static void assert_message_has(const char *needle) {
  const char *msg = rcc_last_error();
  if (!strstr(msg, needle)) {
    print_error("error message \"%s\" does not contain \"%s\"\n", msg, needle);
    fail();
  }
}

/* Opening `path` must fail with `want`, leave *out NULL, and say `what` about `path`. */
static void expect_open_error(const char *path, rcc_status_t want, const char *what) {
  rcc_clear_error();
  rcc_safetensors_t *st = (rcc_safetensors_t *)&st; /* must be reset to NULL */
  rcc_status_t rc = rcc_st_open(path, &st);
  if (rc != want) print_error("status %d (%s), want %d\n", rc, rcc_last_error(), want);
  assert_int_equal(rc, want);
  assert_null(st);
  assert_message_has(path);
  assert_message_has(what);
}

/* A header with one tensor entry `entry` for name "t", 16 bytes of data. */
static void expect_bad_entry(const char *file, const char *entry, const char *what) {
  char header[512];
  snprintf(header, sizeof header, "{\"t\":%s}", entry);
  static const unsigned char data[16];
  expect_open_error(write_st(file, header, data, sizeof data), RCC_ERR_FORMAT, what);
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

/* Every element of the F32 tensor t must have exactly the bits of want (n): NaN payloads and
 * the sign of zero included. */
static void assert_f32_bits(const rcc_tensor_t *t, const float *want, int64_t n) {
  assert_int_equal(t->dtype, RCC_DTYPE_F32);
  assert_int_equal(t->numel, n);
  const float *got = t->data;
  for (int64_t i = 0; i < n; i++) {
    if (f32_bits(got[i]) != f32_bits(want[i])) {
      print_error("%s[%lld] = %a (0x%08x), want %a (0x%08x)\n", t->name, (long long)i,
                  (double)got[i], f32_bits(got[i]), (double)want[i], f32_bits(want[i]));
      fail();
    }
  }
}

static int scratch_has_temp_file(void) {
  DIR *d = opendir(rcc_scratch_dir());
  assert_non_null(d);
  int found = 0;
  for (struct dirent *e; (e = readdir(d));)
    if (strstr(e->d_name, ".tmp.")) found = 1;
  closedir(d);
  return found;
}

/* ---- dtype helpers ---------------------------------------------------------------- */

static void test_dtype_helpers(void **state) {
  static const struct {
    rcc_dtype_t dt;
    const char *name;
    size_t size;
  } all[] = {{RCC_DTYPE_F32, "F32", 4},  {RCC_DTYPE_F16, "F16", 2}, {RCC_DTYPE_BF16, "BF16", 2},
             {RCC_DTYPE_F64, "F64", 8},  {RCC_DTYPE_I64, "I64", 8}, {RCC_DTYPE_I32, "I32", 4},
             {RCC_DTYPE_I16, "I16", 2},  {RCC_DTYPE_I8, "I8", 1},   {RCC_DTYPE_U8, "U8", 1},
             {RCC_DTYPE_BOOL, "BOOL", 1}};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    assert_int_equal(rcc_dtype_size(all[i].dt), all[i].size);
    assert_string_equal(rcc_dtype_name(all[i].dt), all[i].name);
    rcc_dtype_t dt = RCC_DTYPE_BOOL;
    assert_int_equal(rcc_dtype_parse(all[i].name, &dt), 0);
    assert_int_equal(dt, all[i].dt);
  }
  rcc_dtype_t dt = RCC_DTYPE_I8;
  assert_int_equal(rcc_dtype_parse("f32", &dt), -1);
  assert_int_equal(rcc_dtype_parse("U16", &dt), -1);
  assert_int_equal(rcc_dtype_parse("", &dt), -1);
  assert_int_equal(rcc_dtype_parse(NULL, &dt), -1);
  assert_int_equal(dt, RCC_DTYPE_I8);
  assert_int_equal(rcc_dtype_size((rcc_dtype_t)99), 0);
}

/* ---- round trip ------------------------------------------------------------------- */

static void test_round_trip_every_dtype(void **state) {
  float f32[6] = {1.0f, -2.5f, 0x1p-149f, 3.0e38f, -0.0f, 7.0f}; /* (2,3) */
  uint16_t f16[4] = {0x3c00, 0x0001, 0xfc00, 0x7bff};            /* (4) */
  uint16_t bf16[2] = {0x4049, 0x8001};                           /* (1,2) */
  double f64[3] = {0.1, -1e300, 1e-50};                          /* (3) */
  int64_t i64[2] = {INT64_MIN, INT64_MAX};
  int32_t i32[3] = {INT32_MIN, -7, INT32_MAX};
  int16_t i16[2] = {-32768, 12345};
  int8_t i8[4] = {-128, -1, 0, 127};
  uint8_t u8[3] = {0, 200, 255};
  uint8_t b[5] = {1, 0, 0, 1, 1};
  float scalar = 42.0f;
  rcc_tensor_t in[] = {
      {"w.f32", RCC_DTYPE_F32, 2, {2, 3}, 6, f32},
      {"w.f16", RCC_DTYPE_F16, 1, {4}, 4, f16},
      {"w.bf16", RCC_DTYPE_BF16, 2, {1, 2}, 2, bf16},
      {"w.f64", RCC_DTYPE_F64, 1, {3}, 3, f64},
      {"ids.i64", RCC_DTYPE_I64, 2, {1, 2}, 2, i64},
      {"i32", RCC_DTYPE_I32, 1, {3}, 3, i32},
      {"i16", RCC_DTYPE_I16, 1, {2}, 2, i16},
      {"i8", RCC_DTYPE_I8, 2, {2, 2}, 4, i8},
      {"u8", RCC_DTYPE_U8, 1, {3}, 3, u8},
      {"mask", RCC_DTYPE_BOOL, 3, {5, 1, 1}, 5, b},
      {"scalar", RCC_DTYPE_F32, 0, {0}, 1, &scalar},
      {"empty", RCC_DTYPE_BF16, 2, {0, 7}, 0, NULL},
  };
  int n = (int)(sizeof in / sizeof in[0]);
  const char *keys[] = {"format", "quote\"back\\slash", "z_first_is_not_sorted"};
  const char *values[] = {"pt", "line\nbreak \x01 \xc3\xa9", ""};
  const char *path = scratch_path("round_trip.safetensors");
  assert_int_equal(rcc_st_save(path, in, n, keys, values, 3), RCC_OK);
  assert_false(scratch_has_temp_file());

  /* Layout: header length a multiple of 8, metadata first, space padding, data contiguous
   * in the given order. */
  size_t size;
  unsigned char *raw = read_bytes(path, &size);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = (hlen << 8) | raw[i];
  assert_int_equal(hlen % 8, 0);
  assert_true(8 + hlen <= size);
  const char *start = "{\"__metadata__\":{\"format\":\"pt\",";
  assert_memory_equal(raw + 8, start, strlen(start));
  char *header = strndup((const char *)raw + 8, hlen);
  assert_non_null(strstr(header, "\"quote\\\"back\\\\slash\":\"line\\nbreak \\u0001 \xc3\xa9\""));
  assert_non_null(strstr(header, "\"w.f32\":{\"dtype\":\"F32\",\"shape\":[2,3],"
                                 "\"data_offsets\":[0,24]},\"w.f16\":"));
  assert_non_null(strstr(header, "\"scalar\":{\"dtype\":\"F32\",\"shape\":[],"));
  assert_true(strchr(header, '}') < strstr(header, "w.f32"));
  char *last_brace = strrchr(header, '}');
  for (char *c = last_brace + 1; *c; c++)
    assert_int_equal(*c, ' ');
  free(header);
  size_t offset = 8 + hlen;
  for (int i = 0; i < n; i++) {
    size_t nb = (size_t)in[i].numel * rcc_dtype_size(in[i].dtype);
    if (nb) assert_memory_equal(raw + offset, in[i].data, nb);
    offset += nb;
  }
  assert_int_equal(offset, size);
  free(raw);

  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_int_equal(rcc_st_count(st), n);
  for (int i = 0; i < n; i++) {
    rcc_tensor_t *t = rcc_st_tensor(st, i);
    assert_string_equal(t->name, in[i].name);
    assert_ptr_equal(rcc_st_find(st, in[i].name), t);
    assert_int_equal(rcc_st_file_dtype(st, i), in[i].dtype);
    assert_int_equal(t->ndim, in[i].ndim);
    for (int d = 0; d < t->ndim; d++)
      assert_int_equal(t->shape[d], in[i].shape[d]);
    assert_int_equal(t->numel, in[i].numel);
  }
  assert_null(rcc_st_tensor(st, n));
  assert_null(rcc_st_tensor(st, -1));
  assert_null(rcc_st_find(st, "w.f3"));
  assert_null(rcc_st_find(st, "zzz"));

  assert_f32_bits(rcc_st_find(st, "w.f32"), f32, 6);
  const float f16_want[4] = {1.0f, 0x1p-24f, -INFINITY, 65504.0f};
  assert_f32_bits(rcc_st_find(st, "w.f16"), f16_want, 4);
  const float bf16_want[2] = {3.140625f, -0x1p-133f};
  assert_f32_bits(rcc_st_find(st, "w.bf16"), bf16_want, 2);
  const float f64_want[3] = {(float)0.1, -INFINITY, 0.0f};
  assert_f32_bits(rcc_st_find(st, "w.f64"), f64_want, 3);
  assert_f32_bits(rcc_st_find(st, "scalar"), &scalar, 1);
  rcc_tensor_t *empty = rcc_st_find(st, "empty");
  assert_int_equal(empty->dtype, RCC_DTYPE_F32);
  assert_int_equal(empty->numel, 0);
  assert_null(empty->data);
  for (int i = 4; i <= 9; i++) {
    rcc_tensor_t *t = rcc_st_tensor(st, i);
    assert_int_equal(t->dtype, in[i].dtype);
    assert_memory_equal(t->data, in[i].data, (size_t)t->numel * rcc_dtype_size(t->dtype));
  }

  assert_int_equal(rcc_st_metadata_count(st), 3);
  for (int i = 0; i < 3; i++) {
    const char *k, *v;
    rcc_st_metadata_at(st, i, &k, &v);
    assert_string_equal(k, keys[i]);
    assert_string_equal(v, values[i]);
    assert_string_equal(rcc_st_metadata(st, keys[i]), values[i]);
  }
  assert_null(rcc_st_metadata(st, "absent"));

  /* Tensors are writable, and writes never reach the file (copy-on-write mapping). */
  float *w = rcc_st_find(st, "w.f32")->data;
  w[0] = 123.0f;
  ((int64_t *)rcc_st_find(st, "ids.i64")->data)[1] = 5;
  rcc_st_close(st);
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_f32_bits(rcc_st_find(st, "w.f32"), f32, 6);
  assert_memory_equal(rcc_st_find(st, "ids.i64")->data, i64, sizeof i64);
  rcc_st_close(st);
}

static void test_save_without_metadata_or_tensors(void **state) {
  const char *path = scratch_path("empty.safetensors");
  assert_int_equal(rcc_st_save(path, NULL, 0, NULL, NULL, 0), RCC_OK);
  size_t size;
  unsigned char *raw = read_bytes(path, &size);
  assert_int_equal(size, 16);
  assert_int_equal(raw[0], 8);
  assert_memory_equal(raw + 8, "{}      ", 8);
  free(raw);
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_int_equal(rcc_st_count(st), 0);
  assert_int_equal(rcc_st_metadata_count(st), 0);
  assert_null(rcc_st_metadata(st, "format"));
  assert_null(rcc_st_find(st, "x"));
  rcc_st_close(st);
}

/* ---- conversion ------------------------------------------------------------------- */

/* Every F16 bit pattern against the IEEE definition; every BF16 pattern is its F32 top half. */
static void test_f16_bf16_conversion_exhaustive(void **state) {
  uint16_t *bits = malloc(65536 * sizeof *bits);
  assert_non_null(bits);
  for (int i = 0; i < 65536; i++)
    bits[i] = (uint16_t)i;
  rcc_tensor_t in[] = {{"h", RCC_DTYPE_F16, 1, {65536}, 65536, bits},
                       {"b", RCC_DTYPE_BF16, 1, {65536}, 65536, bits}};
  const char *path = scratch_path("all_halves.safetensors");
  assert_int_equal(rcc_st_save(path, in, 2, NULL, NULL, 0), RCC_OK);
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  const float *h = rcc_st_find(st, "h")->data, *b = rcc_st_find(st, "b")->data;
  for (int i = 0; i < 65536; i++) {
    int sign = i >> 15, exp = (i >> 10) & 31, mant = i & 1023;
    if (exp == 31 && mant != 0) {
      /* NaN: quiet/signalling payload carried into the top mantissa bits. */
      assert_true(isnan(h[i]));
      assert_int_equal(f32_bits(h[i]), ((uint32_t)sign << 31) | 0x7f800000u | (uint32_t)mant << 13);
    } else {
      double want = exp == 31  ? INFINITY
                    : exp == 0 ? ldexp(mant, -24)
                               : ldexp(1024 + mant, exp - 25);
      if (sign) want = -want;
      if (f32_bits(h[i]) != f32_bits((float)want)) {
        print_error("F16 0x%04x -> %a, want %a\n", i, (double)h[i], want);
        fail();
      }
    }
    assert_int_equal(f32_bits(b[i]), (uint32_t)i << 16);
  }
  rcc_st_close(st);
  free(bits);
}

/* ---- compatibility with Python's safetensors ---------------------------------------- */

/* The values tools/make_safetensors_fixture.py writes, as raw bits. */
static const uint32_t fx_f32[6] = {0x00000000, 0xbfc00000, 0x40500000,
                                   0x00000001, 0x7f7fffff, 0x80000000};
static const uint16_t fx_f16[12] = {0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x7BFF,
                                    0x7C00, 0xFC00, 0x7E00, 0x3C00, 0xC000, 0x3555};
static const uint16_t fx_bf16[8] = {0x3F80, 0xC040, 0x0001, 0x7F80, 0xFF80, 0x7FC0, 0x4049, 0x8000};
static const int64_t fx_i64[4] = {INT64_MIN, -1, 0, ((int64_t)1 << 40) + 3};
static const double fx_f64 = 0.1;
static const char fx_note[] = "rcc-dist fixture: \"quoted\", tab\tnewline\n, \xc3\xa9";

static void test_read_python_fixture(void **state) {
  const char *path = rcc_source_path("tests/fixtures/safetensors/python_written.safetensors");
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_int_equal(rcc_st_count(st), 6);

  rcc_tensor_t *t = rcc_st_find(st, "f32");
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 2);
  assert_int_equal(t->shape[1], 3);
  assert_memory_equal(t->data, fx_f32, sizeof fx_f32);

  const float f16_want[12] = {0.0f,     -0.0f,     0x1p-24f, 0x3ffp-24f, 0x1p-14f, 65504.0f,
                              INFINITY, -INFINITY, NAN,      1.0f,       -2.0f,    0.333251953125f};
  t = rcc_st_find(st, "f16");
  assert_int_equal(t->ndim, 2);
  assert_int_equal(t->shape[0], 3);
  assert_int_equal(t->shape[1], 4);
  assert_f32_bits(t, f16_want, 12);

  const float bf16_want[8] = {1.0f, -3.0f, 0x1p-133f, INFINITY, -INFINITY, NAN, 3.140625f, -0.0f};
  t = rcc_st_find(st, "bf16");
  assert_int_equal(t->ndim, 3);
  assert_f32_bits(t, bf16_want, 8);

  t = rcc_st_find(st, "i64");
  assert_int_equal(t->dtype, RCC_DTYPE_I64);
  assert_int_equal(t->shape[0], 4);
  assert_memory_equal(t->data, fx_i64, sizeof fx_i64);

  t = rcc_st_find(st, "f64_scalar");
  assert_int_equal(t->ndim, 0);
  const float f64_want = (float)fx_f64;
  assert_f32_bits(t, &f64_want, 1);

  t = rcc_st_find(st, "empty");
  assert_int_equal(t->numel, 0);
  assert_int_equal(t->shape[0], 0);
  assert_int_equal(t->shape[1], 3);

  for (int i = 0; i < rcc_st_count(st); i++) {
    const char *name = rcc_st_tensor(st, i)->name;
    rcc_dtype_t want = strcmp(name, "f16") == 0          ? RCC_DTYPE_F16
                       : strcmp(name, "bf16") == 0       ? RCC_DTYPE_BF16
                       : strcmp(name, "i64") == 0        ? RCC_DTYPE_I64
                       : strcmp(name, "f64_scalar") == 0 ? RCC_DTYPE_F64
                                                         : RCC_DTYPE_F32;
    assert_int_equal(rcc_st_file_dtype(st, i), want);
  }
  assert_int_equal(rcc_st_metadata_count(st), 1);
  assert_string_equal(rcc_st_metadata(st, "note"), fx_note);
  rcc_st_close(st);
}

/* Saving the fixture's tensors in the fixture's order must reproduce HF's bytes exactly. */
static void test_write_matches_python_bytes(void **state) {
  const char *fixture = rcc_source_path("tests/fixtures/safetensors/python_written.safetensors");
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(fixture, &st), RCC_OK);
  rcc_tensor_t out[6];
  for (int i = 0; i < 6; i++) {
    out[i] = *rcc_st_tensor(st, i);
    out[i].dtype = rcc_st_file_dtype(st, i);
    const char *name = out[i].name;
    out[i].data = strcmp(name, "f32") == 0          ? (void *)fx_f32
                  : strcmp(name, "f16") == 0        ? (void *)fx_f16
                  : strcmp(name, "bf16") == 0       ? (void *)fx_bf16
                  : strcmp(name, "i64") == 0        ? (void *)fx_i64
                  : strcmp(name, "f64_scalar") == 0 ? (void *)&fx_f64
                                                    : NULL;
  }
  const char *key = "note", *value = fx_note;
  const char *path = scratch_path("like_python.safetensors");
  assert_int_equal(rcc_st_save(path, out, 6, &key, &value, 1), RCC_OK);
  rcc_st_close(st);

  size_t n_want, n_got;
  unsigned char *want = read_bytes(fixture, &n_want), *got = read_bytes(path, &n_got);
  assert_int_equal(n_got, n_want);
  assert_memory_equal(got, want, n_want);
  free(want);
  free(got);
}

/* ---- layouts HF never writes but the format allows ------------------------------------ */

static void test_unaligned_data_is_copied(void **state) {
  char header[256] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                     "\"b\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[8,12]}}";
  /* Header length 1 mod 4: the data section (at 8 + length in the page-aligned mapping) is
   * not 4-byte aligned, so F32 and I32 data must be copied. */
  while (strlen(header) % 4 != 1)
    strcat(header, " ");
  const float a[2] = {1.5f, -2.0f};
  const int32_t b = -123456;
  unsigned char data[12];
  memcpy(data, a, 8);
  memcpy(data + 8, &b, 4);
  const char *path = write_st("unaligned.safetensors", header, data, sizeof data);
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  rcc_tensor_t *ta = rcc_st_find(st, "a"), *tb = rcc_st_find(st, "b");
  assert_int_equal((uintptr_t)ta->data % 4, 0);
  assert_int_equal((uintptr_t)tb->data % 4, 0);
  assert_f32_bits(ta, a, 2);
  assert_int_equal(*(int32_t *)tb->data, b);
  rcc_st_close(st);
}

/* Gaps, out-of-order offsets and empty ranges inside other ranges are all legal. */
static void test_zero_element_and_unordered_ranges(void **state) {
  const float x[4] = {1, 2, 3, 4};
  const char *path = write_st("zero_elements.safetensors",
                              "{\"late\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]},"
                              "\"e1\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                              "\"e2\":{\"dtype\":\"I8\",\"shape\":[0],\"data_offsets\":[16,16]},"
                              "\"early\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
                              x, sizeof x);
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_int_equal(rcc_st_count(st), 4);
  assert_string_equal(rcc_st_tensor(st, 0)->name, "late");
  assert_f32_bits(rcc_st_tensor(st, 0), x + 2, 2);
  assert_f32_bits(rcc_st_find(st, "early"), x, 1);
  assert_int_equal(rcc_st_find(st, "e1")->numel, 0);
  assert_int_equal(rcc_st_find(st, "e2")->dtype, RCC_DTYPE_I8);
  rcc_st_close(st);
}

/* ---- malformed files: one test per check ---------------------------------------------- */

static void test_bad_short_file(void **state) {
  write_bytes(scratch_path("short.safetensors"), "\x10\0\0\0\0", 5);
  expect_open_error(scratch_path("short.safetensors"), RCC_ERR_FORMAT, "shorter than");
  write_bytes(scratch_path("zero.safetensors"), "", 0);
  expect_open_error(scratch_path("zero.safetensors"), RCC_ERR_FORMAT, "shorter than");
}

static void test_bad_missing_file(void **state) {
  expect_open_error(scratch_path("does_not_exist.safetensors"), RCC_ERR_IO, "cannot open");
  expect_open_error(rcc_scratch_dir(), RCC_ERR_IO, "not a regular file");
}

static void test_bad_header_length_past_eof(void **state) {
  unsigned char buf[18] = {100};
  memcpy(buf + 8, "{}        ", 10);
  write_bytes(scratch_path("past_eof.safetensors"), buf, sizeof buf);
  expect_open_error(scratch_path("past_eof.safetensors"), RCC_ERR_FORMAT,
                    "header length 100 past the end of the file (18 bytes)");
}

static void test_bad_header_length_absurd(void **state) {
  unsigned char buf[16] = {0, 0, 0, 0, 0, 1}; /* 2^40 */
  memcpy(buf + 8, "{}      ", 8);
  write_bytes(scratch_path("absurd.safetensors"), buf, sizeof buf);
  expect_open_error(scratch_path("absurd.safetensors"), RCC_ERR_FORMAT, "absurdly large");
}

static void test_bad_json(void **state) {
  expect_open_error(write_st("bad_json.safetensors", "{\"t\": {\"dtype\": ", NULL, 0),
                    RCC_ERR_FORMAT, "not valid JSON");
  expect_open_error(write_st("bad_json2.safetensors", "", NULL, 0), RCC_ERR_FORMAT,
                    "not valid JSON");
}

static void test_bad_json_not_object(void **state) {
  expect_open_error(write_st("array.safetensors", "[1, 2]  ", NULL, 0), RCC_ERR_FORMAT,
                    "header is not a JSON object");
  expect_open_error(write_st("string.safetensors", "\"x\"", NULL, 0), RCC_ERR_FORMAT,
                    "header is not a JSON object");
}

static void test_bad_trailing_bytes(void **state) {
  expect_open_error(write_st("trailing.safetensors", "{}  x", NULL, 0), RCC_ERR_FORMAT,
                    "trailing bytes");
  /* A NUL inside the header would otherwise end the JSON text early. */
  const char *path = scratch_path("nul.safetensors");
  write_bytes(path, "\x08\0\0\0\0\0\0\0{}\0     ", 16);
  expect_open_error(path, RCC_ERR_FORMAT, "trailing bytes");
}

static void test_bad_entry_not_object(void **state) {
  expect_bad_entry("entry_num.safetensors", "5", "tensor 't': entry is not a JSON object");
}

static void test_bad_missing_dtype(void **state) {
  expect_bad_entry("no_dtype.safetensors", "{\"shape\":[4],\"data_offsets\":[0,16]}",
                   "tensor 't': missing dtype");
}

static void test_bad_missing_shape(void **state) {
  expect_bad_entry("no_shape.safetensors", "{\"dtype\":\"F32\",\"data_offsets\":[0,16]}",
                   "tensor 't': missing shape");
}

static void test_bad_missing_offsets(void **state) {
  expect_bad_entry("no_offsets.safetensors", "{\"dtype\":\"F32\",\"shape\":[4]}",
                   "tensor 't': missing data_offsets");
}

static void test_bad_dtype_type(void **state) {
  expect_bad_entry("dtype_num.safetensors", "{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}",
                   "tensor 't': dtype is not a string");
}

static void test_bad_shape_type(void **state) {
  expect_bad_entry("shape_obj.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":{\"a\":4},\"data_offsets\":[0,16]}",
                   "tensor 't': shape is not an array");
  expect_bad_entry("shape_str.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[2,\"2\"],\"data_offsets\":[0,16]}",
                   "tensor 't': shape[1] is not a number");
  expect_bad_entry("shape_frac.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,10]}",
                   "tensor 't': shape[0] is not an integer");
  expect_bad_entry("shape_huge.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,16]}",
                   "tensor 't': shape[0] is too large");
}

static void test_bad_offsets_type(void **state) {
  expect_bad_entry("offsets_one.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16]}",
                   "tensor 't': data_offsets is not [begin, end]");
  expect_bad_entry("offsets_three.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8,16]}",
                   "tensor 't': data_offsets is not [begin, end]");
  expect_bad_entry("offsets_str.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[\"0\",16]}",
                   "tensor 't': data_offsets[0] is not a number");
  expect_bad_entry("offsets_neg.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[-4,12]}",
                   "tensor 't': data_offsets[0] is negative");
}

static void test_bad_unknown_dtype(void **state) {
  expect_bad_entry("dtype_f7.safetensors",
                   "{\"dtype\":\"F7\",\"shape\":[4],\"data_offsets\":[0,16]}",
                   "tensor 't': unknown or unsupported dtype 'F7'");
}

static void test_bad_negative_dim(void **state) {
  expect_bad_entry("neg_dim.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}",
                   "tensor 't': shape[1] is negative");
}

static void test_bad_numel_overflow(void **state) {
  expect_bad_entry("overflow.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
                   "\"data_offsets\":[0,16]}",
                   "tensor 't': element count of the shape overflows");
  expect_bad_entry("overflow_bytes.safetensors",
                   "{\"dtype\":\"F64\",\"shape\":[4294967296,1073741824],"
                   "\"data_offsets\":[0,16]}",
                   "tensor 't': byte size of the shape overflows");
}

static void test_bad_too_many_dims(void **state) {
  expect_open_error(write_st("nine_dims.safetensors",
                             "{\"t\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                             "\"data_offsets\":[0,1]}}",
                             "x", 1),
                    RCC_ERR_UNSUPPORTED, "tensor 't': 9 dimensions, at most 8");
}

static void test_bad_offsets_reversed(void **state) {
  expect_bad_entry("reversed.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}",
                   "tensor 't': data_offsets begin 8 > end 4");
}

static void test_bad_offsets_past_data(void **state) {
  expect_bad_entry("past_data.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}",
                   "tensor 't': data_offsets end 20 past the end of the data section (16 bytes)");
}

static void test_bad_size_mismatch(void **state) {
  expect_bad_entry("mismatch.safetensors",
                   "{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}",
                   "tensor 't': data_offsets span 8 bytes but 3 F32 elements need 12");
}

static void test_bad_overlap(void **state) {
  static const unsigned char data[32];
  expect_open_error(write_st("overlap.safetensors",
                             "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                             data, sizeof data),
                    RCC_ERR_FORMAT, "tensors 'a' [0, 8) and 'b' [4, 12) overlap");
  /* b lies inside a, and c starts after b ends but still inside a. */
  expect_open_error(write_st("overlap_nested.safetensors",
                             "{\"c\":{\"dtype\":\"I8\",\"shape\":[4],\"data_offsets\":[20,24]},"
                             "\"a\":{\"dtype\":\"F32\",\"shape\":[8],\"data_offsets\":[0,32]},"
                             "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                             data, sizeof data),
                    RCC_ERR_FORMAT, "overlap");
  assert_message_has("'a'");
}

static void test_bad_duplicate_names(void **state) {
  static const unsigned char data[16];
  expect_open_error(write_st("dup.safetensors",
                             "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                             "\"u\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                             "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                             data, sizeof data),
                    RCC_ERR_FORMAT, "duplicate tensor name 't'");
}

static void test_bad_metadata(void **state) {
  expect_open_error(write_st("meta_str.safetensors", "{\"__metadata__\":\"pt\"}", NULL, 0),
                    RCC_ERR_FORMAT, "__metadata__ is not a JSON object");
  expect_open_error(
      write_st("meta_num.safetensors", "{\"__metadata__\":{\"a\":\"1\",\"b\":2}}", NULL, 0),
      RCC_ERR_FORMAT, "__metadata__ value of 'b' is not a string");
  expect_open_error(
      write_st("meta_nested.safetensors", "{\"__metadata__\":{\"a\":{\"x\":\"y\"}}}", NULL, 0),
      RCC_ERR_FORMAT, "__metadata__ value of 'a' is not a string");
  expect_open_error(
      write_st("meta_dupkey.safetensors", "{\"__metadata__\":{\"a\":\"1\",\"a\":\"2\"}}", NULL, 0),
      RCC_ERR_FORMAT, "__metadata__ has duplicate key 'a'");
  expect_open_error(
      write_st("meta_twice.safetensors", "{\"__metadata__\":{},\"__metadata__\":{}}", NULL, 0),
      RCC_ERR_FORMAT, "duplicate __metadata__");
}

/* Every single-byte corruption of a valid header and every truncation of a valid file
 * must give OK or a format error; never a crash or an out-of-bounds tensor. */
static void test_corrupted_files_never_crash(void **state) {
  float f32[3] = {1, 2, 3};
  uint16_t f16[2] = {0x3c00, 0x7e00};
  int64_t i64[1] = {7};
  rcc_tensor_t in[] = {{"a", RCC_DTYPE_F32, 2, {3, 1}, 3, f32},
                       {"bb", RCC_DTYPE_F16, 1, {2}, 2, f16},
                       {"c", RCC_DTYPE_I64, 0, {0}, 1, i64}};
  const char *key = "k", *value = "v";
  const char *good = scratch_path("fuzz_src.safetensors");
  assert_int_equal(rcc_st_save(good, in, 3, &key, &value, 1), RCC_OK);
  size_t size;
  unsigned char *raw = read_bytes(good, &size);
  unsigned char *buf = malloc(size);
  assert_non_null(buf);
  const char *path = scratch_path("fuzz.safetensors");
  static const unsigned char subst[] = {0,   ' ', '"', '{', '}', '[', ']',  ',', ':',
                                        '-', '0', '9', 'e', '.', 'x', 0x80, 0xff};
  int ok = 0, bad = 0;
  for (size_t pos = 0; pos <= size; pos++) {
    for (size_t s = 0; s <= sizeof subst; s++) {
      size_t len = size;
      memcpy(buf, raw, size);
      if (s == sizeof subst)
        len = pos; /* truncation */
      else if (pos < size)
        buf[pos] = subst[s];
      else
        continue;
      write_bytes(path, buf, len);
      rcc_safetensors_t *st = NULL;
      rcc_status_t rc = rcc_st_open(path, &st);
      if (rc == RCC_OK) {
        /* Touch every byte of every tensor. */
        unsigned sum = 0;
        for (int i = 0; i < rcc_st_count(st); i++) {
          rcc_tensor_t *t = rcc_st_tensor(st, i);
          const unsigned char *p = t->data;
          for (size_t j = 0; j < (size_t)t->numel * rcc_dtype_size(t->dtype); j++)
            sum += p[j];
        }
        (void)sum;
        rcc_st_close(st);
        ok++;
      } else {
        if (rc != RCC_ERR_FORMAT && rc != RCC_ERR_UNSUPPORTED)
          print_error("pos %zu subst %zu: status %d: %s\n", pos, s, rc, rcc_last_error());
        assert_true(rc == RCC_ERR_FORMAT || rc == RCC_ERR_UNSUPPORTED);
        assert_null(st);
        bad++;
      }
    }
  }
  assert_true(ok > 0 && bad > 0);
  free(buf);
  free(raw);
}

/* ---- writer failures ---------------------------------------------------------------- */

static void test_save_missing_directory(void **state) {
  float x = 1;
  rcc_tensor_t t = {"x", RCC_DTYPE_F32, 1, {1}, 1, &x};
  const char *path = scratch_path("no_such_dir/out.safetensors");
  rcc_clear_error();
  assert_int_equal(rcc_st_save(path, &t, 1, NULL, NULL, 0), RCC_ERR_IO);
  assert_message_has(path);
  assert_message_has("cannot create temporary file");
  struct stat sb;
  assert_int_not_equal(stat(scratch_path("no_such_dir"), &sb), 0);
  assert_false(scratch_has_temp_file());
}

/* A target that cannot be replaced (a directory): the temporary file, already written, must
 * be removed, and the target left as it was. */
static void test_save_rename_failure_removes_temp(void **state) {
  float x = 1;
  rcc_tensor_t t = {"x", RCC_DTYPE_F32, 1, {1}, 1, &x};
  const char *path = scratch_path("dir_target.safetensors");
  assert_int_equal(mkdir(path, 0755), 0);
  rcc_clear_error();
  assert_int_equal(rcc_st_save(path, &t, 1, NULL, NULL, 0), RCC_ERR_IO);
  assert_message_has(path);
  assert_message_has("cannot rename");
  struct stat sb;
  assert_int_equal(stat(path, &sb), 0);
  assert_true(S_ISDIR(sb.st_mode));
  assert_false(scratch_has_temp_file());
  assert_int_equal(rmdir(path), 0);
}

static void test_save_rejects_bad_tensors_and_keeps_target(void **state) {
  float x[4] = {1, 2, 3, 4};
  const char *path = scratch_path("keep.safetensors");
  rcc_tensor_t good = {"x", RCC_DTYPE_F32, 1, {4}, 4, x};
  assert_int_equal(rcc_st_save(path, &good, 1, NULL, NULL, 0), RCC_OK);
  size_t n_before;
  unsigned char *before = read_bytes(path, &n_before);

  static const struct {
    rcc_tensor_t t[2];
    int n;
    const char *what;
  } cases[] = {
      {{{"x", RCC_DTYPE_F32, 1, {4}, 4, NULL}, {"x", RCC_DTYPE_F32, 1, {4}, 4, NULL}},
       2,
       "duplicate tensor name 'x'"},
      {{{"x", RCC_DTYPE_F32, 2, {2, 3}, 4, NULL}}, 1, "numel 4 does not match its shape (6)"},
      {{{"x", RCC_DTYPE_F32, 1, {-4}, 4, NULL}}, 1, "shape[0] is negative"},
      {{{"x", RCC_DTYPE_F32, 9, {1}, 1, NULL}}, 1, "ndim 9"},
      {{{"x", (rcc_dtype_t)42, 1, {4}, 4, NULL}}, 1, "invalid dtype 42"},
      {{{"__metadata__", RCC_DTYPE_F32, 1, {4}, 4, NULL}}, 1, "__metadata__ is reserved"},
      {{{NULL, RCC_DTYPE_F32, 1, {4}, 4, NULL}}, 1, "has no name"},
      {{{"x", RCC_DTYPE_U8, 1, {4}, 4, NULL}}, 1, "4 elements but no data"},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    rcc_tensor_t t[2];
    memcpy(t, cases[c].t, sizeof t);
    for (int i = 0; i < cases[c].n; i++)
      if (c != sizeof cases / sizeof cases[0] - 1) t[i].data = x;
    rcc_clear_error();
    assert_int_equal(rcc_st_save(path, t, cases[c].n, NULL, NULL, 0), RCC_ERR_ARG);
    assert_message_has(path);
    assert_message_has(cases[c].what);
  }
  const char *keys[2] = {"k", "k"}, *values[2] = {"1", "2"};
  rcc_clear_error();
  assert_int_equal(rcc_st_save(path, &good, 1, keys, values, 2), RCC_ERR_ARG);
  assert_message_has("duplicate metadata key 'k'");
  values[1] = NULL;
  keys[1] = "j";
  assert_int_equal(rcc_st_save(path, &good, 1, keys, values, 2), RCC_ERR_ARG);
  assert_message_has("NULL key or value");

  size_t n_after;
  unsigned char *after = read_bytes(path, &n_after);
  assert_int_equal(n_after, n_before);
  assert_memory_equal(after, before, n_before);
  assert_false(scratch_has_temp_file());
  free(before);
  free(after);
}

static void test_save_replaces_existing(void **state) {
  float x[2] = {1, 2}, y[3] = {5, 6, 7};
  const char *path = scratch_path("replace.safetensors");
  rcc_tensor_t a = {"x", RCC_DTYPE_F32, 1, {2}, 2, x}, b = {"y", RCC_DTYPE_F32, 1, {3}, 3, y};
  assert_int_equal(rcc_st_save(path, &a, 1, NULL, NULL, 0), RCC_OK);
  assert_int_equal(rcc_st_save(path, &b, 1, NULL, NULL, 0), RCC_OK);
  assert_false(scratch_has_temp_file());
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(path, &st), RCC_OK);
  assert_int_equal(rcc_st_count(st), 1);
  assert_null(rcc_st_find(st, "x"));
  assert_f32_bits(rcc_st_find(st, "y"), y, 3);
  rcc_st_close(st);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dtype_helpers),
      cmocka_unit_test(test_round_trip_every_dtype),
      cmocka_unit_test(test_save_without_metadata_or_tensors),
      cmocka_unit_test(test_f16_bf16_conversion_exhaustive),
      cmocka_unit_test(test_read_python_fixture),
      cmocka_unit_test(test_write_matches_python_bytes),
      cmocka_unit_test(test_unaligned_data_is_copied),
      cmocka_unit_test(test_zero_element_and_unordered_ranges),
      cmocka_unit_test(test_bad_short_file),
      cmocka_unit_test(test_bad_missing_file),
      cmocka_unit_test(test_bad_header_length_past_eof),
      cmocka_unit_test(test_bad_header_length_absurd),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_bad_json_not_object),
      cmocka_unit_test(test_bad_trailing_bytes),
      cmocka_unit_test(test_bad_entry_not_object),
      cmocka_unit_test(test_bad_missing_dtype),
      cmocka_unit_test(test_bad_missing_shape),
      cmocka_unit_test(test_bad_missing_offsets),
      cmocka_unit_test(test_bad_dtype_type),
      cmocka_unit_test(test_bad_shape_type),
      cmocka_unit_test(test_bad_offsets_type),
      cmocka_unit_test(test_bad_unknown_dtype),
      cmocka_unit_test(test_bad_negative_dim),
      cmocka_unit_test(test_bad_numel_overflow),
      cmocka_unit_test(test_bad_too_many_dims),
      cmocka_unit_test(test_bad_offsets_reversed),
      cmocka_unit_test(test_bad_offsets_past_data),
      cmocka_unit_test(test_bad_size_mismatch),
      cmocka_unit_test(test_bad_overlap),
      cmocka_unit_test(test_bad_duplicate_names),
      cmocka_unit_test(test_bad_metadata),
      cmocka_unit_test(test_corrupted_files_never_crash),
      cmocka_unit_test(test_save_missing_directory),
      cmocka_unit_test(test_save_rename_failure_removes_temp),
      cmocka_unit_test(test_save_rejects_bad_tensors_and_keeps_target),
      cmocka_unit_test(test_save_replaces_existing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
