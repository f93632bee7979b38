/* Fuzz target: the checkpoint reader (io/checkpoint_read.c, HDF5 underneath). On first
 * use the target writes a small valid checkpoint with rcc_ckpt_write (no MPI: a plain
 * single-process write) and keeps its bytes. Each input then damages a copy of them:
 *   byte 0, bit 0 set: truncate the file to (bytes 1-2, little-endian) % size, then
 *   3-byte patches (offset 16-bit little-endian % size, new byte value) from byte 3;
 *   bit 0 clear: patches from byte 1.
 * The damaged file is read back. HDF5's own metadata carries checksums (the writer uses
 * the 1.8+ file format), the data a CRC-32 of ours: a checkpoint that still reads must
 * match the one written, dataset for dataset. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "io/checkpoint.h"

static const float weights[2][3] = {{1.0f, -2.0f, 3.5f}, {0.25f, 0.0f, -1.0f}};
static const int64_t steps[4] = {0, 1, 1 << 20, -5};
static const uint8_t mask[5] = {1, 0, 1, 1, 0};

static const rcc_ckpt_dataset_t datasets[] = {
    {"layers/a/W", RCC_DTYPE_F32, 2, {2, 3}, 0, weights},
    {"layers/a/mask", RCC_DTYPE_U8, 1, {5, 0}, 0, mask},
    {"steps", RCC_DTYPE_I64, 1, {4, 0}, 0, steps},
};
enum { N_DATASETS = sizeof datasets / sizeof datasets[0] };

static uint8_t *base;
static size_t base_size;

static void write_base(void) {
  static char history[] = "[{\"stage\": \"dare\", \"kept\": true}]";
  rcc_ckpt_meta_t meta = {.stage_index = 2, .history = history};
  memset(meta.fingerprint, 'a', 64);
  const char *path = fuzz_path("base.h5");
  fuzz_path("base.h5.tmp"); /* removed at exit too, should a write be cut short */
  if (rcc_ckpt_write(path, &meta, datasets, N_DATASETS) != RCC_OK) {
    fprintf(stderr, "fuzz_checkpoint: cannot write the base checkpoint: %s\n", rcc_last_error());
    abort();
  }
  base = fuzz_read(path, &base_size);
}

/* A checkpoint that reads back must be the one written. */
static void check(const rcc_ckpt_t *ck) {
  int bad = ck->n != N_DATASETS || ck->meta.stage_index != 2;
  for (int i = 0; i < N_DATASETS && !bad; i++) {
    const rcc_tensor_t *t = rcc_ckpt_find(ck, datasets[i].name);
    size_t nbytes =
        (size_t)(datasets[i].shape[0] * (datasets[i].ndim == 2 ? datasets[i].shape[1] : 1)) *
        rcc_dtype_size(datasets[i].dtype);
    bad = !t || t->dtype != datasets[i].dtype ||
          (size_t)t->numel * rcc_dtype_size(t->dtype) != nbytes ||
          memcmp(t->data, datasets[i].data, nbytes) != 0;
  }
  if (bad) {
    fprintf(stderr, "fuzz_checkpoint: a damaged checkpoint read back with other contents\n");
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!base) write_base();
  uint8_t *file = malloc(base_size);
  if (!file) fuzz_die("fuzz_checkpoint: malloc");
  memcpy(file, base, base_size);
  size_t file_size = base_size, at = 1;
  if (size >= 3 && (data[0] & 1)) {
    file_size = (size_t)(data[1] | data[2] << 8) % base_size;
    at = 3;
  }
  for (; at + 3 <= size; at += 3)
    file[(size_t)(data[at] | data[at + 1] << 8) % base_size] = data[at + 2];
  const char *path = fuzz_path("input.h5");
  fuzz_write(path, file, file_size);
  free(file);
  rcc_ckpt_t ck;
  if (rcc_ckpt_read(path, &ck) == RCC_OK) {
    check(&ck);
    rcc_ckpt_free(&ck);
  }
  return 0;
}
