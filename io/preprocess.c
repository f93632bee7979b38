/* CLIP's image preprocessing: reading preprocessor_config.json and turning an image into
 * pixel_values exactly as transformers does.
 *
 * The reference is transformers' PIL backend, CLIPImageProcessorPil in transformers 5.x
 * (the class that older versions called CLIPImageProcessor; in 5.x that name and
 * AutoImageProcessor's default are the torchvision "fast" backend, whose antialiased
 * bicubic differs by a few levels). Its steps, each reproduced here:
 *   convert_to_rgb   gray replicated to three channels; alpha composited onto white
 *                    (done when decoding, see image_png.c)
 *   resize           shortest edge to size.shortest_edge, the other edge
 *                    int(shortest_edge * long / short) (get_resize_output_image_size),
 *                    with Pillow's BICUBIC on 8-bit pixels (image_resize.c)
 *   center_crop      offsets floor((size - crop) / 2) on the resized uint8 image; where
 *                    the image is smaller than the crop it is padded with zeros, which
 *                    places it at ceil((crop - size) / 2): the same floor formula
 *   rescale          float64(pixel) * rescale_factor, rounded to float32
 *   normalize        (x - mean) / std in float32
 * The output is channel-first (3, crop_height, crop_width) float32. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/image.h"
#include "io/image_resize.h"

/* OpenAI CLIP's normalization (transformers' OPENAI_CLIP_MEAN / OPENAI_CLIP_STD). */
static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
/* transformers' PILImageResampling.BICUBIC, the only filter implemented. */
#define PIL_BICUBIC 3
#define MAX_SIDE 32768

static void set_defaults(rcc_preprocess_t *pp, int size) {
  *pp = (rcc_preprocess_t){
      .do_convert_rgb = true,
      .do_resize = true,
      .do_center_crop = true,
      .do_rescale = true,
      .do_normalize = true,
      .shortest_edge = size,
      .crop_height = size,
      .crop_width = size,
      .rescale_factor = (float)(1.0 / 255.0),
  };
  memcpy(pp->mean, clip_mean, sizeof pp->mean);
  memcpy(pp->std, clip_std, sizeof pp->std);
}

static rcc_status_t read_text(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *bigger = cap < ((size_t)1 << 24) ? realloc(buf, cap * 2) : NULL;
    if (!bigger) {
      fclose(f);
      free(buf);
      return rcc_fail(RCC_ERR_FORMAT, "%s: too large for a preprocessor config", path);
    }
    buf = bigger;
    cap *= 2;
  }
  int failed = !buf || ferror(f);
  fclose(f);
  if (failed) {
    free(buf);
    return rcc_fail(RCC_ERR_IO, "%s: read error", path);
  }
  *text = buf;
  *len = n;
  return RCC_OK;
}

/* Line and column (1-based) of byte `at` in text, for JSON syntax errors. */
static void line_col(const char *text, const char *at, int *line, int *col) {
  *line = 1;
  *col = 1;
  for (const char *p = text; p < at; p++) {
    if (*p == '\n') {
      (*line)++;
      *col = 1;
    } else {
      (*col)++;
    }
  }
}

/* A present, non-null member (HF writes null for "use the class default"). */
static const cJSON *member(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return v && !cJSON_IsNull(v) ? v : NULL;
}

static rcc_status_t get_bool(const char *path, const cJSON *root, const char *key, bool *out) {
  const cJSON *v = member(root, key);
  if (!v) return RCC_OK;
  if (!cJSON_IsBool(v))
    return rcc_fail(RCC_ERR_FORMAT, "%s: key '%s': expected true or false", path, key);
  *out = cJSON_IsTrue(v);
  return RCC_OK;
}

/* An integer side length in 1..MAX_SIDE; `key` is the full name for messages. */
static rcc_status_t side_value(const char *path, const cJSON *v, const char *key, int *out) {
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
      v->valuedouble > MAX_SIDE)
    return rcc_fail(RCC_ERR_FORMAT, "%s: key '%s': expected an integer in 1..%d", path, key,
                    MAX_SIDE);
  *out = (int)v->valuedouble;
  return RCC_OK;
}

/* "size": {"shortest_edge": n} or a bare n (CLIP's get_size_dict reads an int as the
 * shortest edge). A fixed {"height", "width"} or a "longest_edge" would need fields that
 * rcc_preprocess_t does not have, so they are refused rather than approximated. */
static rcc_status_t get_size(const char *path, const cJSON *root, rcc_preprocess_t *pp) {
  const cJSON *v = member(root, "size");
  if (!v) return RCC_OK;
  if (cJSON_IsNumber(v)) return side_value(path, v, "size", &pp->shortest_edge);
  if (!cJSON_IsObject(v))
    return rcc_fail(RCC_ERR_FORMAT, "%s: key 'size': expected an object or an integer", path);
  const cJSON *se = member(v, "shortest_edge");
  if (se && !member(v, "longest_edge") && !member(v, "height") && !member(v, "width"))
    return side_value(path, se, "size.shortest_edge", &pp->shortest_edge);
  if (member(v, "height") || member(v, "width") || member(v, "longest_edge"))
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: key 'size': only {\"shortest_edge\": n} is supported (a fixed "
                    "height/width or a longest_edge is not)",
                    path);
  return rcc_fail(RCC_ERR_FORMAT, "%s: key 'size': missing 'shortest_edge'", path);
}

/* "crop_size": {"height": h, "width": w} or a bare n for a square. */
static rcc_status_t get_crop(const char *path, const cJSON *root, rcc_preprocess_t *pp) {
  const cJSON *v = member(root, "crop_size");
  if (!v) return RCC_OK;
  if (cJSON_IsNumber(v)) {
    RCC_TRY(side_value(path, v, "crop_size", &pp->crop_height));
    pp->crop_width = pp->crop_height;
    return RCC_OK;
  }
  if (!cJSON_IsObject(v))
    return rcc_fail(RCC_ERR_FORMAT, "%s: key 'crop_size': expected an object or an integer", path);
  const cJSON *h = member(v, "height"), *w = member(v, "width");
  if (!h || !w)
    return rcc_fail(RCC_ERR_FORMAT, "%s: key 'crop_size': needs both 'height' and 'width'", path);
  RCC_TRY(side_value(path, h, "crop_size.height", &pp->crop_height));
  return side_value(path, w, "crop_size.width", &pp->crop_width);
}

/* "image_mean" / "image_std": three numbers, or one for all channels. */
static rcc_status_t get_triple(const char *path, const cJSON *root, const char *key, bool nonzero,
                               float out[3]) {
  const cJSON *v = member(root, key);
  if (!v) return RCC_OK;
  double vals[3];
  if (cJSON_IsNumber(v)) {
    vals[0] = vals[1] = vals[2] = v->valuedouble;
  } else if (cJSON_IsArray(v) && cJSON_GetArraySize(v) == 3) {
    for (int i = 0; i < 3; i++) {
      const cJSON *e = cJSON_GetArrayItem(v, i);
      if (!cJSON_IsNumber(e))
        return rcc_fail(RCC_ERR_FORMAT, "%s: key '%s[%d]': expected a number", path, key, i);
      vals[i] = e->valuedouble;
    }
  } else {
    return rcc_fail(RCC_ERR_FORMAT, "%s: key '%s': expected a list of 3 numbers", path, key);
  }
  for (int i = 0; i < 3; i++) {
    if (!isfinite(vals[i]) || (nonzero && vals[i] == 0.0))
      return rcc_fail(RCC_ERR_FORMAT, "%s: key '%s[%d]': %g is not allowed", path, key, i, vals[i]);
    out[i] = (float)vals[i];
  }
  return RCC_OK;
}

static rcc_status_t parse_config(const char *path, const cJSON *root, rcc_preprocess_t *pp) {
  if (!cJSON_IsObject(root))
    return rcc_fail(RCC_ERR_FORMAT, "%s: expected a JSON object at the top level", path);
  RCC_TRY(get_bool(path, root, "do_convert_rgb", &pp->do_convert_rgb));
  RCC_TRY(get_bool(path, root, "do_resize", &pp->do_resize));
  RCC_TRY(get_bool(path, root, "do_center_crop", &pp->do_center_crop));
  RCC_TRY(get_bool(path, root, "do_rescale", &pp->do_rescale));
  RCC_TRY(get_bool(path, root, "do_normalize", &pp->do_normalize));
  RCC_TRY(get_size(path, root, pp));
  RCC_TRY(get_crop(path, root, pp));
  const cJSON *v = member(root, "rescale_factor");
  if (v) {
    if (!cJSON_IsNumber(v) || !(v->valuedouble > 0) || !isfinite(v->valuedouble))
      return rcc_fail(RCC_ERR_FORMAT, "%s: key 'rescale_factor': expected a positive number", path);
    pp->rescale_factor = (float)v->valuedouble;
  }
  RCC_TRY(get_triple(path, root, "image_mean", false, pp->mean));
  RCC_TRY(get_triple(path, root, "image_std", true, pp->std));
  v = member(root, "resample");
  if (v && !(cJSON_IsNumber(v) && v->valuedouble == PIL_BICUBIC))
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: key 'resample': only %d (bicubic, CLIP's filter) is supported", path,
                    PIL_BICUBIC);
  return RCC_OK;
}

rcc_status_t rcc_preprocess_load(const char *model_dir, int image_size, rcc_preprocess_t *out) {
  if (image_size < 1 || image_size > MAX_SIDE)
    return rcc_fail(RCC_ERR_ARG, "%s: image_size %d out of range 1..%d", model_dir, image_size,
                    MAX_SIDE);
  set_defaults(out, image_size);
  char path[4096];
  if (snprintf(path, sizeof path, "%s/preprocessor_config.json", model_dir) >= (int)sizeof path)
    return rcc_fail(RCC_ERR_ARG, "%s: model directory path too long", model_dir);
  FILE *probe = fopen(path, "rb");
  if (!probe && errno == ENOENT) return RCC_OK;
  if (probe) fclose(probe);

  char *text = NULL;
  size_t len = 0;
  RCC_TRY(read_text(path, &text, &len));
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (!root) {
    int line, col;
    line_col(text, end ? end : text, &line, &col);
    free(text);
    return rcc_fail(RCC_ERR_FORMAT, "%s:%d:%d: invalid JSON", path, line, col);
  }
  /* A file that is present follows transformers: keys it lacks take CLIPImageProcessor's
   * class defaults (224), not image_size. */
  set_defaults(out, 224);
  rcc_status_t st = parse_config(path, root, out);
  cJSON_Delete(root);
  free(text);
  return st;
}

/* Python's floor division by 2, for crop offsets that are negative when padding. */
static int floor_half(int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

rcc_status_t rcc_preprocess_image(const rcc_preprocess_t *pp, const rcc_image_t *img, float *out) {
  if (!img || !img->pixels || img->width < 1 || img->height < 1 ||
      (img->channels != 1 && img->channels != 3))
    return rcc_fail(RCC_ERR_ARG, "preprocess: bad image (%dx%d, %d channels)", img ? img->width : 0,
                    img ? img->height : 0, img ? img->channels : 0);
  if (pp->crop_height < 1 || pp->crop_width < 1 || (pp->do_resize && pp->shortest_edge < 1))
    return rcc_fail(RCC_ERR_ARG, "preprocess: bad settings (shortest edge %d, crop %dx%d)",
                    pp->shortest_edge, pp->crop_height, pp->crop_width);
  int w = img->width, h = img->height, c = img->channels;

  /* Size after resize (rh, rw): the short side becomes shortest_edge, the long side
   * int(shortest_edge * long / short) with the division in double, as in Python. */
  int rh = h, rw = w;
  if (pp->do_resize) {
    int se = pp->shortest_edge;
    if (w <= h) {
      rw = se;
      rh = (int)((double)((long long)se * h) / (double)w);
    } else {
      rh = se;
      rw = (int)((double)((long long)se * w) / (double)h);
    }
  }
  int ch = pp->crop_height, cw = pp->crop_width;
  if (!pp->do_center_crop && (rh != ch || rw != cw))
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "preprocess: without center crop the image is %dx%d, not the %dx%d output", rw,
                    rh, cw, ch);
  /* Output pixel (y, x) is resized pixel (y + oy, x + ox), zero outside the image. */
  int oy = pp->do_center_crop ? floor_half(rh - ch) : 0;
  int ox = pp->do_center_crop ? floor_half(rw - cw) : 0;
  int y0 = oy > 0 ? oy : 0, y1 = oy + ch < rh ? oy + ch : rh;
  int x0 = ox > 0 ? ox : 0, x1 = ox + cw < rw ? ox + cw : rw;

  /* Only the part of the resized image that the crop keeps: (y1 - y0, x1 - x0, c). */
  uint8_t *win = malloc((size_t)(y1 - y0) * (size_t)(x1 - x0) * (size_t)c);
  if (!win)
    return rcc_fail(RCC_ERR_NOMEM, "preprocess: no memory for a %dx%d crop", x1 - x0, y1 - y0);
  rcc_status_t st =
      rcc_image_resize_bicubic(win, img->pixels, w, h, c, rw, rh, x0, y0, x1 - x0, y1 - y0);
  if (st != RCC_OK) {
    free(win);
    return st;
  }

  /* value[k][p]: what pixel value p becomes in channel k, with transformers' types:
   * the rescale in double then float32, the normalization in float32. transformers
   * multiplies by the config's factor as a Python float (double), but rcc_preprocess_t
   * holds a float: for 1/255, the factor of every CLIP config, the double is taken back
   * so that pixel_values are bit-identical; another factor is off by at most one float32
   * rounding of the rescaled value. */
  double rescale = pp->rescale_factor == (float)(1.0 / 255.0) ? 1.0 / 255.0 : pp->rescale_factor;
  float value[3][256];
  for (int k = 0; k < 3; k++) {
    for (int p = 0; p < 256; p++) {
      float v = pp->do_rescale ? (float)((double)p * rescale) : (float)p;
      value[k][p] = pp->do_normalize ? (v - pp->mean[k]) / pp->std[k] : v;
    }
  }
  /* A gray image gives the same value to all three channels: convert_to_rgb replicates
   * it. transformers skips that when do_convert_rgb is false and then fails on a
   * one-channel image; we replicate regardless, as the model needs three channels. */
  for (int k = 0; k < 3; k++) {
    int src_k = c == 1 ? 0 : k;
    for (int y = 0; y < ch; y++) {
      float *dst = out + ((size_t)k * ch + y) * cw;
      int sy = y + oy;
      for (int x = 0; x < cw; x++) {
        int sx = x + ox;
        uint8_t p = 0;
        if (sy >= y0 && sy < y1 && sx >= x0 && sx < x1)
          p = win[((size_t)(sy - y0) * (x1 - x0) + (sx - x0)) * c + src_k];
        dst[x] = value[k][p];
      }
    }
  }
  free(win);
  return RCC_OK;
}
