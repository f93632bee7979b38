/* Zero-shot classification and image-text retrieval, the metrics of `rcc-dist eval`.
 * Samples are split across the ranks of `comm` (contiguous blocks) and the counts summed,
 * so every rank returns the same result. */
#pragma once
#include "comm/comm.h"
#include "eval/features.h"

/* The prompt templates of the zero-shot classifier; "{}" stands for the class name. */
extern const char *const rcc_default_templates[];
extern const int rcc_default_template_count;

typedef struct {
  double top1, top5; /* percent */
  int samples, classes;
} rcc_zeroshot_result_t;

/* Class embeddings (n_classes, P): per class, the text features of every template,
 * each normalized, averaged, normalized again. With comm (may be NULL) the classes are
 * shared out in contiguous blocks and summed, so every rank gets all of them. */
rcc_status_t rcc_zeroshot_class_embeddings(rcc_eval_ctx_t *ctx, rcc_comm_t comm,
                                           const rcc_dataset_t *ds, const char *const *templates,
                                           int n_templates, float *out);
/* ids (n_classes * n_templates, max_position_embeddings): the token ids of every prompt,
 * class-major (the prompts of class c are rows c * n_templates ...), padded as HF pads. */
rcc_status_t rcc_zeroshot_prompt_ids(rcc_eval_ctx_t *ctx, const rcc_dataset_t *ds,
                                     const char *const *templates, int n_templates, int32_t *ids);
/* Top-1/top-5 over the first `limit` samples of ds (limit <= 0: all). */
rcc_status_t rcc_zeroshot_evaluate(rcc_eval_ctx_t *ctx, rcc_comm_t comm, const rcc_dataset_t *ds,
                                   const char *const *templates, int n_templates, int limit,
                                   rcc_zeroshot_result_t *res);

typedef struct {
  double image_to_text[3], text_to_image[3]; /* R@1, R@5, R@10 in percent */
  int pairs;
} rcc_retrieval_result_t;

/* Image i matches caption i; recall@K over the first `limit` pairs of a caption dataset. */
rcc_status_t rcc_retrieval_evaluate(rcc_eval_ctx_t *ctx, rcc_comm_t comm, const rcc_dataset_t *ds,
                                    int limit, rcc_retrieval_result_t *res);
