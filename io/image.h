/* Images: decoding (PNG via stb_image, JPEG via libjpeg-turbo like Pillow), and
 * CLIPImageProcessor's preprocessing (convert to RGB, resize shortest edge with Pillow's
 * bicubic filter on 8-bit pixels, center crop, rescale, normalize) reproduced exactly. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/status.h"

typedef struct {
  int width, height, channels; /* channels: 1 (gray) or 3 (RGB) */
  uint8_t *pixels;             /* interleaved, row-major (height, width, channels) */
} rcc_image_t;

rcc_status_t rcc_image_load(const char *path, rcc_image_t *out);
/* Wraps 8-bit gray pixels (e.g. an IDX record), copying them. */
rcc_status_t rcc_image_from_gray(const uint8_t *pixels, int width, int height, rcc_image_t *out);
void rcc_image_free(rcc_image_t *img);

typedef struct {
  bool do_convert_rgb, do_resize, do_center_crop, do_rescale, do_normalize;
  int shortest_edge;        /* resize target of the shorter side */
  int crop_height, crop_width;
  float rescale_factor;     /* 1/255 */
  float mean[3], std[3];
} rcc_preprocess_t;

/* Reads `model_dir`/preprocessor_config.json (CLIPImageProcessor keys); when the file is
 * absent, uses CLIP's defaults with `image_size` for size and crop. */
rcc_status_t rcc_preprocess_load(const char *model_dir, int image_size, rcc_preprocess_t *out);
/* out: (3, crop_height, crop_width) float32, channel-first, as HF's pixel_values. */
rcc_status_t rcc_preprocess_image(const rcc_preprocess_t *pp, const rcc_image_t *img, float *out);
