/* Fuzz target: the IDX reader (io/idx.c, through zlib's gz* functions, so plain and
 * gzip-compressed inputs alike) on arbitrary file bytes written to a scratch file. A file
 * that loads must hold exactly the bytes its dimensions promise. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "fuzz_util.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("input.idx");
  fuzz_write(path, data, size);
  rcc_idx_t idx;
  if (rcc_idx_load(path, &idx) != RCC_OK) return 0;
  size_t total = 1;
  for (int d = 0; d < idx.ndim; d++)
    total *= (size_t)idx.dims[d];
  if (idx.ndim < 1 || idx.ndim > 3 || !idx.data) {
    fprintf(stderr, "fuzz_idx: loaded ndim %d, data %p\n", idx.ndim, (void *)idx.data);
    abort();
  }
  fuzz_touch(idx.data, total);
  rcc_idx_free(&idx);
  return 0;
}
