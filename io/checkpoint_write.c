/* Checkpoint writer (io/checkpoint.h). With MPI initialised every rank opens PATH.tmp
 * through MPI-IO and makes the same metadata calls in the same order (root attributes,
 * every dataset and its "crc32" attribute); then each owner writes its datasets' data, every
 * rank closes the file, and rank 0 renames it to PATH. Without MPI the same steps run in
 * one process on HDF5's default sec2 driver.
 *
 * Ranks learn of each other's failures at agree() points, one before each phase made of
 * collective calls, so that no rank waits in a collective HDF5 call that another rank has
 * skipped. Metadata calls are identical on every rank and so fail alike everywhere (a rank
 * running out of memory inside HDF5 is the exception no check between calls can catch);
 * what can fail on one rank alone (arguments, memory, the owner's data, its write) is
 * settled by an agree() before the next collective call.
 *
 * Data transfer: independent by default. Each dataset is written whole by its one owner, so
 * MPI-IO's collective buffering has nothing to aggregate, while a collective write would
 * make every rank enter H5Dwrite (with an empty selection) for every dataset: one
 * synchronisation per dataset for no gain. RCC_CKPT_COLLECTIVE=1 switches to collective
 * transfer (for file systems where it helps); the code path is the same. */
#include "io/checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint_h5.h"

typedef struct {
  const char *path;
  char *tmp;      /* PATH.tmp: the same name on every rank */
  int parallel;   /* MPI initialised: MPI-IO driver, collective metadata */
  int rank, size; /* 0 and 1 without MPI */
  int collective; /* collective data transfer (RCC_CKPT_COLLECTIVE=1) */
} writer_t;

/* Without MPI every dataset is this process's to write, whatever its owner says. */
static int owns(const writer_t *w, const rcc_ckpt_dataset_t *d) {
  return !w->parallel || d->owner == w->rank;
}

/* Every rank learns whether any rank failed. A failed rank keeps its own status and
 * message; the others take the status of the lowest failed rank and a message naming it. */
static rcc_status_t agree(const writer_t *w, rcc_status_t st) {
  if (!w->parallel) return st;
  /* MINLOC over (rank if failed else size, status): the lowest failed rank, its status. */
  int in[2] = {st != RCC_OK ? w->rank : w->size, (int)st}, out[2];
  if (MPI_Allreduce(in, out, 1, MPI_2INT, MPI_MINLOC, MPI_COMM_WORLD) != MPI_SUCCESS)
    return rcc_fail(RCC_ERR_MPI, "%s: MPI_Allreduce of the error flag failed", w->path);
  if (st != RCC_OK || out[0] == w->size) return st;
  return rcc_fail((rcc_status_t)out[1], "%s: rank %d failed to write the checkpoint", w->path,
                  out[0]);
}

/* ---- phase 1 (local): arguments and CRCs -------------------------------------------------- */

/* A path below the root: not empty, no leading, trailing or doubled '/'. */
static int valid_name(const char *s) {
  size_t len = s ? strlen(s) : 0;
  return len > 0 && s[0] != '/' && s[len - 1] != '/' && !strstr(s, "//");
}

static rcc_status_t check_dataset(const writer_t *w, const rcc_ckpt_dataset_t *d, int i,
                                  size_t *nbytes) {
  if (!valid_name(d->name))
    return rcc_fail(RCC_ERR_ARG, "%s: dataset %d: invalid name '%s'", w->path, i,
                    d->name ? d->name : "(null)");
  if (rcc_h5_file_type(d->dtype) < 0)
    return rcc_fail(RCC_ERR_ARG, "%s: dataset '%s': dtype %s is not one of F32, F64, I64, I32, U8",
                    w->path, d->name, rcc_dtype_name(d->dtype));
  if (d->ndim < 1 || d->ndim > 2)
    return rcc_fail(RCC_ERR_ARG, "%s: dataset '%s': ndim %d, expected 1 or 2", w->path, d->name,
                    d->ndim);
  size_t numel = 1;
  for (int k = 0; k < d->ndim; k++) {
    if (d->shape[k] < 0 || (d->shape[k] > 0 && numel > SIZE_MAX / 8 / (size_t)d->shape[k]))
      return rcc_fail(RCC_ERR_ARG, "%s: dataset '%s': shape[%d] = %lld is negative or too large",
                      w->path, d->name, k, (long long)d->shape[k]);
    numel *= (size_t)d->shape[k];
  }
  if (w->parallel && (d->owner < 0 || d->owner >= w->size))
    return rcc_fail(RCC_ERR_ARG, "%s: dataset '%s': owner %d is not a rank of %d", w->path, d->name,
                    d->owner, w->size);
  *nbytes = numel * rcc_dtype_size(d->dtype);
  if (owns(w, d) && *nbytes > 0 && !d->data)
    return rcc_fail(RCC_ERR_ARG, "%s: dataset '%s': its owner (rank %d) passed no data", w->path,
                    d->name, w->rank);
  return RCC_OK;
}

/* Checks the arguments and sets crc[i] for the datasets this rank owns (0 for others). */
static rcc_status_t prepare(const writer_t *w, const rcc_ckpt_meta_t *meta,
                            const rcc_ckpt_dataset_t *ds, int n, uint32_t *crc) {
  if (!meta || !memchr(meta->fingerprint, '\0', sizeof meta->fingerprint))
    return rcc_fail(RCC_ERR_ARG, "%s: no meta, or a fingerprint without its NUL", w->path);
  for (int i = 0; i < n; i++) {
    size_t nbytes = 0;
    RCC_TRY(check_dataset(w, &ds[i], i, &nbytes));
    crc[i] = owns(w, &ds[i]) ? rcc_ckpt_crc32(ds[i].data, nbytes) : 0;
  }
  return RCC_OK;
}

/* ---- phases 2 and 3 (collective metadata) ------------------------------------------------ */

/* PATH.tmp, created (or truncated) by every rank together; the transfer list for phase 4. */
static rcc_status_t create_file(const writer_t *w, hid_t *file, hid_t *dxpl) {
  rcc_status_t rc = RCC_OK;
  hid_t fapl = H5I_INVALID_HID;
  RCC_CHECK_H5(RCC_ERR_IO, fapl = H5Pcreate(H5P_FILE_ACCESS));
  if (w->parallel) RCC_CHECK_H5(RCC_ERR_IO, H5Pset_fapl_mpio(fapl, MPI_COMM_WORLD, MPI_INFO_NULL));
  /* The 1.8 file format stores large attributes densely: "history" may pass 64 KiB. */
  RCC_CHECK_H5(RCC_ERR_IO, H5Pset_libver_bounds(fapl, H5F_LIBVER_V18, H5F_LIBVER_LATEST));
  RCC_CHECK_H5(RCC_ERR_IO, *file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl));
  RCC_CHECK_H5(RCC_ERR_IO, *dxpl = H5Pcreate(H5P_DATASET_XFER));
  if (w->parallel)
    RCC_CHECK_H5(RCC_ERR_IO, H5Pset_dxpl_mpio(*dxpl, w->collective ? H5FD_MPIO_COLLECTIVE
                                                                   : H5FD_MPIO_INDEPENDENT));
done:
  rcc_h5_close(fapl);
  if (rc != RCC_OK) rcc_fail_context(rc, "%s: creating the checkpoint", w->path);
  return rc;
}

/* A scalar attribute `name` of `loc`; `type` is both its file and its memory type. */
static rcc_status_t write_attr(hid_t loc, const char *name, hid_t type, const void *value) {
  rcc_status_t rc = RCC_OK;
  hid_t space = H5I_INVALID_HID, attr = H5I_INVALID_HID;
  RCC_CHECK_H5(RCC_ERR_IO, space = H5Screate(H5S_SCALAR));
  RCC_CHECK_H5(RCC_ERR_IO, attr = H5Acreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT));
  RCC_CHECK_H5(RCC_ERR_IO, H5Awrite(attr, type, value));
done:
  rcc_h5_close(attr);
  rcc_h5_close(space);
  if (rc != RCC_OK) rcc_fail_context(rc, "attribute '%s'", name);
  return rc;
}

/* A NUL-terminated fixed-length string (h5py reads it as bytes; h5dump prints it). */
static rcc_status_t write_string_attr(hid_t loc, const char *name, const char *value) {
  rcc_status_t rc = RCC_OK;
  hid_t type = H5I_INVALID_HID;
  RCC_CHECK_H5(RCC_ERR_IO, type = H5Tcopy(H5T_C_S1));
  RCC_CHECK_H5(RCC_ERR_IO, H5Tset_size(type, strlen(value) + 1));
  RCC_CHECK_H5(RCC_ERR_IO, H5Tset_strpad(type, H5T_STR_NULLTERM));
  rc = write_attr(loc, name, type, value);
done:
  rcc_h5_close(type);
  return rc;
}

static rcc_status_t write_root_attrs(hid_t file, const rcc_ckpt_meta_t *meta) {
  const int version = RCC_CKPT_FORMAT_VERSION;
  RCC_TRY(write_attr(file, "format_version", H5T_NATIVE_INT, &version));
  RCC_TRY(write_string_attr(file, "fingerprint", meta->fingerprint));
  RCC_TRY(write_attr(file, "stage_index", H5T_NATIVE_INT, &meta->stage_index));
  if (meta->history) RCC_TRY(write_string_attr(file, "history", meta->history));
  return write_string_attr(file, "writer", "rcc-dist");
}

/* Creates every dataset (dset[i]) with its "crc32" attribute, the same calls on every rank.
 * Space is allocated at creation (as parallel HDF5 requires) and never filled: the owner's
 * write is the only write of each byte. */
static rcc_status_t create_datasets(const writer_t *w, hid_t file, const rcc_ckpt_meta_t *meta,
                                    const rcc_ckpt_dataset_t *ds, int n, const uint32_t *crc,
                                    hid_t *dset) {
  rcc_status_t rc = RCC_OK;
  hid_t lcpl = H5I_INVALID_HID, dcpl = H5I_INVALID_HID, space = H5I_INVALID_HID;
  const char *name = NULL;
  if ((rc = write_root_attrs(file, meta)) != RCC_OK) goto done;
  RCC_CHECK_H5(RCC_ERR_IO, lcpl = H5Pcreate(H5P_LINK_CREATE));
  RCC_CHECK_H5(RCC_ERR_IO, H5Pset_create_intermediate_group(lcpl, 1));
  RCC_CHECK_H5(RCC_ERR_IO, dcpl = H5Pcreate(H5P_DATASET_CREATE));
  RCC_CHECK_H5(RCC_ERR_IO, H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY));
  RCC_CHECK_H5(RCC_ERR_IO, H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER));
  for (int i = 0; i < n; i++) {
    const rcc_ckpt_dataset_t *d = &ds[i];
    const hsize_t dims[2] = {(hsize_t)d->shape[0], d->ndim > 1 ? (hsize_t)d->shape[1] : 0};
    name = d->name;
    RCC_CHECK_H5(RCC_ERR_IO, space = H5Screate_simple(d->ndim, dims, NULL));
    RCC_CHECK_H5(RCC_ERR_IO, dset[i] = H5Dcreate2(file, d->name, rcc_h5_file_type(d->dtype), space,
                                                  lcpl, dcpl, H5P_DEFAULT));
    rcc_h5_close(space);
    space = H5I_INVALID_HID;
    if ((rc = write_attr(dset[i], "crc32", H5T_NATIVE_UINT32, &crc[i])) != RCC_OK) goto done;
  }
  name = NULL;
done:
  rcc_h5_close(space);
  rcc_h5_close(dcpl);
  rcc_h5_close(lcpl);
  if (rc != RCC_OK && name)
    rcc_fail_context(rc, "%s: dataset '%s'", w->tmp, name);
  else if (rc != RCC_OK)
    rcc_fail_context(rc, "%s", w->tmp);
  return rc;
}

/* ---- phase 4: data ------------------------------------------------------------------------ */

/* The owner writes the whole dataset; in collective mode the other ranks take part with an
 * empty selection (H5Sselect_none), as every rank must enter a collective H5Dwrite. */
static rcc_status_t write_one(const writer_t *w, hid_t dset, hid_t dxpl,
                              const rcc_ckpt_dataset_t *d) {
  rcc_status_t rc = RCC_OK;
  hid_t sel = H5I_INVALID_HID;
  RCC_CHECK_H5(RCC_ERR_IO, sel = H5Dget_space(dset));
  if (!owns(w, d)) RCC_CHECK_H5(RCC_ERR_IO, H5Sselect_none(sel));
  RCC_CHECK_H5(RCC_ERR_IO, H5Dwrite(dset, rcc_h5_mem_type(d->dtype), sel, sel, dxpl, d->data));
done:
  rcc_h5_close(sel);
  if (rc != RCC_OK) rcc_fail_context(rc, "%s: dataset '%s'", w->tmp, d->name);
  return rc;
}

static rcc_status_t write_data(const writer_t *w, const rcc_ckpt_dataset_t *ds, int n,
                               const hid_t *dset, hid_t dxpl) {
  rcc_status_t rc = RCC_OK;
  for (int i = 0; i < n && rc == RCC_OK; i++) {
    /* A dataset without elements has no storage to write to (and HDF5 1.10's collective
     * path fails on it); shapes are the same on every rank, so every rank skips it. */
    if (ds[i].shape[0] == 0 || (ds[i].ndim == 2 && ds[i].shape[1] == 0)) continue;
    if (w->collective || owns(w, &ds[i])) rc = write_one(w, dset[i], dxpl, &ds[i]);
    /* Collective: every rank must know before the next collective H5Dwrite. */
    if (w->collective) rc = agree(w, rc);
  }
  return rc;
}

/* ---- phase 5 (rank 0): PATH.tmp -> PATH ---------------------------------------------------- */

static rcc_status_t fsync_path(const char *path, int flags) {
  int fd = open(path, flags | O_CLOEXEC);
  if (fd < 0) return rcc_fail(RCC_ERR_IO, "%s: cannot open to sync: %s", path, strerror(errno));
  int bad = fsync(fd) != 0;
  int err = errno;
  close(fd);
  if (bad) return rcc_fail(RCC_ERR_IO, "%s: fsync failed: %s", path, strerror(err));
  return RCC_OK;
}

/* The data on disk first, then the rename, then the directory entry: a PATH that exists
 * after a crash is complete. */
static rcc_status_t publish(const writer_t *w) {
  RCC_TRY(fsync_path(w->tmp, O_RDONLY));
  if (rename(w->tmp, w->path) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot rename %s to it: %s", w->path, w->tmp, strerror(errno));
  const char *slash = strrchr(w->path, '/');
  char *dir =
      slash ? strndup(w->path, slash == w->path ? 1 : (size_t)(slash - w->path)) : strdup(".");
  if (!dir) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", w->path);
  rcc_status_t rc = fsync_path(dir, O_RDONLY | O_DIRECTORY);
  free(dir);
  return rc;
}

/* ---- the phases in order --------------------------------------------------------------------- */

rcc_status_t rcc_ckpt_write(const char *path, const rcc_ckpt_meta_t *meta,
                            const rcc_ckpt_dataset_t *datasets, int n) {
  writer_t w = {.path = path ? path : "(null)", .rank = 0, .size = 1};
  MPI_Initialized(&w.parallel);
  if (w.parallel) {
    MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  }
  const char *coll = getenv("RCC_CKPT_COLLECTIVE");
  w.collective = w.parallel && coll && strcmp(coll, "1") == 0;
  rcc_h5_quiet();

  hid_t file = H5I_INVALID_HID, dxpl = H5I_INVALID_HID;
  size_t count = n > 0 ? (size_t)n : 0;
  uint32_t *crc = calloc(count + 1, sizeof *crc);
  hid_t *dset = malloc((count + 1) * sizeof *dset);
  w.tmp = path ? malloc(strlen(path) + 5) : NULL;
  for (size_t i = 0; dset && i < count; i++)
    dset[i] = H5I_INVALID_HID;
  rcc_status_t rc = RCC_OK;
  if (!path || n < 0 || (n > 0 && !datasets))
    rc = rcc_fail(RCC_ERR_ARG, "%s: rcc_ckpt_write: no path or a bad dataset list (n = %d)", w.path,
                  n);
  else if (!crc || !dset || !w.tmp)
    rc = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", w.path);
  else {
    snprintf(w.tmp, strlen(path) + 5, "%s.tmp", path);
    rc = prepare(&w, meta, datasets, n, crc);
  }
  if (w.parallel) {
    /* Every rank must pass the same list; different counts would garble the CRC reduction. */
    int range[2] = {n, -n};
    MPI_Allreduce(MPI_IN_PLACE, range, 2, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (rc == RCC_OK && range[0] != -range[1])
      rc = rcc_fail(RCC_ERR_ARG, "%s: ranks passed different dataset counts (%d to %d)", w.path,
                    -range[1], range[0]);
  }
  rc = agree(&w, rc);
  /* Owners' CRCs to every rank (the others hold 0): attributes are written by all ranks. */
  if (w.parallel && rc == RCC_OK) {
    int err = MPI_Allreduce(MPI_IN_PLACE, crc, n, MPI_UINT32_T, MPI_BOR, MPI_COMM_WORLD);
    rc = agree(&w, err == MPI_SUCCESS
                       ? RCC_OK
                       : rcc_fail(RCC_ERR_MPI, "%s: MPI_Allreduce of the CRCs failed", w.path));
  }
  if (rc == RCC_OK) rc = agree(&w, create_file(&w, &file, &dxpl));
  if (rc == RCC_OK) rc = agree(&w, create_datasets(&w, file, meta, datasets, n, crc, dset));
  if (rc == RCC_OK) rc = agree(&w, write_data(&w, datasets, n, dset, dxpl));

  for (size_t i = 0; dset && i < count; i++)
    rcc_h5_close(dset[i]);
  rcc_h5_close(dxpl);
  /* Reached by every rank or by none: the file's creation was agreed on. */
  if (file >= 0) {
    rcc_status_t st = RCC_OK;
    /* Where a full disk shows: HDF5 flushes its cache here. */
    if (H5Fclose(file) < 0)
      st = rcc_fail_context(rcc_h5_fail(RCC_ERR_IO, __FILE__, __LINE__, "H5Fclose(file)"), "%s",
                            w.path);
    rc = agree(&w, rc != RCC_OK ? rc : st);
  }
  if (rc == RCC_OK) rc = agree(&w, w.rank == 0 ? publish(&w) : RCC_OK);
  if (rc != RCC_OK && w.rank == 0 && w.tmp) unlink(w.tmp);
  /* No rank returns an error while PATH.tmp may still be there. */
  if (rc != RCC_OK && w.parallel) MPI_Barrier(MPI_COMM_WORLD);
  free(w.tmp);
  free(dset);
  free(crc);
  return rc;
}
