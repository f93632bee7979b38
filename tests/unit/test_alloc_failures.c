/* Allocation failures (label unit). This program is linked with malloc, calloc, realloc,
 * aligned_alloc and strdup wrapped (-Wl,--wrap, tests/CMakeLists.txt), so every call that
 * the rcc-dist libraries make goes through the wrappers below. For each real operation
 * (load the tiny model, parse a job file, open a safetensors file, tokenize, run a forward,
 * write and read a checkpoint, decode an image) it counts the allocations the operation
 * makes, then makes the k-th one fail for every k up to that count (a sample past
 * MAX_EVERY): each run must return an error status with a message, and never crash. Under
 * `make sanitize`, LeakSanitizer checks that none of those error paths leaks. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "io/checkpoint.h"
#include "io/image.h"
#include "io/safetensors.h"
#include "jobs/job.h"
#include "model/clip.h"
#include "model/tokenizer.h"
#include "tests/harness.h"

/* ---- the wrappers ---------------------------------------------------------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);

/* Only allocations made while `armed` count (cmocka and test set-up allocate too); the
 * counter is atomic because the CPU backend may allocate on OpenMP threads. */
static atomic_bool armed;
static atomic_long n_calls; /* allocations counted since arm() */
static atomic_long fail_at; /* the one that returns NULL; 0: none */
static atomic_bool failed;  /* whether it was reached */

static bool should_fail(void) {
  if (!atomic_load(&armed)) return false;
  long k = atomic_fetch_add(&n_calls, 1) + 1;
  if (k != atomic_load(&fail_at)) return false;
  atomic_store(&failed, true);
  return true;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) {
  return should_fail() ? NULL : __real_aligned_alloc(align, n);
}
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }

static void arm(long k) {
  atomic_store(&n_calls, 0);
  atomic_store(&fail_at, k);
  atomic_store(&failed, false);
  atomic_store(&armed, true);
}
static void disarm(void) { atomic_store(&armed, false); }

/* ---- the driver ------------------------------------------------------------------------ */

/* Every k up to this many allocations is tried; past it, SAMPLES evenly spaced ones. */
enum { MAX_EVERY = 300, SAMPLES = 60 };

/* An operation arms the counter around the calls under test (set-up and clean-up run
 * unarmed) and returns their first failing status. */
typedef rcc_status_t (*op_fn)(long fail_k);

static void check_operation(const char *what, op_fn op) {
  rcc_clear_error();
  rcc_status_t st = op(0);
  long total = atomic_load(&n_calls);
  if (st != RCC_OK) fail_msg("%s: fails without any injected failure: %s", what, rcc_last_error());
  if (total == 0) fail_msg("%s: makes no allocation: the wrapping is not in effect", what);
  long tried = 0;
  for (long i = 1; i <= total; i++) {
    long k = i;
    if (total > MAX_EVERY) {
      if (i > MAX_EVERY + SAMPLES) break;
      if (i > MAX_EVERY) k = MAX_EVERY + (i - MAX_EVERY) * (total - MAX_EVERY) / SAMPLES;
    }
    rcc_clear_error();
    st = op(k);
    /* Thread scheduling can change the order of allocations, not their number. */
    if (!atomic_load(&failed)) continue;
    tried++;
    if (st == RCC_OK)
      fail_msg("%s: allocation %ld of %ld failed, yet the call returned RCC_OK", what, k, total);
    if (!rcc_last_error()[0])
      fail_msg("%s: allocation %ld of %ld failed with status %d but no message", what, k, total,
               st);
  }
  printf("%s: %ld allocations, %ld failures injected, each an error\n", what, total, tried);
  assert_true(tried > 0);
}

/* ---- the operations -------------------------------------------------------------------- */

static const char *tiny_a(void) { return rcc_source_path("tests/fixtures/clip-tiny-a"); }

static rcc_status_t op_load_model(long k) {
  rcc_backend_t be;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  rcc_clip_model_t *m = NULL;
  const char *dir = tiny_a();
  arm(k);
  rcc_status_t st = rcc_clip_load(dir, be, &m);
  disarm();
  rcc_clip_free(m);
  rcc_backend_free(be);
  return st;
}

static rcc_status_t op_parse_job(long k) {
  rcc_job_t *job = NULL;
  const char *path = rcc_source_path("tests/fixtures/jobs/good_full.yaml");
  arm(k);
  rcc_status_t st = rcc_job_load(path, &job);
  disarm();
  rcc_job_free(job);
  return st;
}

static rcc_status_t open_safetensors(long k, const char *fixture) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", rcc_source_path(fixture));
  rcc_safetensors_t *st = NULL;
  arm(k);
  rcc_status_t rc = rcc_st_open(path, &st);
  disarm();
  rcc_st_close(st);
  return rc;
}
/* clip-tiny-a is F32 (mapped), clip-tiny-b F16 (converted into owned buffers). */
static rcc_status_t op_open_safetensors_f32(long k) {
  return open_safetensors(k, "tests/fixtures/clip-tiny-a");
}
static rcc_status_t op_open_safetensors_f16(long k) {
  return open_safetensors(k, "tests/fixtures/clip-tiny-b");
}

static rcc_status_t op_tokenize(long k) {
  static const char *texts[] = {"a photo of a cat", "An ASTRONAUT riding a horse!!",
                                "  über   naïve café 123 ", ""};
  rcc_tokenizer_t *tok = NULL;
  int32_t ids[16];
  int n_tokens;
  const char *dir = tiny_a();
  arm(k);
  rcc_status_t st = rcc_tokenizer_load(dir, &tok);
  for (size_t i = 0; st == RCC_OK && i < sizeof texts / sizeof texts[0]; i++)
    st = rcc_tokenizer_encode(tok, texts[i], 16, ids, &n_tokens);
  disarm();
  rcc_tokenizer_free(tok);
  return st;
}

/* Image and text features of two inputs each on a freshly loaded model (the first forward
 * sizes the activation buffers). */
static rcc_status_t op_forward(long k) {
  enum { B = 2, T = 16, C = 3, S = 32 };
  static float pixels[B * C * S * S];
  static int32_t ids[B * T];
  float out[B * 32];
  uint64_t seed = 7;
  rcc_fill_uniform(pixels, B * C * S * S, -2.0f, 2.0f, &seed);
  for (int i = 0; i < B * T; i++)
    ids[i] = (i % T == 0) ? 0 : (i % T == 5) ? 2 : 1 + (i * 37) % 1000;
  rcc_backend_t be;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  rcc_backend_set_threads(be, 1);
  rcc_clip_model_t *m = NULL;
  assert_int_equal(rcc_clip_load(tiny_a(), be, &m), RCC_OK);
  arm(k);
  rcc_status_t st = rcc_clip_image_features(m, pixels, B, out);
  if (st == RCC_OK) st = rcc_clip_text_features(m, ids, B, T, out);
  disarm();
  rcc_clip_free(m);
  rcc_backend_free(be);
  return st;
}

static rcc_status_t op_checkpoint(long k) {
  static float w[6] = {1, 2, 3, 4, 5, 6};
  static int32_t idx[3] = {7, 8, 9};
  const rcc_ckpt_dataset_t sets[2] = {
      {"layers/a/W", RCC_DTYPE_F32, 2, {2, 3}, 0, w},
      {"layers/a/idx", RCC_DTYPE_I32, 1, {3, 0}, 0, idx},
  };
  rcc_ckpt_meta_t meta = {.fingerprint = "0123abcd", .stage_index = 1, .history = "[{}]"};
  char path[4200];
  snprintf(path, sizeof path, "%s/alloc.h5", rcc_scratch_dir());
  rcc_ckpt_t ck;
  arm(k);
  rcc_status_t st = rcc_ckpt_write(path, &meta, sets, 2);
  if (st == RCC_OK) st = rcc_ckpt_read(path, &ck);
  disarm();
  if (st == RCC_OK) rcc_ckpt_free(&ck);
  return st;
}

static rcc_status_t op_decode_images(long k) {
  static const char *files[] = {"tests/fixtures/images/coffee_rgba.png",
                                "tests/fixtures/images/chelsea_palette.png",
                                "tests/fixtures/images/rocket_420.jpg"};
  enum { N = sizeof files / sizeof files[0] };
  char paths[N][4096];
  for (int i = 0; i < N; i++)
    snprintf(paths[i], sizeof paths[i], "%s", rcc_source_path(files[i]));
  rcc_status_t st = RCC_OK;
  arm(k);
  for (int i = 0; st == RCC_OK && i < N; i++) {
    rcc_image_t img;
    st = rcc_image_load(paths[i], &img);
    if (st == RCC_OK) rcc_image_free(&img);
  }
  disarm();
  return st;
}

static void test_load_model(void **s) { check_operation("load clip-tiny-a", op_load_model); }
static void test_parse_job(void **s) { check_operation("parse good_full.yaml", op_parse_job); }
static void test_open_safetensors(void **s) {
  check_operation("open an F32 safetensors file", op_open_safetensors_f32);
  check_operation("open an F16 safetensors file", op_open_safetensors_f16);
}
static void test_tokenize(void **s) { check_operation("load a tokenizer and encode", op_tokenize); }
static void test_forward(void **s) { check_operation("image and text forward", op_forward); }
static void test_checkpoint(void **s) {
  check_operation("write and read a checkpoint", op_checkpoint);
}
static void test_decode_images(void **s) {
  check_operation("decode PNG and JPEG", op_decode_images);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_load_model),       cmocka_unit_test(test_parse_job),
      cmocka_unit_test(test_open_safetensors), cmocka_unit_test(test_tokenize),
      cmocka_unit_test(test_forward),          cmocka_unit_test(test_checkpoint),
      cmocka_unit_test(test_decode_images),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
