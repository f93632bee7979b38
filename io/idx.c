/* IDX reader (LeCun's MNIST format): a big-endian header, magic 0x00 0x00 <type> <ndim>,
 * ndim 32-bit dimensions, then the data. Only unsigned bytes (type 0x08) with 1 to 3
 * dimensions. Read through zlib's gz* functions, which take gzip and plain files alike. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "io/dataset.h"

/* The largest data we accept (Fashion-MNIST's training images are 47 MB). */
#define MAX_BYTES ((size_t)1 << 31)
#define TYPE_UBYTE 0x08

/* Reads up to n bytes; returns how many, or -1 on a zlib error (message in *what). */
static long long read_some(gzFile f, uint8_t *buf, size_t n, const char **what) {
  size_t got = 0;
  while (got < n) {
    size_t chunk = n - got < ((size_t)1 << 30) ? n - got : (size_t)1 << 30;
    int r = gzread(f, buf + got, (unsigned)chunk);
    if (r < 0) {
      int code;
      *what = gzerror(f, &code);
      return -1;
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  return (long long)got;
}

static rcc_status_t read_idx(gzFile f, const char *path, rcc_idx_t *out) {
  const char *zmsg = "";
  uint8_t head[4 + 4 * 3];
  long long got = read_some(f, head, 4, &zmsg);
  if (got < 0) return rcc_fail(RCC_ERR_FORMAT, "%s: cannot decompress: %s", path, zmsg);
  if (got < 4) return rcc_fail(RCC_ERR_FORMAT, "%s: truncated IDX header", path);
  if (head[0] != 0 || head[1] != 0)
    return rcc_fail(RCC_ERR_FORMAT, "%s: not an IDX file (magic %02x %02x %02x %02x)", path,
                    head[0], head[1], head[2], head[3]);
  if (head[2] != TYPE_UBYTE)
    return rcc_fail(RCC_ERR_UNSUPPORTED,
                    "%s: IDX element type 0x%02x is not supported (only 0x08, unsigned byte)", path,
                    head[2]);
  int ndim = head[3];
  if (ndim < 1 || ndim > 3)
    return rcc_fail(RCC_ERR_UNSUPPORTED, "%s: IDX with %d dimensions (1 to 3 are supported)", path,
                    ndim);
  got = read_some(f, head + 4, 4 * (size_t)ndim, &zmsg);
  if (got < 0) return rcc_fail(RCC_ERR_FORMAT, "%s: cannot decompress: %s", path, zmsg);
  if (got < 4 * ndim) return rcc_fail(RCC_ERR_FORMAT, "%s: truncated IDX header", path);

  *out = (rcc_idx_t){.ndim = ndim};
  size_t total = 1;
  for (int d = 0; d < ndim; d++) {
    const uint8_t *p = head + 4 + 4 * d;
    uint32_t v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    if (v == 0) return rcc_fail(RCC_ERR_FORMAT, "%s: IDX dimension %d is 0", path, d);
    if (v > MAX_BYTES / total)
      return rcc_fail(RCC_ERR_FORMAT, "%s: IDX dimension %d (%u) takes the data past %zu bytes",
                      path, d, v, MAX_BYTES);
    out->dims[d] = (int)v;
    total *= v;
  }

  /* The header may lie (a corrupt or truncated file): grow the buffer with the bytes that
   * really arrive instead of trusting `total` with one allocation. */
  size_t cap = total < ((size_t)1 << 20) ? total : (size_t)1 << 20, have = 0;
  uint8_t *data = malloc(cap);
  while (data) {
    got = read_some(f, data + have, cap - have, &zmsg);
    if (got < 0) {
      free(data);
      return rcc_fail(RCC_ERR_FORMAT, "%s: cannot decompress after %zu data bytes: %s", path, have,
                      zmsg);
    }
    have += (size_t)got;
    if (have < cap || have == total) break;
    size_t bigger = cap * 2 < total ? cap * 2 : total;
    uint8_t *grown = realloc(data, bigger);
    if (!grown) free(data);
    data = grown;
    cap = bigger;
  }
  if (!data) return rcc_fail(RCC_ERR_NOMEM, "%s: no memory for %zu bytes of IDX data", path, cap);
  if (have < total) {
    free(data);
    return rcc_fail(RCC_ERR_FORMAT,
                    "%s: truncated: the header promises %zu data bytes, the file "
                    "holds %zu",
                    path, total, have);
  }
  uint8_t extra;
  got = read_some(f, &extra, 1, &zmsg);
  if (got != 0) {
    free(data);
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s after the %zu data bytes the header promises", path,
                    got < 0 ? zmsg : "extra bytes", total);
  }
  out->data = data;
  return RCC_OK;
}

rcc_status_t rcc_idx_load(const char *path, rcc_idx_t *out) {
  *out = (rcc_idx_t){0};
  errno = 0;
  gzFile f = gzopen(path, "rb");
  if (!f)
    return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path,
                    errno ? strerror(errno) : "out of memory");
  rcc_status_t st = read_idx(f, path, out);
  gzclose(f);
  if (st != RCC_OK) *out = (rcc_idx_t){0};
  return st;
}

void rcc_idx_free(rcc_idx_t *idx) {
  if (!idx) return;
  free(idx->data);
  *idx = (rcc_idx_t){0};
}
