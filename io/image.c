/* rcc_image_t: loading a file (format told by its magic bytes, not its name), wrapping
 * gray pixels, freeing. The decoders are in image_png.c and image_jpeg.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_decode.h"

/* Compressed images larger than this are not photos we are meant to read. */
#define MAX_FILE_BYTES ((long)1 << 30)

static rcc_status_t read_file(const char *path, uint8_t **data, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open image: %s", path, strerror(errno));
  long n = -1;
  if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
  if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return rcc_fail(RCC_ERR_IO, "%s: cannot find the size of the image file", path);
  }
  if (n > MAX_FILE_BYTES) {
    fclose(f);
    return rcc_fail(RCC_ERR_NOMEM, "%s: image file of %ld bytes is past the limit of %ld", path, n,
                    MAX_FILE_BYTES);
  }
  uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
  if (!buf) {
    fclose(f);
    return rcc_fail(RCC_ERR_NOMEM, "%s: no memory for %ld bytes", path, n);
  }
  size_t got = fread(buf, 1, (size_t)n, f);
  int failed = ferror(f);
  fclose(f);
  if (failed || got != (size_t)n) {
    free(buf);
    return rcc_fail(RCC_ERR_IO, "%s: read error after %zu of %ld bytes", path, got, n);
  }
  *data = buf;
  *size = (size_t)n;
  return RCC_OK;
}

rcc_status_t rcc_image_load(const char *path, rcc_image_t *out) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};
  *out = (rcc_image_t){0};
  uint8_t *data = NULL;
  size_t size = 0;
  RCC_TRY(read_file(path, &data, &size));
  rcc_status_t st;
  if (size >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0) {
    st = rcc_image_decode_png(path, data, size, out);
  } else if (size >= sizeof jpeg_magic && memcmp(data, jpeg_magic, sizeof jpeg_magic) == 0) {
    st = rcc_image_decode_jpeg(path, data, size, out);
  } else if (size == 0) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: empty file, not an image", path);
  } else {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: not a PNG or JPEG image (first byte 0x%02x)", path, data[0]);
  }
  free(data);
  return st;
}

rcc_status_t rcc_image_from_gray(const uint8_t *pixels, int width, int height, rcc_image_t *out) {
  *out = (rcc_image_t){0};
  if (!pixels || width < 1 || height < 1 || width > RCC_IMAGE_MAX_SIDE ||
      height > RCC_IMAGE_MAX_SIDE)
    return rcc_fail(RCC_ERR_ARG, "rcc_image_from_gray: bad image %dx%d (pixels %s)", width, height,
                    pixels ? "given" : "NULL");
  size_t n = (size_t)width * (size_t)height;
  uint8_t *copy = malloc(n);
  if (!copy) return rcc_fail(RCC_ERR_NOMEM, "rcc_image_from_gray: no memory for %zu bytes", n);
  memcpy(copy, pixels, n);
  *out = (rcc_image_t){.width = width, .height = height, .channels = 1, .pixels = copy};
  return RCC_OK;
}

void rcc_image_free(rcc_image_t *img) {
  if (!img) return;
  free(img->pixels);
  *img = (rcc_image_t){0};
}
