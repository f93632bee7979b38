/* Fuzz target: the PNG (stb_image) and JPEG (libjpeg-turbo) decoders of io/, from memory
 * as rcc_image_load hands them a file: PNG when the input has PNG's signature, JPEG
 * otherwise. A decoded image is then preprocessed as CLIP's image processor does
 * (CLIP's defaults at 32 pixels), which runs the resize and crop on whatever shape the
 * file had. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/image_decode.h"

enum { SIDE = 32 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  rcc_image_t img = {0};
  rcc_status_t st;
  if (size >= sizeof png_magic && memcmp(data, png_magic, sizeof png_magic) == 0)
    st = rcc_image_decode_png("fuzz.png", data, size, &img);
  else
    st = rcc_image_decode_jpeg("fuzz.jpg", data, size, &img);
  if (st != RCC_OK) return 0;
  if (img.width < 1 || img.height < 1 || (img.channels != 1 && img.channels != 3) ||
      (unsigned long long)img.width * (unsigned long long)img.height > RCC_IMAGE_MAX_PIXELS) {
    fprintf(stderr, "fuzz_image: decoded a %dx%dx%d image\n", img.width, img.height, img.channels);
    abort();
  }
  fuzz_touch(img.pixels, (size_t)img.width * (size_t)img.height * (size_t)img.channels);
  rcc_preprocess_t pp;
  /* The scratch folder has no preprocessor_config.json: CLIP's defaults. */
  if (rcc_preprocess_load(fuzz_dir(), SIDE, &pp) == RCC_OK) {
    float *out = malloc(3 * (size_t)pp.crop_height * (size_t)pp.crop_width * sizeof *out);
    if (!out) fuzz_die("fuzz_image: malloc");
    rcc_preprocess_image(&pp, &img, out);
    free(out);
  }
  rcc_image_free(&img);
  return 0;
}
