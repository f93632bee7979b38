/* Zero-shot top-k accuracy with prompt-ensembled class embeddings (as in the CLIP paper). */
#include "eval/zeroshot.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

const char *const rcc_default_templates[] = {
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a black and white photo of a {}.",
    "a low contrast photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
    "a cropped photo of a {}.",
    "a good photo of a {}.",
};
const int rcc_default_template_count =
    (int)(sizeof rcc_default_templates / sizeof rcc_default_templates[0]);

/* "a photo of a {}." + "coat" -> "a photo of a coat." (every "{}" replaced). */
static char *fill_template(const char *tmpl, const char *name) {
  size_t n = strlen(tmpl) + 1, ln = strlen(name);
  for (const char *p = strstr(tmpl, "{}"); p; p = strstr(p + 2, "{}"))
    n += ln;
  char *out = malloc(n), *o = out;
  if (!out) return NULL;
  for (const char *p = tmpl; *p;) {
    if (p[0] == '{' && p[1] == '}') {
      memcpy(o, name, ln);
      o += ln;
      p += 2;
    } else {
      *o++ = *p++;
    }
  }
  *o = '\0';
  return out;
}

rcc_status_t rcc_zeroshot_prompt_ids(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds,
                                     const char *const *templates, int n_templates, int32_t *ids) {
  const int C = rcc_dataset_num_classes(ds);
  const int T = rcc_clip_get_config(ctx->model)->text.max_position_embeddings;
  if (C <= 0) return rcc_fail(RCC_ERR_ARG, "zero-shot needs a dataset with classes");
  rcc_status_t st = RCC_OK;
  for (int c = 0; c < C && st == RCC_OK; c++)
    for (int t = 0; t < n_templates && st == RCC_OK; t++) {
      char *text = fill_template(templates[t], rcc_dataset_class_name(ds, c));
      int len;
      st = text ? rcc_tokenizer_encode(ctx->tokenizer, text,
                                       T, ids + ((size_t)c * n_templates + t) * T, &len)
                : rcc_fail(RCC_ERR_NOMEM, "out of memory");
      free(text);
    }
  return st;
}

rcc_status_t rcc_zeroshot_class_embeddings(rcc_eval_ctx_t *ctx, rcc_comm_t comm,
                                           const rcc_dataset_t *ds, const char *const *templates,
                                           int n_templates, float *out) {
  const int P = rcc_clip_get_config(ctx->model)->projection_dim;
  const int C = rcc_dataset_num_classes(ds);
  if (C <= 0) return rcc_fail(RCC_ERR_ARG, "zero-shot needs a dataset with classes");
  if (n_templates <= 0) return rcc_fail(RCC_ERR_ARG, "zero-shot needs at least one template");
  const int rank = comm ? rcc_comm_rank(comm) : 0, size = comm ? rcc_comm_size(comm) : 1;
  const int lo = (int)((int64_t)C * rank / size), hi = (int)((int64_t)C * (rank + 1) / size);
  char **texts = calloc((size_t)n_templates, sizeof *texts);
  float *feats = malloc((size_t)n_templates * P * sizeof *feats);
  /* every class's row, zero where another rank computes it, then one failure counter */
  float *sum = calloc((size_t)C * P + 1, sizeof *sum);
  rcc_status_t st = (texts && feats && sum) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int c = lo; c < hi && st == RCC_OK; c++) {
    for (int t = 0; t < n_templates && st == RCC_OK; t++) {
      free(texts[t]);
      texts[t] = fill_template(templates[t], rcc_dataset_class_name(ds, c));
      if (!texts[t]) st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    if (st == RCC_OK)
      st = rcc_eval_text_features(ctx, (const char *const *)texts, n_templates, true, feats);
    for (int j = 0; j < P && st == RCC_OK; j++) {
      double s = 0.0;
      for (int t = 0; t < n_templates; t++)
        s += feats[(size_t)t * P + j];
      sum[(size_t)c * P + j] = (float)(s / n_templates);
    }
  }
  if (texts)
    for (int t = 0; t < n_templates; t++)
      free(texts[t]);
  free(texts);
  free(feats);
  /* The ranks share the classes out; every rank reaches the sum, failed or not (a rank
   * without memory for `sum` cannot, and the job aborts through its error). Adding zeros
   * is exact: the result is bit for bit the one of a single rank. */
  if (comm && sum) {
    sum[(size_t)C * P] = st != RCC_OK;
    rcc_status_t cst = rcc_comm_allreduce(comm, sum, (size_t)C * P + 1, RCC_DT_F32, RCC_OP_SUM);
    if (st == RCC_OK && cst != RCC_OK) st = cst;
    if (st == RCC_OK && sum[(size_t)C * P] > 0.0f)
      st = rcc_fail(RCC_ERR_MPI, "zero-shot class embeddings failed on another rank");
  }
  if (st == RCC_OK) {
    memcpy(out, sum, (size_t)C * P * sizeof *out);
    rcc_eval_normalize_rows(out, C, P);
  }
  free(sum);
  return st;
}

/* Rank of the true class among scores[0..C): how many classes score strictly higher
 * (ties resolved in favour of the lower class index, as torch.topk does in practice). */
static int rank_of(const float *scores, int C, int truth) {
  int r = 0;
  for (int c = 0; c < C; c++)
    if (scores[c] > scores[truth] || (scores[c] == scores[truth] && c < truth)) r++;
  return r;
}

rcc_status_t rcc_zeroshot_evaluate(rcc_eval_ctx_t *ctx, rcc_comm_t comm, const rcc_dataset_t *ds,
                                   const char *const *templates, int n_templates, int limit,
                                   rcc_zeroshot_result_t *res) {
  const int P = rcc_clip_get_config(ctx->model)->projection_dim;
  const int C = rcc_dataset_num_classes(ds);
  int n = rcc_dataset_size(ds);
  if (limit > 0 && limit < n) n = limit;
  const int rank = comm ? rcc_comm_rank(comm) : 0, size = comm ? rcc_comm_size(comm) : 1;
  const int lo = (int)((int64_t)n * rank / size), hi = (int)((int64_t)n * (rank + 1) / size);
  const int chunk = ctx->batch * 8;
  float *classes = malloc((size_t)(C > 0 ? C : 1) * P * sizeof *classes);
  float *feats = malloc((size_t)chunk * P * sizeof *feats);
  float *scores = malloc((size_t)(C > 0 ? C : 1) * sizeof *scores);
  int *idx = malloc((size_t)chunk * sizeof *idx);
  rcc_status_t st =
      (classes && feats && scores && idx) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  /* a collective: reached even when this rank already failed (it reports the failure) */
  if (classes) {
    rcc_status_t cst = rcc_zeroshot_class_embeddings(ctx, comm, ds, templates, n_templates, classes);
    if (st == RCC_OK) st = cst;
  }
  int64_t counts[2] = {0, 0}; /* correct at top-1, top-5 */
  for (int start = lo; start < hi && st == RCC_OK; start += chunk) {
    int b = hi - start < chunk ? hi - start : chunk;
    rcc_log_progress("zero-shot: image %d of %d on rank 0 (%d in all)", start - lo + 1, hi - lo,
                     n);
    for (int i = 0; i < b; i++)
      idx[i] = start + i;
    st = rcc_eval_dataset_features(ctx, ds, idx, b, true, feats);
    for (int i = 0; i < b && st == RCC_OK; i++) {
      for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int j = 0; j < P; j++)
          s += (double)feats[(size_t)i * P + j] * classes[(size_t)c * P + j];
        scores[c] = (float)s;
      }
      int r = rank_of(scores, C, rcc_dataset_label(ds, idx[i]));
      counts[0] += r < 1;
      counts[1] += r < 5;
    }
  }
  rcc_log_progress_done();
  free(classes);
  free(feats);
  free(scores);
  free(idx);
  /* Every rank reaches the reduction, failed or not, so that no rank waits alone. */
  int64_t failed = st != RCC_OK;
  int64_t all[3] = {counts[0], counts[1], failed};
  if (comm) {
    rcc_status_t cst = rcc_comm_allreduce(comm, all, 3, RCC_DT_I64, RCC_OP_SUM);
    if (st == RCC_OK && cst != RCC_OK) st = cst;
  }
  if (st != RCC_OK) return st;
  if (all[2]) return rcc_fail(RCC_ERR_ARG, "zero-shot evaluation failed on another rank");
  res->samples = n;
  res->classes = C;
  res->top1 = n ? 100.0 * (double)all[0] / n : 0.0;
  res->top5 = n ? 100.0 * (double)all[1] / n : 0.0;
  return RCC_OK;
}
