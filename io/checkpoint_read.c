/* Checkpoint reader (io/checkpoint.h): opens the file with the sec2 driver (never MPI-IO,
 * so one rank can read alone inside an MPI job), checks the format version, reads the root
 * attributes, then every dataset below the root (H5Ovisit, in name order) into owned
 * buffers, checking each one's size against the file's and its CRC-32 against its "crc32"
 * attribute. Whatever is wrong with the file's contents is RCC_ERR_FORMAT, naming the file
 * and the dataset; a file that cannot be opened at all is RCC_ERR_IO. */
#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint_h5.h"

typedef struct {
  const char *path;
  uint64_t file_size; /* no dataset or attribute can hold more bytes than this */
  rcc_ckpt_t *out;
  int cap;         /* allocated entries of out->datasets */
  rcc_status_t rc; /* the failure that stopped H5Ovisit */
} reader_t;

/* Opens attribute `name` of `loc` into *attr; it must exist and hold one value. */
static rcc_status_t open_scalar_attr(hid_t loc, const char *name, hid_t *attr) {
  rcc_status_t rc = RCC_OK;
  hid_t space = H5I_INVALID_HID;
  htri_t exists;
  hssize_t npoints;
  RCC_CHECK_H5(RCC_ERR_FORMAT, exists = H5Aexists(loc, name));
  if (!exists) return rcc_fail(RCC_ERR_FORMAT, "attribute '%s' is missing", name);
  RCC_CHECK_H5(RCC_ERR_FORMAT, *attr = H5Aopen(loc, name, H5P_DEFAULT));
  RCC_CHECK_H5(RCC_ERR_FORMAT, space = H5Aget_space(*attr));
  RCC_CHECK_H5(RCC_ERR_FORMAT, npoints = H5Sget_simple_extent_npoints(space));
  if (npoints != 1)
    rc = rcc_fail(RCC_ERR_FORMAT, "attribute '%s' has %lld values, expected one", name,
                  (long long)npoints);
done:
  rcc_h5_close(space);
  if (rc != RCC_OK) {
    rcc_h5_close(*attr);
    *attr = H5I_INVALID_HID;
  }
  return rc;
}

/* Reads the scalar attribute `name` of `loc` into `value` as `mem_type` (HDF5 converts
 * between integer sizes and fails on other classes). */
static rcc_status_t read_attr(hid_t loc, const char *name, hid_t mem_type, void *value) {
  hid_t attr = H5I_INVALID_HID;
  rcc_status_t rc = open_scalar_attr(loc, name, &attr);
  if (rc == RCC_OK) RCC_CHECK_H5(RCC_ERR_FORMAT, H5Aread(attr, mem_type, value));
done:
  rcc_h5_close(attr);
  return rc;
}

/* A fixed-length string attribute as the writer stores it, into a malloc'ed *value. */
static rcc_status_t read_string_attr(const reader_t *r, hid_t loc, const char *name, char **value) {
  hid_t attr = H5I_INVALID_HID, type = H5I_INVALID_HID, mem = H5I_INVALID_HID;
  size_t size = 0;
  *value = NULL;
  rcc_status_t rc = open_scalar_attr(loc, name, &attr);
  if (rc != RCC_OK) goto done;
  RCC_CHECK_H5(RCC_ERR_FORMAT, type = H5Aget_type(attr));
  if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0 ||
      (size = H5Tget_size(type)) == 0 || size > r->file_size) {
    rc = rcc_fail(RCC_ERR_FORMAT, "attribute '%s' is not a fixed-length string", name);
    goto done;
  }
  if (!(*value = calloc(size + 1, 1))) {
    rc = rcc_fail(RCC_ERR_NOMEM, "attribute '%s': out of memory for %zu bytes", name, size);
    goto done;
  }
  RCC_CHECK_H5(RCC_ERR_FORMAT, mem = H5Tcopy(H5T_C_S1));
  RCC_CHECK_H5(RCC_ERR_FORMAT, H5Tset_size(mem, size));
  RCC_CHECK_H5(RCC_ERR_FORMAT, H5Aread(attr, mem, *value));
done:
  rcc_h5_close(mem);
  rcc_h5_close(type);
  rcc_h5_close(attr);
  if (rc != RCC_OK) {
    free(*value);
    *value = NULL;
  }
  return rc;
}

static rcc_status_t read_meta(const reader_t *r, hid_t file, rcc_ckpt_t *out) {
  rcc_status_t rc;
  char *fingerprint = NULL;
  htri_t has_history;
  RCC_TRY(read_attr(file, "format_version", H5T_NATIVE_INT, &out->format_version));
  if (out->format_version != RCC_CKPT_FORMAT_VERSION)
    return rcc_fail(RCC_ERR_FORMAT, "format_version %d, this build reads %d", out->format_version,
                    RCC_CKPT_FORMAT_VERSION);
  RCC_TRY(read_attr(file, "stage_index", H5T_NATIVE_INT, &out->meta.stage_index));
  RCC_TRY(read_string_attr(r, file, "fingerprint", &fingerprint));
  if (strlen(fingerprint) >= sizeof out->meta.fingerprint) {
    free(fingerprint);
    return rcc_fail(RCC_ERR_FORMAT, "fingerprint longer than %zu characters",
                    sizeof out->meta.fingerprint - 1);
  }
  strcpy(out->meta.fingerprint, fingerprint);
  free(fingerprint);
  RCC_CHECK_H5(RCC_ERR_FORMAT, has_history = H5Aexists(file, "history"));
  if (has_history) return read_string_attr(r, file, "history", &out->meta.history);
  rc = RCC_OK;
done:
  return rc;
}

/* The dtype whose file type `type` is; -1 when a checkpoint holds no such type. */
static int dtype_of(hid_t type, rcc_dtype_t *dt) {
  const rcc_dtype_t all[] = {RCC_DTYPE_F32, RCC_DTYPE_F64, RCC_DTYPE_I64, RCC_DTYPE_I32,
                             RCC_DTYPE_U8};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    if (H5Tequal(type, rcc_h5_file_type(all[i])) > 0) {
      *dt = all[i];
      return 0;
    }
  }
  return -1;
}

static rcc_status_t append(reader_t *r, rcc_tensor_t *t) {
  rcc_ckpt_t *ck = r->out;
  if (ck->n == r->cap) {
    int cap = r->cap ? 2 * r->cap : 16;
    rcc_tensor_t *p = realloc(ck->datasets, (size_t)cap * sizeof *p);
    if (!p) return rcc_fail(RCC_ERR_NOMEM, "out of memory for the dataset list");
    ck->datasets = p;
    r->cap = cap;
  }
  ck->datasets[ck->n++] = *t;
  return RCC_OK;
}

/* Reads dataset `name` (relative to `root`), checks its CRC and appends it to r->out. */
static rcc_status_t read_dataset(reader_t *r, hid_t root, const char *name) {
  rcc_status_t rc = RCC_OK;
  hid_t dset = H5I_INVALID_HID, type = H5I_INVALID_HID, space = H5I_INVALID_HID;
  rcc_tensor_t t = {.numel = 1};
  hsize_t dims[2] = {0, 0};
  int ndim;
  uint32_t stored = 0;
  RCC_CHECK_H5(RCC_ERR_FORMAT, dset = H5Dopen2(root, name, H5P_DEFAULT));
  RCC_CHECK_H5(RCC_ERR_FORMAT, type = H5Dget_type(dset));
  if (dtype_of(type, &t.dtype) != 0) {
    rc = rcc_fail(RCC_ERR_FORMAT, "element type is not one of F32, F64, I64, I32, U8");
    goto done;
  }
  RCC_CHECK_H5(RCC_ERR_FORMAT, space = H5Dget_space(dset));
  RCC_CHECK_H5(RCC_ERR_FORMAT, ndim = H5Sget_simple_extent_ndims(space));
  if (ndim < 1 || ndim > 2) {
    rc = rcc_fail(RCC_ERR_FORMAT, "%d dimensions, expected 1 or 2", ndim);
    goto done;
  }
  RCC_CHECK_H5(RCC_ERR_FORMAT, H5Sget_simple_extent_dims(space, dims, NULL));
  t.ndim = ndim;
  /* Refuse before allocating: the data cannot be larger than the file that holds it. */
  uint64_t max_numel = r->file_size / rcc_dtype_size(t.dtype);
  for (int k = 0; k < ndim; k++) {
    if (dims[k] != 0 && (uint64_t)t.numel > max_numel / dims[k]) {
      rc = rcc_fail(RCC_ERR_FORMAT, "shape (%llu, %llu) holds more than the file's %llu bytes",
                    (unsigned long long)dims[0], (unsigned long long)dims[1],
                    (unsigned long long)r->file_size);
      goto done;
    }
    t.shape[k] = (int64_t)dims[k];
    t.numel *= (int64_t)dims[k];
  }
  size_t nbytes = (size_t)t.numel * rcc_dtype_size(t.dtype);
  if ((rc = read_attr(dset, "crc32", H5T_NATIVE_UINT32, &stored)) != RCC_OK) goto done;
  if (!(t.data = malloc(nbytes ? nbytes : 1)) || !(t.name = strdup(name))) {
    rc = rcc_fail(RCC_ERR_NOMEM, "out of memory for %zu bytes", nbytes);
    goto done;
  }
  RCC_CHECK_H5(RCC_ERR_FORMAT,
               H5Dread(dset, rcc_h5_mem_type(t.dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data));
  uint32_t actual = rcc_ckpt_crc32(t.data, nbytes);
  if (actual != stored) {
    rc = rcc_fail(RCC_ERR_FORMAT, "CRC-32 of the data is %08x, the file says %08x: corrupted",
                  (unsigned)actual, (unsigned)stored);
    goto done;
  }
  rc = append(r, &t);
done:
  rcc_h5_close(space);
  rcc_h5_close(type);
  rcc_h5_close(dset);
  if (rc != RCC_OK) {
    free(t.data);
    free(t.name);
    rcc_fail_context(rc, "%s: dataset '%s'", r->path, name);
  }
  return rc;
}

static herr_t visit_cb(hid_t root, const char *name, const H5O_info_t *info, void *data) {
  reader_t *r = data;
  if (info->type != H5O_TYPE_DATASET) return 0;
  r->rc = read_dataset(r, root, name);
  return r->rc == RCC_OK ? 0 : -1;
}

rcc_status_t rcc_ckpt_read(const char *path, rcc_ckpt_t *out) {
  if (!out) return rcc_fail(RCC_ERR_ARG, "rcc_ckpt_read: NULL output");
  memset(out, 0, sizeof *out);
  if (!path) return rcc_fail(RCC_ERR_ARG, "rcc_ckpt_read: NULL path");
  /* A file we cannot open is an I/O error; one that HDF5 cannot open is malformed. */
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    return rcc_fail(RCC_ERR_IO, "%s: cannot open the checkpoint: %s", path, strerror(err));
  }
  close(fd);
  if (!S_ISREG(st.st_mode))
    return rcc_fail(RCC_ERR_IO, "%s: cannot read the checkpoint: not a regular file", path);
  rcc_h5_quiet();

  reader_t r = {.path = path, .file_size = (uint64_t)st.st_size, .out = out};
  rcc_status_t rc = RCC_OK;
  hid_t fapl = H5I_INVALID_HID, file = H5I_INVALID_HID;
  RCC_CHECK_H5(RCC_ERR_FORMAT, fapl = H5Pcreate(H5P_FILE_ACCESS));
  RCC_CHECK_H5(RCC_ERR_FORMAT, H5Pset_fapl_sec2(fapl));
  RCC_CHECK_H5(RCC_ERR_FORMAT, file = H5Fopen(path, H5F_ACC_RDONLY, fapl));
  if ((rc = read_meta(&r, file, out)) != RCC_OK) goto done;
    /* H5Ovisit gained a `fields` argument (and a new info struct) in HDF5 1.12. */
#if H5_VERSION_GE(1, 12, 0)
  herr_t visited = H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &r, H5O_INFO_BASIC);
#else
  herr_t visited = H5Ovisit(file, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &r);
#endif
  if (visited < 0)
    rc = r.rc != RCC_OK ? r.rc : rcc_h5_fail(RCC_ERR_FORMAT, __FILE__, __LINE__, "H5Ovisit");
done:
  rcc_h5_close(file);
  rcc_h5_close(fapl);
  if (rc != RCC_OK) {
    /* A dataset's message already names the file. */
    if (r.rc == RCC_OK) rcc_fail_context(rc, "%s", path);
    rcc_ckpt_free(out);
  }
  return rc;
}

const rcc_tensor_t *rcc_ckpt_find(const rcc_ckpt_t *ck, const char *name) {
  for (int i = 0; ck && name && i < ck->n; i++)
    if (strcmp(ck->datasets[i].name, name) == 0) return &ck->datasets[i];
  return NULL;
}

void rcc_ckpt_free(rcc_ckpt_t *ck) {
  if (!ck) return;
  for (int i = 0; i < ck->n; i++) {
    free(ck->datasets[i].name);
    free(ck->datasets[i].data);
  }
  free(ck->datasets);
  free(ck->meta.history);
  memset(ck, 0, sizeof *ck);
}
