/* Image-text retrieval recall@{1,5,10} in both directions over caption datasets. */
#include <stdlib.h>
#include <string.h>

#include "eval/zeroshot.h"

/* Fraction (percent) of queries whose match ranks within the top k, for k in {1, 5, 10}:
 * sim is (n, n) with the match of query i at column i. */
static void recall_at(const float *sim, int n, int row_stride, int col_stride, double out[3]) {
  static const int ks[3] = {1, 5, 10};
  int64_t hits[3] = {0, 0, 0};
  for (int i = 0; i < n; i++) {
    float s = sim[(size_t)i * row_stride + (size_t)i * col_stride];
    int r = 0;
    for (int j = 0; j < n; j++) {
      float o = sim[(size_t)i * row_stride + (size_t)j * col_stride];
      if (o > s || (o == s && j < i)) r++;
    }
    for (int k = 0; k < 3; k++)
      hits[k] += r < ks[k];
  }
  for (int k = 0; k < 3; k++)
    out[k] = n ? 100.0 * (double)hits[k] / n : 0.0;
}

rcc_status_t rcc_retrieval_evaluate(rcc_eval_ctx_t *ctx, rcc_comm_t comm, const rcc_dataset_t *ds,
                                    int limit, rcc_retrieval_result_t *res) {
  const int P = rcc_clip_get_config(ctx->model)->projection_dim;
  int n = rcc_dataset_size(ds);
  if (limit > 0 && limit < n) n = limit;
  if (n <= 0) return rcc_fail(RCC_ERR_ARG, "retrieval needs at least one image-caption pair");
  if (!rcc_dataset_caption(ds, 0))
    return rcc_fail(RCC_ERR_ARG, "retrieval needs a caption dataset (csv:FILE)");
  const int rank = comm ? rcc_comm_rank(comm) : 0, size = comm ? rcc_comm_size(comm) : 1;
  const int lo = (int)((int64_t)n * rank / size), hi = (int)((int64_t)n * (rank + 1) / size);
  float *img = calloc((size_t)n * P, sizeof *img), *txt = calloc((size_t)n * P, sizeof *txt);
  float *sim = malloc((size_t)n * n * sizeof *sim);
  const char **caps = malloc((size_t)n * sizeof *caps);
  int *idx = malloc((size_t)n * sizeof *idx);
  rcc_status_t st =
      (img && txt && sim && caps && idx) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int i = 0; st == RCC_OK && i < n; i++) {
    idx[i] = i;
    caps[i] = rcc_dataset_caption(ds, i);
  }
  if (st == RCC_OK && hi > lo) {
    st = rcc_eval_dataset_features(ctx, ds, idx + lo, hi - lo, true, img + (size_t)lo * P);
    if (st == RCC_OK)
      st = rcc_eval_text_features(ctx, caps + lo, hi - lo, true, txt + (size_t)lo * P);
  }
  /* Each rank filled its own rows; summing the zero-padded arrays gives everyone all rows. */
  int32_t failed = st != RCC_OK;
  if (comm) {
    rcc_comm_allreduce(comm, &failed, 1, RCC_DT_I32, RCC_OP_SUM);
    if (!failed) {
      rcc_status_t cst = rcc_comm_allreduce(comm, img, (size_t)n * P, RCC_DT_F32, RCC_OP_SUM);
      if (cst == RCC_OK) cst = rcc_comm_allreduce(comm, txt, (size_t)n * P, RCC_DT_F32, RCC_OP_SUM);
      if (cst != RCC_OK) st = cst;
    }
  }
  if (st == RCC_OK && failed) st = rcc_fail(RCC_ERR_ARG, "retrieval failed on another rank");
  if (st == RCC_OK) {
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) {
        double s = 0.0;
        for (int d = 0; d < P; d++)
          s += (double)img[(size_t)i * P + d] * txt[(size_t)j * P + d];
        sim[(size_t)i * n + j] = (float)s;
      }
    recall_at(sim, n, n, 1, res->image_to_text);
    recall_at(sim, n, 1, n, res->text_to_image);
    res->pairs = n;
  }
  free(img);
  free(txt);
  free(sim);
  free(caps);
  free(idx);
  return st;
}
