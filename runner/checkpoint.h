/* The cascade's checkpoints: after every checkpoint_frequency-th stage, the state of every
 * compressed layer, the biases and LayerNorms that distillation changed, and the history
 * so far go to RUN/checkpoints/stage-K.h5 (io/checkpoint.h, written by all ranks, each its
 * own layers); a re-run of the same job resumes after the newest valid one. */
#pragma once
#include <stdbool.h>

#include "comm/comm.h"
#include "compress/factored.h"
#include "io/checkpoint.h"
#include "jobs/job.h"
#include "model/clip.h"

typedef struct {
  const char *name;  /* HF prefix of the layer */
  rcc_factored_t *f; /* its state (all ranks hold every layer) */
  int owner;         /* the rank that writes it */
} rcc_layer_ref_t;

/* Hex SHA-256 of the job file's bytes and the model's config.json and model.safetensors,
 * computed on rank 0 and broadcast. */
rcc_status_t rcc_run_fingerprint(const rcc_job_t *job, rcc_comm_t comm, char hex[65]);

/* Writes RUN/checkpoints/stage-K.h5 (collective). tensors: the changed biases and
 * LayerNorms (the same on every rank, written by rank 0; NULL or empty: none). */
rcc_status_t rcc_run_checkpoint_save(const rcc_job_t *job, int stage_index, const char *fingerprint,
                                     const char *history, const rcc_layer_ref_t *layers, int n,
                                     const rcc_clip_tensors_t *tensors);

/* Finds the newest checkpoint of this run that reads back whole: *found false when there is
 * none. A corrupt or truncated one is reported (warning) and skipped in favour of the one
 * before; one with another fingerprint is refused (RCC_ERR_ARG, saying to use --fresh). */
rcc_status_t rcc_run_checkpoint_find(const rcc_job_t *job, const char *fingerprint, bool *found,
                                     rcc_ckpt_t *out);

/* Rebuilds every layer's state from a checkpoint (replacing what f held). */
rcc_status_t rcc_run_checkpoint_restore(const rcc_ckpt_t *ck, const rcc_layer_ref_t *layers, int n);
/* The changed biases and LayerNorms of a checkpoint into *out (emptied first; none in a
 * checkpoint written before they were stored, or by a run that changed none). */
rcc_status_t rcc_run_checkpoint_restore_tensors(const rcc_ckpt_t *ck, rcc_clip_tensors_t *out);

/* Removes RUN/checkpoints/stage-*.h5 (and .tmp leftovers): `--fresh`. Rank 0 only. */
rcc_status_t rcc_run_checkpoint_clear(const rcc_job_t *job);
