/* alphaedit `distill`: after the closed form has given every compressed layer its starting
 * alpha, the compressed model (student) is trained end to end against the original
 * (teacher) on calibration images: AdamW on alpha (pulled toward its closed-form start) and
 * optionally U, V, the kept values of S, the biases of all linear layers and the
 * LayerNorms, the loss of compress/distill_loss.h,
 * data-parallel (each rank a contiguous share of every global batch, gradients summed
 * through comm/), validation after every epoch, early stopping, and the best state kept. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "compress/factored.h"
#include "eval/features.h"
#include "jobs/job.h"
#include "model/clip.h"
#include "runner/session.h"

/* Installs layers[i] (selected ones) into the inference model and returns the validation
 * metric, the same on every rank. Trained biases and LayerNorms are already in the model
 * (rcc_clip_set_tensor) when it is called. */
typedef rcc_status_t (*rcc_distill_evaluate_fn)(void *ctx, const rcc_factored_t *layers,
                                                double *metric);

typedef struct {
  const rcc_job_t *job;
  const rcc_alphaedit_config_t *cfg; /* the attempt's (possibly softened) settings */
  rcc_session_t *s;
  rcc_eval_ctx_t *ctx;        /* the inference model: preprocessing and tokenizer */
  const rcc_dataset_t *train; /* images to train on (data.calibration) */
  const int *train_idx;       /* which of its samples, n_train of them */
  int n_train;
  const rcc_dataset_t *classes; /* the classes whose prompts give the logits (validation set) */
  int n;                        /* linear layers */
  const bool *selected;
  rcc_factored_t *layers;            /* in: the closed-form state; out: the best state found */
  const rcc_clip_tensors_t *tensors; /* biases and LayerNorms changed by earlier stages, the
                                        student's start (they stay frozen unless trainable
                                        says otherwise) */
  rcc_distill_evaluate_fn evaluate;
  void *evaluate_ctx;
} rcc_distill_args_t;

typedef struct {
  int epochs, steps, best_epoch; /* best_epoch 0: the closed-form start stayed best */
  double start_metric, best_metric, first_loss, last_loss;
  double train_seconds, samples_per_second; /* forward + backward + step, all ranks together */
  int64_t trained_params; /* all trained parameters, and of them biases and LayerNorms */
  int64_t trained_bias_params, trained_layernorm_params;
  size_t activation_bytes; /* per rank, largest batch */
} rcc_distill_summary_t;

/* tensors (emptied first): the best state's biases and LayerNorms, also set in the inference
 * model, when any trained or were carried from a->tensors; else empty. */
rcc_status_t rcc_distill_run(const rcc_distill_args_t *a, rcc_distill_summary_t *out,
                             rcc_clip_tensors_t *tensors);
