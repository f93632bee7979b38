/* safetensors writer (io/safetensors.h): checks the tensors, builds the JSON header in
 * the given order ("__metadata__" first), pads it with spaces to a multiple of 8 bytes as
 * HF's writer does, and writes the file atomically (temporary file, fsync, rename). */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this writer assumes a little-endian host"
#endif

/* ---- argument checks -------------------------------------------------------------- */

static int cmp_str_ptr(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sets *dup to the first name that occurs twice among names (n), or NULL. */
static rcc_status_t find_duplicate(const char *const *names, int n, const char **dup) {
  *dup = NULL;
  const char **sorted = malloc(((size_t)n + 1) * sizeof *sorted);
  if (!sorted) return RCC_ERR_NOMEM;
  if (n > 0) memcpy(sorted, names, (size_t)n * sizeof *sorted); /* names is NULL when n is 0 */
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_str_ptr);
  for (int i = 1; i < n && !*dup; i++)
    if (strcmp(sorted[i - 1], sorted[i]) == 0) *dup = sorted[i];
  free(sorted);
  return RCC_OK;
}

/* Checks one tensor: known dtype, shape vs numel, data present; *nbytes its byte size. */
static rcc_status_t check_tensor(const char *path, const rcc_tensor_t *t, int i, uint64_t *nbytes) {
  if (!t->name) return rcc_fail(RCC_ERR_ARG, "%s: tensor %d has no name", path, i);
  if (strcmp(t->name, "__metadata__") == 0)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor %d: the name __metadata__ is reserved", path, i);
  size_t dsize = rcc_dtype_size(t->dtype);
  if (dsize == 0)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': invalid dtype %d", path, t->name, (int)t->dtype);
  if (t->ndim < 0 || t->ndim > RCC_MAX_DIMS)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': ndim %d not in [0, %d]", path, t->name, t->ndim,
                    RCC_MAX_DIMS);
  uint64_t numel = 1;
  for (int d = 0; d < t->ndim; d++) {
    if (t->shape[d] < 0)
      return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': shape[%d] is negative (%lld)", path, t->name,
                      d, (long long)t->shape[d]);
    uint64_t v = (uint64_t)t->shape[d];
    if (v != 0 && numel > (uint64_t)INT64_MAX / v)
      return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': element count of the shape overflows", path,
                      t->name);
    numel *= v;
  }
  if (t->numel < 0 || (uint64_t)t->numel != numel)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': numel %lld does not match its shape (%llu)",
                    path, t->name, (long long)t->numel, (unsigned long long)numel);
  if (numel > UINT64_MAX / dsize)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': byte size overflows", path, t->name);
  if (numel > 0 && !t->data)
    return rcc_fail(RCC_ERR_ARG, "%s: tensor '%s': %llu elements but no data", path, t->name,
                    (unsigned long long)numel);
  *nbytes = numel * dsize;
  return RCC_OK;
}

static rcc_status_t check_args(const char *path, const rcc_tensor_t *tensors, int n,
                               const char *const *meta_keys, const char *const *meta_values,
                               int n_meta, uint64_t *nbytes) {
  if (n < 0 || n_meta < 0 || (n > 0 && !tensors) || (n_meta > 0 && (!meta_keys || !meta_values)))
    return rcc_fail(RCC_ERR_ARG, "%s: invalid tensor or metadata arrays (n=%d, n_meta=%d)", path, n,
                    n_meta);
  for (int i = 0; i < n; i++)
    RCC_TRY(check_tensor(path, &tensors[i], i, &nbytes[i]));
  for (int i = 0; i < n_meta; i++)
    if (!meta_keys[i] || !meta_values[i])
      return rcc_fail(RCC_ERR_ARG, "%s: metadata entry %d has a NULL key or value", path, i);

  const char **names = malloc(((size_t)n + 1) * sizeof *names);
  if (!names) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  for (int i = 0; i < n; i++)
    names[i] = tensors[i].name;
  const char *dup = NULL;
  rcc_status_t rc = find_duplicate(names, n, &dup);
  free(names);
  if (rc != RCC_OK) return rcc_fail(rc, "%s: out of memory", path);
  if (dup) return rcc_fail(RCC_ERR_ARG, "%s: duplicate tensor name '%s'", path, dup);
  if (find_duplicate(meta_keys, n_meta, &dup) != RCC_OK)
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  if (dup) return rcc_fail(RCC_ERR_ARG, "%s: duplicate metadata key '%s'", path, dup);
  return RCC_OK;
}

/* ---- header ----------------------------------------------------------------------- */

/* Growable byte buffer; `failed` latches an allocation failure so appends can be chained. */
typedef struct {
  char *p;
  size_t len, cap;
  int failed;
} strbuf_t;

static void sb_put(strbuf_t *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->failed = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void sb_puts(strbuf_t *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_printf_u64(strbuf_t *b, uint64_t v) {
  char tmp[24];
  snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
  sb_puts(b, tmp);
}

/* A JSON string literal escaped as serde_json (HF's writer) does, so that our headers are
 * byte-identical to theirs: \" \\ \b \f \n \r \t, other control bytes as \u00xx, all
 * other bytes (UTF-8 included) unchanged. */
static void sb_json_string(strbuf_t *b, const char *s) {
  sb_put(b, "\"", 1);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    char esc[8];
    switch (*c) {
    case '"': sb_puts(b, "\\\""); break;
    case '\\': sb_puts(b, "\\\\"); break;
    case '\b': sb_puts(b, "\\b"); break;
    case '\f': sb_puts(b, "\\f"); break;
    case '\n': sb_puts(b, "\\n"); break;
    case '\r': sb_puts(b, "\\r"); break;
    case '\t': sb_puts(b, "\\t"); break;
    default:
      if (*c < 0x20) {
        snprintf(esc, sizeof esc, "\\u%04x", *c);
        sb_puts(b, esc);
      } else {
        sb_put(b, (const char *)c, 1);
      }
    }
  }
  sb_put(b, "\"", 1);
}

/* {"__metadata__":{"k":"v",..},"name":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},..}
 * followed by spaces up to a multiple of 8 bytes. */
static rcc_status_t build_header(const char *path, strbuf_t *b, const rcc_tensor_t *tensors, int n,
                                 const uint64_t *nbytes, const char *const *meta_keys,
                                 const char *const *meta_values, int n_meta) {
  sb_put(b, "{", 1);
  if (n_meta > 0) {
    sb_puts(b, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
      if (i) sb_put(b, ",", 1);
      sb_json_string(b, meta_keys[i]);
      sb_put(b, ":", 1);
      sb_json_string(b, meta_values[i]);
    }
    sb_puts(b, n > 0 ? "}," : "}");
  }
  uint64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const rcc_tensor_t *t = &tensors[i];
    if (i) sb_put(b, ",", 1);
    sb_json_string(b, t->name);
    sb_puts(b, ":{\"dtype\":\"");
    sb_puts(b, rcc_dtype_name(t->dtype));
    sb_puts(b, "\",\"shape\":[");
    for (int d = 0; d < t->ndim; d++) {
      if (d) sb_put(b, ",", 1);
      sb_printf_u64(b, (uint64_t)t->shape[d]);
    }
    sb_puts(b, "],\"data_offsets\":[");
    sb_printf_u64(b, offset);
    sb_put(b, ",", 1);
    offset += nbytes[i];
    sb_printf_u64(b, offset);
    sb_puts(b, "]}");
  }
  sb_put(b, "}", 1);
  while (!b->failed && b->len % 8 != 0)
    sb_put(b, " ", 1);
  if (b->failed) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for the header", path);
  return RCC_OK;
}

/* ---- file ------------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, uint64_t n) {
  const char *p = buf;
  while (n > 0) {
    /* Linux moves at most ~2 GiB per write() call. */
    size_t chunk = n > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)n;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += w;
    n -= (uint64_t)w;
  }
  return 0;
}

/* Writes length prefix, header and data to the open fd, then flushes to disk. */
static rcc_status_t write_contents(const char *tmp, int fd, const strbuf_t *header,
                                   const rcc_tensor_t *tensors, int n, const uint64_t *nbytes) {
  unsigned char len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
  if (write_all(fd, len, 8) != 0 || write_all(fd, header->p, header->len) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot write header: %s", tmp, strerror(errno));
  for (int i = 0; i < n; i++)
    if (nbytes[i] && write_all(fd, tensors[i].data, nbytes[i]) != 0)
      return rcc_fail(RCC_ERR_IO, "%s: cannot write tensor '%s': %s", tmp, tensors[i].name,
                      strerror(errno));
  if (fsync(fd) != 0) return rcc_fail(RCC_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
  return RCC_OK;
}

/* The rename is only durable once the directory entry is on disk. The file is already
 * complete and in place when this runs, so a failure here is not reported. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
  if (!dir) return;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
  free(dir);
}

rcc_status_t rcc_st_save(const char *path, const rcc_tensor_t *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta) {
  if (!path) return rcc_fail(RCC_ERR_ARG, "rcc_st_save: NULL path");
  uint64_t *nbytes = calloc((size_t)(n > 0 ? n : 0) + 1, sizeof *nbytes);
  if (!nbytes) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  strbuf_t header = {0};
  char *tmp = NULL;
  int fd = -1;
  rcc_status_t rc = check_args(path, tensors, n, meta_keys, meta_values, n_meta, nbytes);
  if (rc == RCC_OK)
    rc = build_header(path, &header, tensors, n, nbytes, meta_keys, meta_values, n_meta);

  if (rc == RCC_OK) {
    size_t tmp_size = strlen(path) + 32;
    tmp = malloc(tmp_size);
    if (!tmp)
      rc = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
    else
      snprintf(tmp, tmp_size, "%s.tmp.%ld", path, (long)getpid());
  }
  if (rc == RCC_OK) {
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      rc = rcc_fail(RCC_ERR_IO, "%s: cannot create temporary file %s: %s", path, tmp,
                    strerror(errno));
  }
  if (rc == RCC_OK) rc = write_contents(tmp, fd, &header, tensors, n, nbytes);
  if (fd >= 0 && close(fd) != 0 && rc == RCC_OK)
    rc = rcc_fail(RCC_ERR_IO, "%s: close failed: %s", tmp, strerror(errno));
  if (rc == RCC_OK && rename(tmp, path) != 0)
    rc = rcc_fail(RCC_ERR_IO, "%s: cannot rename %s over it: %s", path, tmp, strerror(errno));
  if (rc == RCC_OK)
    sync_parent_dir(path);
  else if (fd >= 0)
    unlink(tmp);

  free(tmp);
  free(header.p);
  free(nbytes);
  return rc;
}
