/* A named tensor as read from or written to a file (safetensors, HDF5 checkpoints). */
#pragma once
#include <stddef.h>
#include <stdint.h>

enum { RCC_MAX_DIMS = 8 };

typedef enum {
  RCC_DTYPE_F32,
  RCC_DTYPE_F16,
  RCC_DTYPE_BF16,
  RCC_DTYPE_F64,
  RCC_DTYPE_I64,
  RCC_DTYPE_I32,
  RCC_DTYPE_I16,
  RCC_DTYPE_I8,
  RCC_DTYPE_U8,
  RCC_DTYPE_BOOL,
} rcc_dtype_t;

typedef struct {
  char *name;
  rcc_dtype_t dtype; /* of `data` in memory */
  int ndim;
  int64_t shape[RCC_MAX_DIMS];
  int64_t numel;
  void *data;
} rcc_tensor_t;

size_t rcc_dtype_size(rcc_dtype_t dt);
/* safetensors spelling: "F32", "BF16", "I64", ... */
const char *rcc_dtype_name(rcc_dtype_t dt);
/* Returns 0 and sets *out when `name` is a known safetensors dtype, else -1. */
int rcc_dtype_parse(const char *name, rcc_dtype_t *out);
