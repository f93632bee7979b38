/* One stage of the cascade applied to one linear layer: dare (pruning), nullu (low rank)
 * or alphaedit (per-channel scale), from the stage's job configuration. */
#pragma once
#include "backend/backend.h"
#include "compress/factored.h"
#include "jobs/job.h"

/* What a stage may read about a layer besides its current state. */
typedef struct {
  const char *name;
  int m, n;
  const float *W0;        /* the original dense weight (m, n) */
  const float *W_base;    /* base model weight for DARE, or NULL */
  const double *H;        /* calibration X^T X (n, n), or NULL when not collected */
  float global_threshold; /* magnitude pruning with scope global: |W| below is pruned */
  uint64_t seed;          /* per-layer seed (DARE's random drops) */
  /* The session's backend, or NULL. Not the CPU: nullu svd/whitened/residual, alphaedit
   * closed_form (with or without null space) and dare magnitude (per layer, N:M, global
   * threshold)/wanda/sparsegpt run on it (compress/device.h); the rest (DARE's random drop,
   * alphaedit distill), and everything on the CPU backend, on the host.
   * RCC_STAGES_ON_BACKEND=1 sends those stages through the backend ops on the CPU backend
   * too (rcc_backend_device_path), for the tests. NULL: the host path. */
  rcc_backend_t be;
} rcc_layer_input_t;

/* The stage's configuration made milder for a retry: `level` 0 is the configuration as
 * written, each further level halves its aggressiveness (sparsity halved, discarded
 * energy halved and rank cap doubled, N:M moved half way to dense, ridge doubled). */
void rcc_stage_soften(const rcc_stage_t *stage, int level, rcc_stage_t *out);

/* Whether the stage needs calibration statistics H for this configuration. */
bool rcc_stage_needs_calibration(const rcc_stage_t *stage);

/* out = the layer after the stage, from cur (the layer as the previous stages left it). */
rcc_status_t rcc_stage_apply(const rcc_stage_t *stage, const rcc_layer_input_t *in,
                             const rcc_factored_t *cur, rcc_factored_t *out);
