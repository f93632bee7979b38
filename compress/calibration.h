/* Calibration statistics: for each selected linear layer, H = sum over calibration tokens
 * of x x^T (in_features x in_features, float64) of the layer's input x, collected by
 * hooking the CLIP forward. Layers that read the same input (q, k, v of one attention
 * block) share one H. H accumulates in the backend's memory (rcc_backend_gram_f64: on the
 * GPU for `backend: cuda`), is summed across ranks there (NCCL when the job has it) and is
 * then brought to the host, where the stages read it. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "comm/comm_backend.h"
#include "model/clip.h"

typedef struct {
  int n_linears;
  int *site; /* per linear layer: its input site, or -1 when not collected */
  int n_sites;
  int *site_dim;   /* in_features of each site */
  double **H;      /* per site: (dim, dim) on the host, full symmetric matrix once finalized */
  double **H_dev;  /* per site: the accumulator in backend memory (H itself on the CPU) */
  int64_t *rows;   /* tokens seen per site */
  double *scratch; /* backend memory: x converted to float64 */
  size_t scratch_doubles;
  rcc_backend_t be;
} rcc_calib_t;

/* Allocates H for every layer with selected[i] true (and its input-sharing siblings). */
rcc_status_t rcc_calib_init(rcc_calib_t *c, rcc_clip_model_t *m, rcc_backend_t be,
                            const bool *selected);
void rcc_calib_free(rcc_calib_t *c);
/* Installs the hook on m; forwards run afterwards accumulate into c. */
void rcc_calib_attach(rcc_calib_t *c, rcc_clip_model_t *m);
void rcc_calib_detach(rcc_clip_model_t *m);
/* Sums H and row counts across ranks (comm NULL: one process), brings H to the host and
 * mirrors its upper triangle (call once, after the last forward). */
rcc_status_t rcc_calib_finalize(rcc_calib_t *c, const rcc_comm_backend_t *comm);
/* H of linear layer i (NULL when not collected) and the tokens behind it. */
const double *rcc_calib_H(const rcc_calib_t *c, int i, int *dim, int64_t *rows);
