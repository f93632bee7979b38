/* Writing a compressed model: `compressed/` in the Hugging Face layout with dense weights
 * (transformers loads it unchanged) and `packed.safetensors` with the factored parts as
 * stored (its size is the honest size of the compressed model). */
#pragma once
#include <stdint.h>

#include "compress/factored.h"
#include "model/clip.h"

/* layers[i] describes linear layer i of m when compressed[i], else the layer is written as
 * in the original checkpoint of model_dir. tensors (NULL or empty: none) replace the
 * original's tensors of the same names (trained biases and LayerNorms), each with the
 * original's element count; a name the original lacks is an error. */
typedef struct {
  const char *model_dir;
  rcc_clip_model_t *model;
  const rcc_factored_t *layers;
  const bool *compressed;
  const rcc_clip_tensors_t *tensors;
} rcc_export_t;

/* out_dir is replaced atomically: written as out_dir.tmp, then renamed. */
rcc_status_t rcc_export_hf_dir(const rcc_export_t *e, const char *out_dir);
/* Packed layer p: p.S.values (nnz) + p.S.mask (m, ceil(n/8) bytes, bit j%8 of byte j/8 is
 * column j, least significant first) for a sparse S, or p.S (m, n) for a dense one; p.U (m, r),
 * p.V (r, n); p.alpha (m); p.bias as in the original. Every other tensor as in the original
 * (or as e->tensors gives it, in both outputs).
 * Metadata: format "rcc-packed", rcc_packed_version "1", config (the text of config.json),
 * layers (JSON list of packed layer names). *bytes: the file's size. */
rcc_status_t rcc_export_packed(const rcc_export_t *e, const char *path, int64_t *bytes);
