/* Element sizes and safetensors spellings of the tensor dtypes (io/tensor.h). */
#include "io/tensor.h"

#include <string.h>

/* Indexed by rcc_dtype_t; the names are those of the safetensors format. */
static const struct {
  const char *name;
  size_t size;
} dtype_table[] = {
    [RCC_DTYPE_F32] = {"F32", 4},   [RCC_DTYPE_F16] = {"F16", 2}, [RCC_DTYPE_BF16] = {"BF16", 2},
    [RCC_DTYPE_F64] = {"F64", 8},   [RCC_DTYPE_I64] = {"I64", 8}, [RCC_DTYPE_I32] = {"I32", 4},
    [RCC_DTYPE_I16] = {"I16", 2},   [RCC_DTYPE_I8] = {"I8", 1},   [RCC_DTYPE_U8] = {"U8", 1},
    [RCC_DTYPE_BOOL] = {"BOOL", 1},
};
enum { DTYPE_COUNT = sizeof dtype_table / sizeof dtype_table[0] };

static int dtype_valid(rcc_dtype_t dt) { return (unsigned)dt < DTYPE_COUNT; }

size_t rcc_dtype_size(rcc_dtype_t dt) { return dtype_valid(dt) ? dtype_table[dt].size : 0; }

const char *rcc_dtype_name(rcc_dtype_t dt) { return dtype_valid(dt) ? dtype_table[dt].name : "?"; }

int rcc_dtype_parse(const char *name, rcc_dtype_t *out) {
  if (!name) return -1;
  for (int i = 0; i < DTYPE_COUNT; i++) {
    if (strcmp(name, dtype_table[i].name) == 0) {
      if (out) *out = (rcc_dtype_t)i;
      return 0;
    }
  }
  return -1;
}
