/* safetensors reader (io/safetensors.h): mmaps the file, validates the whole header
 * before touching tensor data, and hands out tensors that point into the copy-on-write
 * mapping (F32 and integer dtypes, when aligned) or into owned F32 buffers (F16, BF16,
 * F64 converted). File layout: u64 little-endian header length N, N bytes of JSON, data. */
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

/* A header larger than this is a corrupt length field, not a real model (HF's own
 * reader uses the same limit). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)
/* JSON numbers are doubles: integers above 2^53 cannot be represented exactly. */
#define ST_MAX_JSON_INT 9007199254740992.0

struct rcc_safetensors {
  void *map;
  size_t map_size;
  int count;
  rcc_tensor_t *tensors;    /* [count], header order */
  rcc_dtype_t *file_dtypes; /* [count] */
  unsigned char *owned;     /* [count]: 1 when tensors[i].data is malloc'ed */
  int *by_name;             /* [count] tensor indices sorted by name, for rcc_st_find */
  int n_meta;
  char **meta_keys, **meta_values; /* [n_meta], header order */
};

/* One tensor entry of the header, validated, before any data is read. `name` points
 * into the cJSON tree. Byte range [begin, end) is relative to the data section. */
typedef struct {
  const char *name;
  rcc_dtype_t dtype;
  int ndim;
  int64_t shape[RCC_MAX_DIMS];
  int64_t numel;
  uint64_t begin, end;
} st_entry_t;

/* ---- header validation ---------------------------------------------------------- */

/* Reads a non-negative integer JSON number (a dimension or a byte offset). */
static rcc_status_t json_index(const char *path, const char *tensor, const char *what,
                               const cJSON *item, uint64_t *out) {
  if (!cJSON_IsNumber(item))
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': %s is not a number", path, tensor, what);
  double d = item->valuedouble;
  if (!(d >= 0.0))
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': %s is negative (%g)", path, tensor, what, d);
  if (d > ST_MAX_JSON_INT)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': %s is too large (%g)", path, tensor, what, d);
  if ((double)(uint64_t)d != d)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': %s is not an integer (%g)", path, tensor,
                    what, d);
  *out = (uint64_t)d;
  return RCC_OK;
}

/* Parses {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} and checks it
 * against itself and the data section size. */
static rcc_status_t parse_entry(const char *path, const cJSON *obj, uint64_t data_size,
                                st_entry_t *e) {
  const char *name = e->name;
  if (!cJSON_IsObject(obj))
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object", path, name);

  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(obj, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(obj, "shape");
  const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(obj, "data_offsets");
  if (!dtype) return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': missing dtype", path, name);
  if (!shape) return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': missing shape", path, name);
  if (!offsets)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': missing data_offsets", path, name);

  if (!cJSON_IsString(dtype))
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': dtype is not a string", path, name);
  if (rcc_dtype_parse(dtype->valuestring, &e->dtype) != 0)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': unknown or unsupported dtype '%s'", path,
                    name, dtype->valuestring);

  if (!cJSON_IsArray(shape))
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': shape is not an array", path, name);
  int ndim = cJSON_GetArraySize(shape);
  if (ndim > RCC_MAX_DIMS)
    return rcc_fail(RCC_ERR_UNSUPPORTED, "%s: tensor '%s': %d dimensions, at most %d supported",
                    path, name, ndim, RCC_MAX_DIMS);
  e->ndim = ndim;
  e->numel = 1;
  int d = 0;
  for (const cJSON *dim = shape->child; dim; dim = dim->next, d++) {
    char what[32];
    snprintf(what, sizeof what, "shape[%d]", d);
    uint64_t v;
    RCC_TRY(json_index(path, name, what, dim, &v));
    e->shape[d] = (int64_t)v;
    if (v != 0 && (uint64_t)e->numel > (uint64_t)INT64_MAX / v)
      return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': element count of the shape overflows", path,
                      name);
    e->numel *= (int64_t)v;
  }
  size_t dsize = rcc_dtype_size(e->dtype);
  if ((uint64_t)e->numel > UINT64_MAX / dsize)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': byte size of the shape overflows", path,
                    name);
  uint64_t nbytes = (uint64_t)e->numel * dsize;

  if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': data_offsets is not [begin, end]", path,
                    name);
  RCC_TRY(json_index(path, name, "data_offsets[0]", offsets->child, &e->begin));
  RCC_TRY(json_index(path, name, "data_offsets[1]", offsets->child->next, &e->end));
  if (e->begin > e->end)
    return rcc_fail(RCC_ERR_FORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", path,
                    name, (unsigned long long)e->begin, (unsigned long long)e->end);
  if (e->end > data_size)
    return rcc_fail(RCC_ERR_FORMAT,
                    "%s: tensor '%s': data_offsets end %llu past the end of the data section "
                    "(%llu bytes)",
                    path, name, (unsigned long long)e->end, (unsigned long long)data_size);
  if (e->end - e->begin != nbytes)
    return rcc_fail(RCC_ERR_FORMAT,
                    "%s: tensor '%s': data_offsets span %llu bytes but %lld %s elements need "
                    "%llu",
                    path, name, (unsigned long long)(e->end - e->begin), (long long)e->numel,
                    rcc_dtype_name(e->dtype), (unsigned long long)nbytes);
  return RCC_OK;
}

/* __metadata__ must be a JSON object of string values; keys must be unique. */
static rcc_status_t parse_metadata(const char *path, const cJSON *meta, rcc_safetensors_t *st) {
  if (!cJSON_IsObject(meta))
    return rcc_fail(RCC_ERR_FORMAT, "%s: __metadata__ is not a JSON object", path);
  int n = cJSON_GetArraySize(meta);
  st->meta_keys = calloc((size_t)n + 1, sizeof *st->meta_keys);
  st->meta_values = calloc((size_t)n + 1, sizeof *st->meta_values);
  if (!st->meta_keys || !st->meta_values)
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for metadata", path);
  for (const cJSON *kv = meta->child; kv; kv = kv->next) {
    if (!cJSON_IsString(kv))
      return rcc_fail(RCC_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string", path,
                      kv->string);
    for (int j = 0; j < st->n_meta; j++)
      if (strcmp(st->meta_keys[j], kv->string) == 0)
        return rcc_fail(RCC_ERR_FORMAT, "%s: __metadata__ has duplicate key '%s'", path,
                        kv->string);
    st->meta_keys[st->n_meta] = strdup(kv->string);
    st->meta_values[st->n_meta] = strdup(kv->valuestring);
    st->n_meta++;
    if (!st->meta_keys[st->n_meta - 1] || !st->meta_values[st->n_meta - 1])
      return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for metadata", path);
  }
  return RCC_OK;
}

static int cmp_by_name(const void *a, const void *b) {
  return strcmp((*(const st_entry_t *const *)a)->name, (*(const st_entry_t *const *)b)->name);
}

static int cmp_by_begin(const void *a, const void *b) {
  const st_entry_t *x = *(const st_entry_t *const *)a, *y = *(const st_entry_t *const *)b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* Rejects duplicate names and overlapping byte ranges among the n entries e, and fills
 * by_name (n) with their indices sorted by name. `sorted` is scratch space of n pointers. */
static rcc_status_t check_names_and_ranges(const char *path, const st_entry_t *e, int n,
                                           int *by_name, const st_entry_t **sorted) {
  for (int i = 0; i < n; i++)
    sorted[i] = &e[i];
  qsort(sorted, (size_t)n, sizeof *sorted, cmp_by_name);
  for (int i = 0; i < n; i++) {
    by_name[i] = (int)(sorted[i] - e);
    if (i > 0 && strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
      return rcc_fail(RCC_ERR_FORMAT, "%s: duplicate tensor name '%s'", path, sorted[i]->name);
  }

  qsort(sorted, (size_t)n, sizeof *sorted, cmp_by_begin);
  /* `last` is the range reaching furthest so far; empty ranges hold no bytes and cannot
   * overlap anything. */
  const st_entry_t *last = NULL;
  for (int i = 0; i < n; i++) {
    const st_entry_t *cur = sorted[i];
    if (cur->begin == cur->end) continue;
    if (last && cur->begin < last->end)
      return rcc_fail(RCC_ERR_FORMAT,
                      "%s: tensors '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap in the data "
                      "section",
                      path, last->name, (unsigned long long)last->begin,
                      (unsigned long long)last->end, cur->name, (unsigned long long)cur->begin,
                      (unsigned long long)cur->end);
    if (!last || cur->end > last->end) last = cur;
  }
  return RCC_OK;
}

/* ---- conversion to F32 ------------------------------------------------------------ */

static float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

/* IEEE binary16 -> binary32, exact for every input (subnormals, inf, NaN payloads). */
static float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) {
    /* Zero or subnormal: mant * 2^-24, exactly representable as a normal float. */
    float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
  return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

/* dst (n) F32 from src (n) of dtype dt, read byte-wise since src may be unaligned. */
static void convert_to_f32(float *dst, const unsigned char *src, int64_t n, rcc_dtype_t dt) {
  for (int64_t i = 0; i < n; i++) {
    if (dt == RCC_DTYPE_F16) {
      uint16_t h;
      memcpy(&h, src + 2 * i, 2);
      dst[i] = f16_to_f32(h);
    } else if (dt == RCC_DTYPE_BF16) {
      uint16_t b;
      memcpy(&b, src + 2 * i, 2);
      dst[i] = f32_from_bits((uint32_t)b << 16);
    } else {
      double d;
      memcpy(&d, src + 8 * i, 8);
      dst[i] = (float)d;
    }
  }
}

/* Points tensor i at its bytes in the mapping, or at an owned copy/conversion. */
static rcc_status_t load_tensor(const char *path, rcc_safetensors_t *st, int i, const st_entry_t *e,
                                unsigned char *data_section) {
  rcc_tensor_t *t = &st->tensors[i];
  t->name = strdup(e->name);
  if (!t->name) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for tensor names", path);
  t->ndim = e->ndim;
  memcpy(t->shape, e->shape, sizeof t->shape);
  t->numel = e->numel;
  st->file_dtypes[i] = e->dtype;
  int convert =
      e->dtype == RCC_DTYPE_F16 || e->dtype == RCC_DTYPE_BF16 || e->dtype == RCC_DTYPE_F64;
  t->dtype = convert ? RCC_DTYPE_F32 : e->dtype;
  if (e->numel == 0) return RCC_OK; /* data stays NULL */

  unsigned char *src = data_section + e->begin;
  size_t out_size = rcc_dtype_size(t->dtype);
  if (!convert && (uintptr_t)src % out_size == 0) {
    t->data = src;
    return RCC_OK;
  }
  t->data = malloc((size_t)e->numel * out_size);
  if (!t->data)
    return rcc_fail(RCC_ERR_NOMEM, "%s: tensor '%s': out of memory for %lld elements", path,
                    e->name, (long long)e->numel);
  st->owned[i] = 1;
  if (convert)
    convert_to_f32(t->data, src, e->numel, e->dtype);
  else
    memcpy(t->data, src, (size_t)e->numel * out_size);
  return RCC_OK;
}

/* ---- open / close ----------------------------------------------------------------- */

/* Maps the file and checks the length prefix; *header is a NUL-terminated copy. */
static rcc_status_t map_file(const char *path, rcc_safetensors_t *st, char **header,
                             uint64_t *header_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return rcc_fail(RCC_ERR_IO, "%s: not a regular file", path);
  }
  if (sb.st_size < 8) {
    close(fd);
    return rcc_fail(RCC_ERR_FORMAT, "%s: file is %lld bytes, shorter than the 8-byte header length",
                    path, (long long)sb.st_size);
  }
  if ((uint64_t)sb.st_size > SIZE_MAX) {
    close(fd);
    return rcc_fail(RCC_ERR_NOMEM, "%s: file too large to map", path);
  }
  /* Private + writable: callers may modify tensors in place without touching the file. */
  void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  close(fd);
  if (map == MAP_FAILED)
    return rcc_fail(RCC_ERR_IO, "%s: cannot mmap: %s", path, strerror(map_errno));
  st->map = map;
  st->map_size = (size_t)sb.st_size;

  const unsigned char *p = map;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | p[i];
  if (n > ST_MAX_HEADER)
    return rcc_fail(RCC_ERR_FORMAT, "%s: header length %llu is absurdly large (limit %llu)", path,
                    (unsigned long long)n, (unsigned long long)ST_MAX_HEADER);
  if (n > st->map_size - 8)
    return rcc_fail(RCC_ERR_FORMAT, "%s: header length %llu past the end of the file (%zu bytes)",
                    path, (unsigned long long)n, st->map_size);
  *header = malloc((size_t)n + 1);
  if (!*header) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for the header", path);
  memcpy(*header, p + 8, (size_t)n);
  (*header)[n] = '\0';
  *header_len = n;
  return RCC_OK;
}

/* Parses and validates the header, then loads every tensor. */
static rcc_status_t read_header(const char *path, rcc_safetensors_t *st, const char *header,
                                uint64_t header_len) {
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithLengthOpts(header, (size_t)header_len, &end, 0);
  if (!root) {
    size_t at = end && end >= header ? (size_t)(end - header) : 0;
    return rcc_fail(RCC_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu)", path, at);
  }
  /* HF pads the header with spaces; anything else after the JSON value is corrupt. */
  for (const char *c = end; c < header + header_len; c++) {
    if (*c != ' ' && *c != '\t' && *c != '\n' && *c != '\r') {
      cJSON_Delete(root);
      return rcc_fail(RCC_ERR_FORMAT,
                      "%s: header has trailing bytes after the JSON object (at byte %zu)", path,
                      (size_t)(c - header));
    }
  }
  if (!cJSON_IsObject(root)) {
    cJSON_Delete(root);
    return rcc_fail(RCC_ERR_FORMAT, "%s: header is not a JSON object", path);
  }

  int n_keys = cJSON_GetArraySize(root);
  st_entry_t *entries = calloc((size_t)n_keys + 1, sizeof *entries);
  const st_entry_t **sorted = malloc(((size_t)n_keys + 1) * sizeof *sorted);
  st->by_name = malloc(((size_t)n_keys + 1) * sizeof *st->by_name);
  rcc_status_t rc = RCC_OK;
  if (!entries || !sorted || !st->by_name)
    rc = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for %d header entries", path, n_keys);

  uint64_t data_size = st->map_size - 8 - header_len;
  int n = 0, seen_meta = 0;
  for (const cJSON *item = root->child; item && rc == RCC_OK; item = item->next) {
    if (strcmp(item->string, "__metadata__") == 0) {
      if (seen_meta++) {
        rc = rcc_fail(RCC_ERR_FORMAT, "%s: duplicate __metadata__ entry", path);
        break;
      }
      rc = parse_metadata(path, item, st);
      continue;
    }
    entries[n].name = item->string;
    rc = parse_entry(path, item, data_size, &entries[n]);
    n++;
  }
  if (rc == RCC_OK) rc = check_names_and_ranges(path, entries, n, st->by_name, sorted);

  if (rc == RCC_OK) {
    st->tensors = calloc((size_t)n + 1, sizeof *st->tensors);
    st->file_dtypes = calloc((size_t)n + 1, sizeof *st->file_dtypes);
    st->owned = calloc((size_t)n + 1, 1);
    if (!st->tensors || !st->file_dtypes || !st->owned)
      rc = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory for %d tensors", path, n);
  }
  unsigned char *data_section = (unsigned char *)st->map + 8 + header_len;
  for (int i = 0; i < n && rc == RCC_OK; i++) {
    rc = load_tensor(path, st, i, &entries[i], data_section);
    st->count = i + 1;
  }
  free(entries);
  free(sorted);
  cJSON_Delete(root);
  return rc;
}

rcc_status_t rcc_st_open(const char *path, rcc_safetensors_t **out) {
  if (!path || !out) return rcc_fail(RCC_ERR_ARG, "rcc_st_open: NULL path or output");
  *out = NULL;
  rcc_safetensors_t *st = calloc(1, sizeof *st);
  if (!st) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  char *header = NULL;
  uint64_t header_len = 0;
  rcc_status_t rc = map_file(path, st, &header, &header_len);
  if (rc == RCC_OK) rc = read_header(path, st, header, header_len);
  free(header);
  if (rc != RCC_OK) {
    rcc_st_close(st);
    return rc;
  }
  *out = st;
  return RCC_OK;
}

void rcc_st_close(rcc_safetensors_t *st) {
  if (!st) return;
  for (int i = 0; i < st->count; i++) {
    free(st->tensors[i].name);
    if (st->owned[i]) free(st->tensors[i].data);
  }
  for (int i = 0; i < st->n_meta; i++) {
    free(st->meta_keys[i]);
    free(st->meta_values[i]);
  }
  free(st->meta_keys);
  free(st->meta_values);
  free(st->tensors);
  free(st->file_dtypes);
  free(st->owned);
  free(st->by_name);
  if (st->map) munmap(st->map, st->map_size);
  free(st);
}

/* ---- accessors -------------------------------------------------------------------- */

int rcc_st_count(const rcc_safetensors_t *st) { return st ? st->count : 0; }

rcc_tensor_t *rcc_st_tensor(rcc_safetensors_t *st, int i) {
  return st && i >= 0 && i < st->count ? &st->tensors[i] : NULL;
}

rcc_tensor_t *rcc_st_find(rcc_safetensors_t *st, const char *name) {
  if (!st || !name) return NULL;
  int lo = 0, hi = st->count - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int c = strcmp(name, st->tensors[st->by_name[mid]].name);
    if (c == 0) return &st->tensors[st->by_name[mid]];
    if (c < 0)
      hi = mid - 1;
    else
      lo = mid + 1;
  }
  return NULL;
}

rcc_dtype_t rcc_st_file_dtype(const rcc_safetensors_t *st, int i) {
  /* Out of range is a caller bug; answer the in-memory default rather than read past. */
  return st && i >= 0 && i < st->count ? st->file_dtypes[i] : RCC_DTYPE_F32;
}

const char *rcc_st_metadata(const rcc_safetensors_t *st, const char *key) {
  if (!st || !key) return NULL;
  for (int i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta_keys[i], key) == 0) return st->meta_values[i];
  return NULL;
}

int rcc_st_metadata_count(const rcc_safetensors_t *st) { return st ? st->n_meta : 0; }

void rcc_st_metadata_at(const rcc_safetensors_t *st, int i, const char **key, const char **value) {
  int ok = st && i >= 0 && i < st->n_meta;
  if (key) *key = ok ? st->meta_keys[i] : NULL;
  if (value) *value = ok ? st->meta_values[i] : NULL;
}
