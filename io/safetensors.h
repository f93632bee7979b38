/* safetensors (https://huggingface.co/docs/safetensors) reader and writer.
 * The reader mmaps the file, validates the whole header before touching any data
 * (header length, JSON, dtypes, shapes vs byte ranges, bounds, overlaps, duplicates),
 * and converts F16/BF16/F64 tensors to F32; integer and bool tensors keep their dtype.
 * Tensors are writable: F32 data is copy-on-write mapped, converted data is owned. */
#pragma once
#include "common/status.h"
#include "io/tensor.h"

typedef struct rcc_safetensors rcc_safetensors_t;

rcc_status_t rcc_st_open(const char *path, rcc_safetensors_t **out);
void rcc_st_close(rcc_safetensors_t *st);
int rcc_st_count(const rcc_safetensors_t *st);
/* i in [0, count); in header order. */
rcc_tensor_t *rcc_st_tensor(rcc_safetensors_t *st, int i);
/* NULL when absent (no error recorded). */
rcc_tensor_t *rcc_st_find(rcc_safetensors_t *st, const char *name);
/* dtype of the tensor in the file (before conversion). */
rcc_dtype_t rcc_st_file_dtype(const rcc_safetensors_t *st, int i);
/* `__metadata__` string entries; NULL when absent. */
const char *rcc_st_metadata(const rcc_safetensors_t *st, const char *key);
int rcc_st_metadata_count(const rcc_safetensors_t *st);
void rcc_st_metadata_at(const rcc_safetensors_t *st, int i, const char **key, const char **value);

/* Writes `n` tensors (each in its own dtype, stored as given) and optional metadata pairs
 * (meta_keys/meta_values, n_meta entries) to `path`, atomically: a temporary file in the
 * same directory renamed over `path` once complete. Names must be unique. Data offsets
 * are in the order given, header padded with spaces to 8 bytes as HF's writer does. */
rcc_status_t rcc_st_save(const char *path, const rcc_tensor_t *tensors, int n,
                         const char *const *meta_keys, const char *const *meta_values, int n_meta);
