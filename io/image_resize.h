/* Pillow's BICUBIC resize of 8-bit images (Image.resize(size, Image.BICUBIC) with no box
 * and no reducing_gap), reproduced bit-exactly; private to io/. */
#pragma once
#include <stdint.h>

#include "common/status.h"

/* Writes the window [x0, x0+win_w) x [y0, y0+win_h) of `in` resized to (out_h, out_w):
 * out is (win_h, win_w, c), in is (in_h, in_w, c), interleaved uint8. The window lets a
 * caller that crops afterwards skip the pixels it would throw away; each output pixel is
 * the one Pillow computes at that place. The window must lie inside (out_h, out_w). */
rcc_status_t rcc_image_resize_bicubic(uint8_t *out, const uint8_t *in, int in_w, int in_h, int c,
                                      int out_w, int out_h, int x0, int y0, int win_w, int win_h);
