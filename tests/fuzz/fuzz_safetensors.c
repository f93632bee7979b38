/* Fuzz target: the safetensors reader (io/safetensors_read.c) on arbitrary file bytes.
 * The reader mmaps a path, so the input goes to a scratch file. A file that opens must
 * keep its promises: every tensor's bytes readable (AddressSanitizer checks the
 * pointers), every name found again by rcc_st_find, every metadata entry a C string. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_path("input.safetensors");
  fuzz_write(path, data, size);
  rcc_safetensors_t *st = NULL;
  if (rcc_st_open(path, &st) != RCC_OK) return 0;
  for (int i = 0; i < rcc_st_count(st); i++) {
    rcc_tensor_t *t = rcc_st_tensor(st, i);
    size_t nbytes = (size_t)t->numel * rcc_dtype_size(t->dtype);
    fuzz_touch(t->data, nbytes);
    if (rcc_st_find(st, t->name) != t) {
      fprintf(stderr, "fuzz_safetensors: rcc_st_find('%s') does not find tensor %d\n", t->name, i);
      abort();
    }
  }
  for (int i = 0; i < rcc_st_metadata_count(st); i++) {
    const char *key, *value;
    rcc_st_metadata_at(st, i, &key, &value);
    fuzz_touch(key, strlen(key) + 1);
    fuzz_touch(value, strlen(value) + 1);
  }
  rcc_st_close(st);
  return 0;
}
