/* Format decoders behind rcc_image_load; private to io/. Each takes the whole file in
 * memory and `path` only to name it in errors. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "io/image.h"

/* Largest width or height accepted, checked from the header before any pixel buffer. */
#define RCC_IMAGE_MAX_SIDE 32768
/* Largest width * height accepted, also checked from the header: Pillow's decompression
 * bomb error threshold (2 * PIL.Image.MAX_IMAGE_PIXELS), so that every image transformers
 * can open still opens, while a file of a few KB claiming 32768 x 32768 pixels is refused
 * before minutes of decoding and gigabytes of pixels. */
#define RCC_IMAGE_MAX_PIXELS 178956970ULL

rcc_status_t rcc_image_decode_png(const char *path, const uint8_t *data, size_t size,
                                  rcc_image_t *out);
rcc_status_t rcc_image_decode_jpeg(const char *path, const uint8_t *data, size_t size,
                                   rcc_image_t *out);
