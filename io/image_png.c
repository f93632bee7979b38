/* PNG decoding with stb_image, giving the pixels Pillow gives once transformers'
 * convert_to_rgb has run: gray (also 1, 2, 4 bits) stays one channel, palette and RGB
 * become RGB, and any transparency (an alpha channel or a tRNS chunk) is composited onto
 * white exactly as PIL.Image.alpha_composite does, since rcc_image_t carries no alpha. */
#include <limits.h>
#include <stb/stb_image.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_decode.h"

static uint32_t be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the chunks before stb_image does, refusing two kinds of corrupt file that no
 * encoder writes and that tests/fuzz found stb_image mishandling: a chunk whose length
 * runs past the end of the file (stb_image allocates an IDAT's claimed length before
 * reading it: 2 GiB for a 117-byte file), and an empty first IDAT chunk (stb_image then
 * copies zero bytes to a NULL buffer, undefined behaviour). */
static rcc_status_t check_chunks(const char *path, const uint8_t *data, size_t size) {
  bool idat_seen = false;
  for (size_t at = 8; at + 8 <= size;) {
    uint32_t len = be32(data + at);
    const uint8_t *type = data + at + 4;
    /* length, type, data, CRC */
    if (size - at < 12 || len > size - at - 12)
      return rcc_fail(RCC_ERR_FORMAT,
                      "%s: corrupt PNG (the chunk at byte %zu claims %u bytes, past the end of "
                      "the file)",
                      path, at, len);
    if (memcmp(type, "IDAT", 4) == 0) {
      if (!idat_seen && len == 0)
        return rcc_fail(RCC_ERR_FORMAT, "%s: corrupt PNG (its first IDAT chunk is empty)", path);
      idat_seen = true;
    }
    if (memcmp(type, "IEND", 4) == 0) break;
    at += 12 + (size_t)len;
  }
  return RCC_OK;
}

/* One 8-bit channel value with alpha `a` over an opaque white background: Pillow's
 * AlphaComposite.c integer formula (7 extra bits, division by 255 by shifts), which for
 * an opaque white destination reduces to this; it is exact against Pillow for all
 * 256 x 256 (value, alpha) pairs. */
static uint8_t over_white(uint32_t v, uint32_t a) {
  uint32_t t = 128 * (v * a + 255 * (255 - a)) + (0x80 << 7);
  return (uint8_t)((((t >> 8) + t) >> 8) >> 7);
}

rcc_status_t rcc_image_decode_png(const char *path, const uint8_t *data, size_t size,
                                  rcc_image_t *out) {
  /* Signature (8), IHDR length and type (8), IHDR data (13), CRC (4). */
  if (size < 33)
    return rcc_fail(RCC_ERR_FORMAT, "%s: truncated PNG header (%zu bytes)", path, size);
  if (memcmp(data + 12, "IHDR", 4) != 0)
    return rcc_fail(RCC_ERR_FORMAT, "%s: PNG does not start with an IHDR chunk", path);
  uint32_t width = be32(data + 16), height = be32(data + 20);
  int depth = data[24], color = data[25];
  if (width == 0 || height == 0)
    return rcc_fail(RCC_ERR_FORMAT, "%s: PNG has a zero dimension (%ux%u)", path, width, height);
  if (width > RCC_IMAGE_MAX_SIDE || height > RCC_IMAGE_MAX_SIDE)
    return rcc_fail(RCC_ERR_NOMEM, "%s: PNG of %ux%u pixels is past the limit of %d per side", path,
                    width, height, RCC_IMAGE_MAX_SIDE);
  if ((unsigned long long)width * height > RCC_IMAGE_MAX_PIXELS)
    return rcc_fail(RCC_ERR_NOMEM, "%s: PNG of %ux%u pixels is past the limit of %llu pixels", path,
                    width, height, RCC_IMAGE_MAX_PIXELS);
  if (depth == 16)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: 16-bit PNG is not supported (save it with 8 bits per channel)", path);
  bool gray = color == 0 || color == 4;
  bool valid = (color == 0 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
               (color == 3 && (depth == 1 || depth == 2 || depth == 4 || depth == 8)) ||
               ((color == 2 || color == 4 || color == 6) && depth == 8);
  if (!valid)
    return rcc_fail(RCC_ERR_FORMAT, "%s: invalid PNG colour type %d with bit depth %d", path, color,
                    depth);
  RCC_TRY(check_chunks(path, data, size));
  if (size > INT_MAX)
    return rcc_fail(RCC_ERR_UNSUPPORTED, "%s: PNG file of %zu bytes is too large", path, size);

  /* Always ask for alpha (all 255 when the file has none) so that one code path handles
   * alpha channels, palette tRNS and colour-key tRNS alike. */
  int req = gray ? 2 : 4, w, h, n;
  uint8_t *px = stbi_load_from_memory(data, (int)size, &w, &h, &n, req);
  if (!px) return rcc_fail(RCC_ERR_FORMAT, "%s: corrupt PNG (%s)", path, stbi_failure_reason());

  int c = gray ? 1 : 3;
  size_t count = (size_t)w * (size_t)h;
  uint8_t *pixels = malloc(count * (size_t)c);
  if (!pixels) {
    stbi_image_free(px);
    return rcc_fail(RCC_ERR_NOMEM, "%s: no memory for %dx%d pixels", path, w, h);
  }
  for (size_t i = 0; i < count; i++) {
    const uint8_t *p = px + i * (size_t)req;
    for (int ch = 0; ch < c; ch++)
      pixels[i * (size_t)c + ch] = over_white(p[ch], p[req - 1]);
  }
  stbi_image_free(px);
  *out = (rcc_image_t){.width = w, .height = h, .channels = c, .pixels = pixels};
  return RCC_OK;
}
