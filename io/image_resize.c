/* Pillow's BICUBIC resampling of 8-bit images, bit-exact (the algorithm of Pillow's
 * libImaging/Resample.c, written anew): two separable passes, horizontal then vertical,
 * each output pixel a weighted sum of the input pixels under a cubic kernel (a = -0.5)
 * stretched by the downscale factor, weights normalized to sum 1 in double precision,
 * then rounded to fixed point with 22 fraction bits, and sums rounded and clipped to
 * 0..255 after each pass. Every double operation keeps Pillow's order, because the
 * rounding of the weights depends on it. */
#include "io/image_resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Fixed-point fraction bits of the weights: 32 bits minus 8 for the pixel value and 2
 * for the headroom the negative lobes of the kernel need. */
#define PRECISION_BITS (32 - 8 - 2)

/* Keys' cubic convolution kernel with a = -0.5; it is zero from |x| = 2 on. */
#define BICUBIC_SUPPORT 2.0
static double bicubic(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

/* Weights of output positions [first, first+count) along one axis of in_size -> out_size:
 * output j reads inputs [start[j], start[j] + taps[j]) with weights w[j * ksize + t]. */
typedef struct {
  int ksize;
  int *start, *taps; /* (count) */
  int32_t *w;        /* (count, ksize) fixed point, PRECISION_BITS fraction bits */
} axis_weights_t;

static void axis_weights_free(axis_weights_t *a) {
  free(a->start);
  free(a->taps);
  free(a->w);
}

static rcc_status_t axis_weights_init(axis_weights_t *a, int in_size, int out_size, int first,
                                      int count) {
  memset(a, 0, sizeof *a);
  double scale = (double)in_size / out_size;
  /* Downscaling widens the kernel so that every input pixel contributes (antialiasing). */
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = BICUBIC_SUPPORT * filterscale;
  a->ksize = (int)ceil(support) * 2 + 1;
  a->start = malloc(sizeof(int) * (size_t)count);
  a->taps = malloc(sizeof(int) * (size_t)count);
  a->w = malloc(sizeof(int32_t) * (size_t)count * (size_t)a->ksize);
  double *k = malloc(sizeof(double) * (size_t)a->ksize);
  if (!a->start || !a->taps || !a->w || !k) {
    free(k);
    axis_weights_free(a);
    return rcc_fail(RCC_ERR_NOMEM, "image resize: no memory for %d x %d filter weights", count,
                    a->ksize);
  }
  for (int j = 0; j < count; j++) {
    int xx = first + j;
    double center = (xx + 0.5) * scale;
    double ss = 1.0 / filterscale;
    /* Pillow rounds the window ends with (int)(v + 0.5), which truncates toward zero. */
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; x++) {
      k[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    int32_t *w = a->w + (size_t)j * a->ksize;
    for (int x = 0; x < a->ksize; x++) {
      double v = x < xmax ? (ww != 0.0 ? k[x] / ww : k[x]) : 0.0;
      w[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                   : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
    }
    a->start[j] = xmin;
    a->taps[j] = xmax;
  }
  free(k);
  return RCC_OK;
}

/* Rounds a fixed-point sum (rounding bias already added) to a pixel, clipped to 0..255. */
static uint8_t clip8(int64_t v) {
  v >>= PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

rcc_status_t rcc_image_resize_bicubic(uint8_t *out, const uint8_t *in, int in_w, int in_h, int c,
                                      int out_w, int out_h, int x0, int y0, int win_w, int win_h) {
  if (in_w < 1 || in_h < 1 || out_w < 1 || out_h < 1 || c < 1 || c > 4 || win_w < 1 || win_h < 1 ||
      x0 < 0 || y0 < 0 || x0 + win_w > out_w || y0 + win_h > out_h)
    return rcc_fail(RCC_ERR_ARG,
                    "image resize: bad sizes (input %dx%dx%d, output %dx%d, window %dx%d at "
                    "%d,%d)",
                    in_w, in_h, c, out_w, out_h, win_w, win_h, x0, y0);
  /* Pillow skips a pass whose size does not change (it would be the identity anyway). */
  bool need_h = out_w != in_w, need_v = out_h != in_h;
  axis_weights_t wx = {0}, wy = {0};
  rcc_status_t st = RCC_OK;
  uint8_t *tmp = NULL;

  /* Input rows [r0, r1) are the ones the vertical pass reads for the window's rows. */
  int r0 = y0, r1 = y0 + win_h;
  if (need_v) {
    st = axis_weights_init(&wy, in_h, out_h, y0, win_h);
    if (st != RCC_OK) goto done;
    r0 = in_h;
    r1 = 0;
    for (int j = 0; j < win_h; j++) {
      if (wy.start[j] < r0) r0 = wy.start[j];
      if (wy.start[j] + wy.taps[j] > r1) r1 = wy.start[j] + wy.taps[j];
    }
  }
  if (need_h) {
    st = axis_weights_init(&wx, in_w, out_w, x0, win_w);
    if (st != RCC_OK) goto done;
  }

  /* Horizontal pass: tmp is (r1 - r0, win_w, c). */
  tmp = malloc((size_t)(r1 - r0) * (size_t)win_w * (size_t)c);
  if (!tmp) {
    st = rcc_fail(RCC_ERR_NOMEM, "image resize: no memory for %d x %d intermediate rows", r1 - r0,
                  win_w);
    goto done;
  }
  for (int y = r0; y < r1; y++) {
    const uint8_t *row = in + (size_t)y * in_w * c;
    uint8_t *dst = tmp + (size_t)(y - r0) * win_w * c;
    if (!need_h) {
      memcpy(dst, row + (size_t)x0 * c, (size_t)win_w * c);
      continue;
    }
    for (int i = 0; i < win_w; i++) {
      const int32_t *w = wx.w + (size_t)i * wx.ksize;
      const uint8_t *src = row + (size_t)wx.start[i] * c;
      for (int ch = 0; ch < c; ch++) {
        int64_t sum = 1 << (PRECISION_BITS - 1);
        for (int t = 0; t < wx.taps[i]; t++)
          sum += (int64_t)src[(size_t)t * c + ch] * w[t];
        dst[(size_t)i * c + ch] = clip8(sum);
      }
    }
  }

  /* Vertical pass: out is (win_h, win_w, c). */
  size_t row_bytes = (size_t)win_w * c;
  for (int j = 0; j < win_h; j++) {
    uint8_t *dst = out + (size_t)j * row_bytes;
    if (!need_v) {
      memcpy(dst, tmp + (size_t)j * row_bytes, row_bytes);
      continue;
    }
    const int32_t *w = wy.w + (size_t)j * wy.ksize;
    const uint8_t *src = tmp + (size_t)(wy.start[j] - r0) * row_bytes;
    for (size_t e = 0; e < row_bytes; e++) {
      int64_t sum = 1 << (PRECISION_BITS - 1);
      for (int t = 0; t < wy.taps[j]; t++)
        sum += (int64_t)src[(size_t)t * row_bytes + e] * w[t];
      dst[e] = clip8(sum);
    }
  }

done:
  free(tmp);
  axis_weights_free(&wx);
  axis_weights_free(&wy);
  return st;
}
