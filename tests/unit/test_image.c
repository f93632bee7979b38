/* Image decoding and CLIP preprocessing against Pillow and transformers: the fixtures in
 * tests/fixtures/preprocess (made by tools/make_image_fixtures.py) hold the pixels Pillow
 * decodes and the pixel_values CLIPImageProcessorPil computes. Also every error path of
 * rcc_image_load and rcc_preprocess_load, on files this test writes. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
/* jpeglib.h needs stdio.h (FILE) first. */
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/image.h"
#include "io/image_resize.h"
#include "tests/harness.h"

#define FIXTURES "tests/fixtures/preprocess"

/* ---- helpers ------------------------------------------------------------------------ */

/* A gzip fixture named relative to FIXTURES, which must hold exactly `expect` bytes. */
static void *read_gz(const char *relative, size_t expect) {
  char rel[512];
  snprintf(rel, sizeof rel, FIXTURES "/%s", relative);
  const char *path = rcc_source_path(rel);
  gzFile f = gzopen(path, "rb");
  if (!f) fail_msg("cannot open fixture %s", path);
  uint8_t *buf = malloc(expect + 1);
  assert_non_null(buf);
  int got = gzread(f, buf, (unsigned)(expect + 1));
  gzclose(f);
  if (got != (int)expect) fail_msg("%s: %d bytes, expected %zu", path, got, expect);
  return buf;
}

static cJSON *load_index(void) {
  const char *path = rcc_source_path(FIXTURES "/index.json");
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  static char text[1 << 16];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cJSON *root = cJSON_Parse(text);
  if (!root) fail_msg("%s: invalid JSON", path);
  return root;
}

static int json_int(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(v)) fail_msg("index.json: missing number '%s'", key);
  return v->valueint;
}

static const char *json_str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(v)) fail_msg("index.json: missing string '%s'", key);
  return v->valuestring;
}

static const char *image_path(const char *file) {
  static char rel[512];
  snprintf(rel, sizeof rel, "tests/fixtures/images/%s", file);
  return rcc_source_path(rel);
}

static const char *scratch_file(const char *name) {
  static char path[8][4096];
  static int slot = 0;
  slot = (slot + 1) % 8;
  snprintf(path[slot], sizeof path[slot], "%s/%s", rcc_scratch_dir(), name);
  return path[slot];
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

static uint8_t *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  *n = (size_t)ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *buf = malloc(*n);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, *n, f), *n);
  fclose(f);
  return buf;
}

/* The call failed with `st` and its message names `path` (and `also`, when given). */
static void assert_failed(rcc_status_t got, rcc_status_t st, const char *path, const char *also) {
  const char *msg = rcc_last_error();
  if (got != st)
    fail_msg("status %s, expected %s (message: %s)", rcc_status_str(got), rcc_status_str(st), msg);
  if (!strstr(msg, path)) fail_msg("message does not name %s: %s", path, msg);
  if (also && !strstr(msg, also)) fail_msg("message does not say '%s': %s", also, msg);
}

/* ---- decoding ----------------------------------------------------------------------- */

static void test_decode_matches_pillow(void **state) {
  cJSON *index = load_index();
  const cJSON *img;
  int count = 0;
  cJSON_ArrayForEach(img, cJSON_GetObjectItemCaseSensitive(index, "images")) {
    const char *file = json_str(img, "file");
    int h = json_int(img, "height"), w = json_int(img, "width"), c = json_int(img, "channels");
    uint8_t *ref = read_gz(json_str(img, "pixels"), (size_t)h * w * c);
    rcc_image_t im;
    rcc_status_t st = rcc_image_load(image_path(file), &im);
    if (st != RCC_OK) fail_msg("%s: %s", file, rcc_last_error());
    if (im.width != w || im.height != h || im.channels != c)
      fail_msg("%s: decoded %dx%dx%d, Pillow %dx%dx%d", file, im.width, im.height, im.channels, w,
               h, c);
    size_t n = (size_t)h * w * c, bad = 0;
    for (size_t i = 0; i < n; i++) {
      if (im.pixels[i] != ref[i] && bad++ < 3)
        print_error("%s: byte %zu (y %zu, x %zu, c %zu) is %d, Pillow %d\n", file, i,
                    i / ((size_t)w * c), i / c % w, i % c, im.pixels[i], ref[i]);
    }
    if (bad) fail_msg("%s: %zu of %zu bytes differ from Pillow", file, bad, n);
    rcc_image_free(&im);
    free(ref);
    count++;
  }
  assert_true(count >= 8);
  cJSON_Delete(index);
}

static void test_from_gray_copies(void **state) {
  uint8_t px[6] = {1, 2, 3, 4, 5, 6};
  rcc_image_t im;
  assert_int_equal(rcc_image_from_gray(px, 3, 2, &im), RCC_OK);
  assert_int_equal(im.width, 3);
  assert_int_equal(im.height, 2);
  assert_int_equal(im.channels, 1);
  assert_ptr_not_equal(im.pixels, px);
  px[0] = 99;
  assert_int_equal(im.pixels[0], 1);
  assert_memory_equal(im.pixels + 1, px + 1, 5);
  rcc_image_free(&im);
  assert_null(im.pixels);
  assert_int_equal(rcc_image_from_gray(NULL, 3, 2, &im), RCC_ERR_ARG);
  assert_int_equal(rcc_image_from_gray(px, 0, 2, &im), RCC_ERR_ARG);
}

/* A PNG signature and IHDR chunk (CRC left zero: the header is refused before it counts). */
static void write_png_header(const char *path, uint32_t w, uint32_t h, int depth, int color) {
  uint8_t b[64] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
  for (int i = 0; i < 4; i++) {
    b[16 + i] = (uint8_t)(w >> (24 - 8 * i));
    b[20 + i] = (uint8_t)(h >> (24 - 8 * i));
  }
  b[24] = (uint8_t)depth;
  b[25] = (uint8_t)color;
  write_bytes(path, b, sizeof b);
}

/* An 8x8 CMYK JPEG, written with libjpeg's encoder (Pillow would open it as mode CMYK). */
static void write_cmyk_jpeg(const char *path) {
  struct jpeg_compress_struct cinfo;
  struct jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  jpeg_stdio_dest(&cinfo, f);
  cinfo.image_width = cinfo.image_height = 8;
  cinfo.input_components = 4;
  cinfo.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  uint8_t row[8 * 4];
  memset(row, 77, sizeof row);
  JSAMPROW rows[1] = {row};
  while (cinfo.next_scanline < cinfo.image_height)
    jpeg_write_scanlines(&cinfo, rows, 1);
  jpeg_finish_compress(&cinfo);
  jpeg_destroy_compress(&cinfo);
  assert_int_equal(fclose(f), 0);
}

static void test_image_errors(void **state) {
  rcc_image_t im;
  const char *p = scratch_file("missing.png");
  assert_failed(rcc_image_load(p, &im), RCC_ERR_IO, p, NULL);

  p = scratch_file("empty.jpg");
  write_bytes(p, "", 0);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "empty");

  /* The extension says PNG, the bytes say text: the format comes from the bytes. */
  p = scratch_file("text.png");
  write_text(p, "hello, not an image\n");
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "not a PNG or JPEG");

  /* A JPEG named .png decodes as the JPEG it is. */
  size_t n;
  uint8_t *jpeg = read_bytes(image_path("rocket_420.jpg"), &n);
  p = scratch_file("really_a_jpeg.png");
  write_bytes(p, jpeg, n);
  assert_int_equal(rcc_image_load(p, &im), RCC_OK);
  assert_int_equal(im.channels, 3);
  rcc_image_free(&im);

  p = scratch_file("truncated.jpg");
  write_bytes(p, jpeg, n / 2);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "JPEG");

  p = scratch_file("header_only.jpg");
  write_bytes(p, jpeg, 3);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "JPEG");

  /* Height and width in the SOF marker set to 40000: refused before decoding. */
  for (size_t i = 2; i + 9 < n; i++) {
    if (jpeg[i] == 0xff && (jpeg[i + 1] == 0xc0 || jpeg[i + 1] == 0xc2)) {
      jpeg[i + 5] = jpeg[i + 7] = 40000 >> 8;
      jpeg[i + 6] = jpeg[i + 8] = 40000 & 0xff;
      break;
    }
  }
  p = scratch_file("huge.jpg");
  write_bytes(p, jpeg, n);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_NOMEM, p, "40000");
  free(jpeg);

  p = scratch_file("cmyk.jpg");
  write_cmyk_jpeg(p);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_UNSUPPORTED, p, "CMYK");

  uint8_t *png = read_bytes(image_path("astronaut_rgb.png"), &n);
  p = scratch_file("truncated.png");
  write_bytes(p, png, n / 2);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "PNG");
  p = scratch_file("truncated_header.png");
  write_bytes(p, png, 20);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "PNG");
  free(png);

  p = scratch_file("deep.png");
  write_png_header(p, 10, 10, 16, 2);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_UNSUPPORTED, p, "16-bit");
  p = scratch_file("huge.png");
  write_png_header(p, 40000, 10, 8, 2);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_NOMEM, p, "40000");
  p = scratch_file("badtype.png");
  write_png_header(p, 10, 10, 8, 5);
  assert_failed(rcc_image_load(p, &im), RCC_ERR_FORMAT, p, "colour type");
  assert_null(im.pixels);
}

/* ---- resize ------------------------------------------------------------------------- */

/* A window of the resize equals the same part of the full resize. */
static void test_resize_window(void **state) {
  int w = 37, h = 23, c = 3, ow = 50, oh = 11;
  uint8_t in[37 * 23 * 3], full[50 * 11 * 3], win[20 * 5 * 3];
  uint64_t seed = 7;
  for (size_t i = 0; i < sizeof in; i++) {
    float v;
    rcc_fill_uniform(&v, 1, 0.0f, 256.0f, &seed);
    in[i] = (uint8_t)v;
  }
  assert_int_equal(rcc_image_resize_bicubic(full, in, w, h, c, ow, oh, 0, 0, ow, oh), RCC_OK);
  assert_int_equal(rcc_image_resize_bicubic(win, in, w, h, c, ow, oh, 17, 4, 20, 5), RCC_OK);
  for (int y = 0; y < 5; y++)
    assert_memory_equal(win + (size_t)y * 20 * c, full + ((size_t)(y + 4) * ow + 17) * c,
                        (size_t)20 * c);
  /* Same size: Pillow returns the image unchanged. */
  assert_int_equal(rcc_image_resize_bicubic(full, in, w, h, c, w, h, 0, 0, 11, 2), RCC_OK);
  assert_memory_equal(full, in, 11 * 3);
  assert_int_equal(rcc_image_resize_bicubic(full, in, w, h, c, ow, oh, 40, 0, 20, 5), RCC_ERR_ARG);
}

/* ---- preprocessing ------------------------------------------------------------------ */

static void test_preprocess_matches_hf(void **state) {
  cJSON *index = load_index();
  const cJSON *cfg;
  int cases = 0;
  double worst = 0.0;
  cJSON_ArrayForEach(cfg, cJSON_GetObjectItemCaseSensitive(index, "configs")) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s", rcc_source_path(FIXTURES));
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", json_str(cfg, "dir"));
    rcc_preprocess_t pp;
    if (rcc_preprocess_load(dir, 7, &pp) != RCC_OK) fail_msg("%s", rcc_last_error());
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItemCaseSensitive(cfg, "cases")) {
      const cJSON *shape = cJSON_GetObjectItemCaseSensitive(cs, "shape");
      int ch = cJSON_GetArrayItem(shape, 1)->valueint, cw = cJSON_GetArrayItem(shape, 2)->valueint;
      assert_int_equal(ch, pp.crop_height);
      assert_int_equal(cw, pp.crop_width);
      size_t n = (size_t)3 * ch * cw;
      float *ref = read_gz(json_str(cs, "pixel_values"), n * sizeof(float));
      float *got = malloc(n * sizeof(float));
      assert_non_null(got);
      rcc_image_t im;
      const char *file = json_str(cs, "image");
      if (rcc_image_load(image_path(file), &im) != RCC_OK) fail_msg("%s", rcc_last_error());
      if (rcc_preprocess_image(&pp, &im, got) != RCC_OK) fail_msg("%s", rcc_last_error());
      for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)got[i] - ref[i]));
      print_message("%s %s: max abs diff so far %.3g\n", json_str(cfg, "name"), file, worst);
      assert_allclose(got, ref, n, 1e-6, 0.0);
      rcc_image_free(&im);
      free(got);
      free(ref);
      cases++;
    }
  }
  assert_true(cases >= 20);
  cJSON_Delete(index);
}

static void test_preprocess_defaults(void **state) {
  rcc_preprocess_t pp;
  /* No preprocessor_config.json: CLIP's defaults at the model's image size. */
  assert_int_equal(rcc_preprocess_load(rcc_scratch_dir(), 96, &pp), RCC_OK);
  assert_true(pp.do_convert_rgb && pp.do_resize && pp.do_center_crop && pp.do_rescale &&
              pp.do_normalize);
  assert_int_equal(pp.shortest_edge, 96);
  assert_int_equal(pp.crop_height, 96);
  assert_int_equal(pp.crop_width, 96);
  assert_float_equal(pp.rescale_factor, 1.0 / 255.0, 1e-9);
  assert_float_equal(pp.mean[0], 0.48145466, 1e-8);
  assert_float_equal(pp.std[2], 0.27577711, 1e-8);

  /* A present file: keys it lacks take the class defaults; a bare int size and crop, a
   * single-number mean and std, nulls meaning "default". */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/bare", rcc_scratch_dir());
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  assert_int_equal(system(cmd), 0);
  write_text(scratch_file("bare/preprocessor_config.json"),
             "{\"size\": 40, \"crop_size\": 36, \"image_mean\": 0.5, \"image_std\": 0.25,\n"
             " \"do_normalize\": null, \"do_center_crop\": false, \"feature_extractor_type\": "
             "\"CLIPFeatureExtractor\"}");
  assert_int_equal(rcc_preprocess_load(dir, 96, &pp), RCC_OK);
  assert_int_equal(pp.shortest_edge, 40);
  assert_int_equal(pp.crop_height, 36);
  assert_int_equal(pp.crop_width, 36);
  assert_true(pp.do_normalize);
  assert_false(pp.do_center_crop);
  assert_float_equal(pp.mean[1], 0.5, 0);
  assert_float_equal(pp.std[2], 0.25, 0);

  /* Without the crop the resized image must already have the output's size. */
  uint8_t px[20 * 10];
  memset(px, 128, sizeof px);
  rcc_image_t im;
  assert_int_equal(rcc_image_from_gray(px, 20, 10, &im), RCC_OK);
  float *out = malloc(sizeof(float) * 3 * 36 * 36);
  assert_non_null(out);
  assert_int_equal(rcc_preprocess_image(&pp, &im, out), RCC_ERR_UNSUPPORTED);
  /* Gray 128 everywhere: a constant output per channel, (128/255 - mean) / std. */
  pp.do_center_crop = true;
  assert_int_equal(rcc_preprocess_image(&pp, &im, out), RCC_OK);
  float expect = ((float)(128 * (1.0 / 255.0)) - 0.5f) / 0.25f;
  assert_float_equal(out[0], expect, 1e-6);
  assert_float_equal(out[2 * 36 * 36 + 36 * 18 + 18], expect, 1e-6);
  free(out);
  rcc_image_free(&im);
}

static void test_preprocess_config_errors(void **state) {
  static const struct {
    const char *json;
    rcc_status_t st;
    const char *says;
  } cases[] = {
      {"{\"do_resize\": true,\n \"size\": {\"shortest_edge\": 32,}}", RCC_ERR_FORMAT, ":2:"},
      {"[1, 2]", RCC_ERR_FORMAT, "object"},
      {"{\"do_resize\": 1}", RCC_ERR_FORMAT, "do_resize"},
      {"{\"size\": {\"height\": 32, \"width\": 32}}", RCC_ERR_UNSUPPORTED, "size"},
      {"{\"size\": {\"shortest_edge\": 32.5}}", RCC_ERR_FORMAT, "size.shortest_edge"},
      {"{\"size\": {\"longest\": 32}}", RCC_ERR_FORMAT, "shortest_edge"},
      {"{\"crop_size\": {\"height\": 32}}", RCC_ERR_FORMAT, "crop_size"},
      {"{\"crop_size\": {\"height\": 32, \"width\": 0}}", RCC_ERR_FORMAT, "crop_size.width"},
      {"{\"rescale_factor\": \"1/255\"}", RCC_ERR_FORMAT, "rescale_factor"},
      {"{\"image_mean\": [0.5, 0.5]}", RCC_ERR_FORMAT, "image_mean"},
      {"{\"image_std\": [0.5, 0, 0.5]}", RCC_ERR_FORMAT, "image_std[1]"},
      {"{\"resample\": 2}", RCC_ERR_UNSUPPORTED, "resample"},
  };
  char dir[4096];
  snprintf(dir, sizeof dir, "%s/bad", rcc_scratch_dir());
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
  assert_int_equal(system(cmd), 0);
  const char *file = scratch_file("bad/preprocessor_config.json");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    write_text(file, cases[i].json);
    rcc_preprocess_t pp;
    assert_failed(rcc_preprocess_load(dir, 32, &pp), cases[i].st, file, cases[i].says);
  }
  /* A config that is there but cannot be read is an error, not the defaults. */
  snprintf(cmd, sizeof cmd, "rm -f '%s' && mkdir '%s'", file, file);
  assert_int_equal(system(cmd), 0);
  rcc_preprocess_t pp;
  assert_failed(rcc_preprocess_load(dir, 32, &pp), RCC_ERR_IO, file, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_matches_pillow),
      cmocka_unit_test(test_from_gray_copies),
      cmocka_unit_test(test_image_errors),
      cmocka_unit_test(test_resize_window),
      cmocka_unit_test(test_preprocess_matches_hf),
      cmocka_unit_test(test_preprocess_defaults),
      cmocka_unit_test(test_preprocess_config_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
