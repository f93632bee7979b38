/* Labelled image datasets and image-caption pairs for evaluation and calibration.
 * Specs: "fmnist:test" / "fmnist:train" (Debian's dataset-fashion-mnist IDX files, or
 * $RCC_FMNIST_DIR), "folder:DIR" (one sub-folder per class, sorted), "csv:FILE" (lines of
 * `image_path,caption`, paths relative to the CSV's folder). */
#pragma once
#include <stdint.h>

#include "common/status.h"
#include "io/image.h"

typedef struct rcc_dataset rcc_dataset_t;

rcc_status_t rcc_dataset_open(const char *spec, rcc_dataset_t **out);
void rcc_dataset_free(rcc_dataset_t *ds);
int rcc_dataset_size(const rcc_dataset_t *ds);
/* Classes (0 for caption datasets); names as people write them ("ankle boot"). */
int rcc_dataset_num_classes(const rcc_dataset_t *ds);
const char *rcc_dataset_class_name(const rcc_dataset_t *ds, int c);
/* Label of sample i, or -1 for caption datasets. */
int rcc_dataset_label(const rcc_dataset_t *ds, int i);
/* Caption of sample i, or NULL for class datasets. */
const char *rcc_dataset_caption(const rcc_dataset_t *ds, int i);
/* Decodes sample i; the caller frees it with rcc_image_free. */
rcc_status_t rcc_dataset_image(const rcc_dataset_t *ds, int i, rcc_image_t *out);

/* IDX (LeCun's format, optionally gzip-compressed): unsigned-byte tensors of 1 to 3 dims. */
typedef struct {
  int ndim;
  int dims[3];
  uint8_t *data;
} rcc_idx_t;
rcc_status_t rcc_idx_load(const char *path, rcc_idx_t *out);
void rcc_idx_free(rcc_idx_t *idx);
