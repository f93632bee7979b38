/* Checkpoints: one HDF5 file per committed stage, written by all ranks together through
 * MPI-IO (parallel HDF5) and read back on resume. The file holds named datasets (each
 * written by the one rank that owns it, every dataset created collectively by all ranks
 * with the same shape) and root attributes describing the run. Each dataset carries a
 * CRC-32 of its raw bytes, checked on read. Files are written as PATH.tmp and renamed to
 * PATH once every rank has closed them, so a PATH that exists was written completely. */
#pragma once
#include <stdint.h>

#include "common/status.h"
#include "io/tensor.h"

enum { RCC_CKPT_FORMAT_VERSION = 1 };

typedef struct {
  const char *name;  /* HDF5 path below the root, e.g. "layers/vision_model.encoder.layers.0.mlp.fc1/U" */
  rcc_dtype_t dtype; /* F32, F64, I64, I32 or U8 */
  int ndim;          /* 1 or 2 */
  int64_t shape[2];
  int owner;        /* the rank that writes it */
  const void *data; /* read on the owner only; may be NULL elsewhere */
} rcc_ckpt_dataset_t;

typedef struct {
  char fingerprint[65]; /* hex SHA-256 of the job file and the model: resume refuses others */
  int stage_index;      /* stages of the job completed (committed or rolled back) */
  char *history;        /* JSON text: decisions and metrics so far (owned; NULL when absent) */
} rcc_ckpt_meta_t;

/* Collective over MPI_COMM_WORLD when MPI is initialised (every rank passes the same list
 * of names, dtypes and shapes, in the same order), or a plain single-process write when it
 * is not. On any rank's failure every rank returns an error and PATH is untouched. */
rcc_status_t rcc_ckpt_write(const char *path, const rcc_ckpt_meta_t *meta,
                            const rcc_ckpt_dataset_t *datasets, int n);

/* A checkpoint read back whole: every rank reads every dataset (independent reads). */
typedef struct {
  rcc_ckpt_meta_t meta;
  int format_version;
  int n;
  rcc_tensor_t *datasets; /* name = HDF5 path as written, data owned */
} rcc_ckpt_t;

/* Opens, checks the format version, reads the attributes and every dataset, and verifies
 * each CRC-32. A truncated or corrupted file gives RCC_ERR_FORMAT naming the file and the
 * dataset. Not collective: each rank may call it alone. */
rcc_status_t rcc_ckpt_read(const char *path, rcc_ckpt_t *out);
const rcc_tensor_t *rcc_ckpt_find(const rcc_ckpt_t *ck, const char *name);
void rcc_ckpt_free(rcc_ckpt_t *ck);
