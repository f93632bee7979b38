/* JPEG decoding with libjpeg-turbo, set up as Pillow sets it up (the library's defaults:
 * islow integer IDCT, fancy upsampling, YCbCr -> RGB in the library), so the pixels
 * equal Pillow's. libjpeg reports errors through a callback that must not return: ours
 * longjmps back here instead of calling exit(). */
#include <setjmp.h>
#include <stdio.h>
/* jpeglib.h needs stdio.h (FILE) first. */
#include <jerror.h>
#include <jpeglib.h>
#include <stdlib.h>
#include <string.h>

#include "io/image_decode.h"

typedef struct {
  struct jpeg_error_mgr mgr; /* first, so libjpeg's pointer to it is a pointer to us */
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
} jpeg_error_t;

static void on_error(j_common_ptr cinfo) {
  jpeg_error_t *err = (jpeg_error_t *)cinfo->err;
  cinfo->err->format_message(cinfo, err->message);
  longjmp(err->jump, 1);
}

/* Warnings are dropped (the library would print them), except premature end of data:
 * libjpeg would pad the image with gray, where Pillow raises "image file is truncated".
 * The same for a marker met inside the entropy-coded data (a segment cut short): Pillow
 * would take the gray padding there, but a corrupt image is not one to evaluate on, and
 * a few KB of it may claim millions of pixels of padding to decode. */
static void on_message(j_common_ptr cinfo, int level) {
  int code = cinfo->err->msg_code;
  if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) on_error(cinfo);
}

/* Everything libjpeg's error path touches lives here, owned by the caller of decode(),
 * so that none of it is a local of the function that calls setjmp. */
typedef struct {
  struct jpeg_decompress_struct cinfo;
  jpeg_error_t err;
  uint8_t *pixels;
  int width, height, channels;
} jpeg_job_t;

static rcc_status_t decode(jpeg_job_t *job, const char *path, const uint8_t *data, size_t size) {
  struct jpeg_decompress_struct *cinfo = &job->cinfo;
  if (setjmp(job->err.jump))
    return rcc_fail(RCC_ERR_FORMAT, "%s: corrupt JPEG (%s)", path, job->err.message);
  jpeg_create_decompress(cinfo);
  jpeg_mem_src(cinfo, data, (unsigned long)size);
  jpeg_read_header(cinfo, TRUE);
  if (cinfo->image_width > RCC_IMAGE_MAX_SIDE || cinfo->image_height > RCC_IMAGE_MAX_SIDE)
    return rcc_fail(RCC_ERR_NOMEM, "%s: JPEG of %ux%u pixels is past the limit of %d per side",
                    path, cinfo->image_width, cinfo->image_height, RCC_IMAGE_MAX_SIDE);
  if ((unsigned long long)cinfo->image_width * cinfo->image_height > RCC_IMAGE_MAX_PIXELS)
    return rcc_fail(RCC_ERR_NOMEM, "%s: JPEG of %ux%u pixels is past the limit of %llu pixels",
                    path, cinfo->image_width, cinfo->image_height, RCC_IMAGE_MAX_PIXELS);
  if (cinfo->jpeg_color_space == JCS_GRAYSCALE)
    cinfo->out_color_space = JCS_GRAYSCALE;
  else if (cinfo->jpeg_color_space == JCS_YCbCr || cinfo->jpeg_color_space == JCS_RGB)
    cinfo->out_color_space = JCS_RGB;
  else
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: JPEG colour space %d (CMYK or YCCK) is not supported; convert it to RGB",
                    path, (int)cinfo->jpeg_color_space);

  jpeg_start_decompress(cinfo);
  job->width = (int)cinfo->output_width;
  job->height = (int)cinfo->output_height;
  job->channels = cinfo->output_components;
  size_t stride = (size_t)job->width * (size_t)job->channels;
  job->pixels = malloc(stride * (size_t)job->height);
  if (!job->pixels)
    return rcc_fail(RCC_ERR_NOMEM, "%s: no memory for %dx%d pixels", path, job->width, job->height);
  while (cinfo->output_scanline < cinfo->output_height) {
    JSAMPROW row = job->pixels + cinfo->output_scanline * stride;
    jpeg_read_scanlines(cinfo, &row, 1);
  }
  jpeg_finish_decompress(cinfo);
  return RCC_OK;
}

rcc_status_t rcc_image_decode_jpeg(const char *path, const uint8_t *data, size_t size,
                                   rcc_image_t *out) {
  jpeg_job_t job;
  /* Zeroed, so that destroying after an early error frees only what was made. */
  memset(&job, 0, sizeof job);
  job.cinfo.err = jpeg_std_error(&job.err.mgr);
  job.err.mgr.error_exit = on_error;
  job.err.mgr.emit_message = on_message;
  rcc_status_t st = decode(&job, path, data, size);
  jpeg_destroy_decompress(&job.cinfo);
  if (st != RCC_OK) {
    free(job.pixels);
    return st;
  }
  *out = (rcc_image_t){
      .width = job.width, .height = job.height, .channels = job.channels, .pixels = job.pixels};
  return RCC_OK;
}
