/* The run's record, filled as the cascade goes, written as report.json and report.md. */
#pragma once
#include <stdint.h>

#include "jobs/job.h"
#include "runner/distill.h"

typedef struct {
  rcc_stage_t config; /* the effective configuration of this attempt */
  int level;          /* how many times it was softened (rcc_stage_soften) */
  double metric, retention;
  const char *decision; /* "commit", "retry", "rollback", "abort", "commit-below-threshold" */
  char note[256];       /* why, when not a plain commit */
  int has_distill;      /* alphaedit distill ran: its training summary */
  rcc_distill_summary_t distill;
} rcc_report_attempt_t;

typedef struct {
  const rcc_stage_t *stage;
  int job_index; /* position of the stage in the job's list */
  rcc_report_attempt_t *attempts;
  int n_attempts;
  int64_t params_stored;
  double seconds;
} rcc_report_stage_t;

typedef struct {
  char name[128];
  int m, n;
  int64_t nnz;
  int rank;
  int has_alpha;
  double rel_error;
  int owner_rank;
  double grassmann_dare_nullu; /* < 0 when not measured */
} rcc_report_layer_t;

/* Where a run's wall time goes (summed over the run, as rank 0 sees it). */
typedef enum {
  RCC_PHASE_CALIBRATION, /* calibration forwards and the all-reduce of H */
  RCC_PHASE_COMPRESSION, /* this rank's layers through the stage kernels */
  RCC_PHASE_EXCHANGE,    /* agreement and the broadcast of every layer from its owner */
  RCC_PHASE_VALIDATION,  /* baseline and per-attempt zero-shot evaluation (distill's too) */
  RCC_PHASE_DISTILLATION, /* alphaedit distill: teacher outputs, training steps */
  RCC_PHASE_CHECKPOINT,  /* HDF5 checkpoints */
  RCC_PHASE_OUTPUTS,     /* compressed/, packed.safetensors */
  RCC_PHASE_COUNT
} rcc_phase_t;
extern const char *const rcc_phase_names[RCC_PHASE_COUNT];

typedef struct {
  const rcc_job_t *job;
  int ranks;
  double phase_seconds[RCC_PHASE_COUNT];
  char backend[256];
  const char *metric_name;
  int64_t params_total, params_linear, params_compressible;
  double baseline;
  int validation_samples, calibration_samples;
  rcc_report_stage_t *stages;
  int n_stages;
  rcc_report_layer_t *layers;
  int n_layers;
  int64_t final_params_stored, bytes_packed, bytes_original;
  double *dare_to_nullu; /* per linear layer of the model (< 0: not measured), n_linears */
  int n_linears;
  int resumed_after;     /* stages restored from a checkpoint (0: fresh run) */
  double final_metric;
  double seconds_total;
  const char *outcome; /* "completed" or "aborted" */
} rcc_report_t;

/* The stages so far as JSON text (the history a checkpoint carries; caller frees), and
 * back: rebuilds r->stages (allocated with room for every job stage) from it. */
char *rcc_report_history_json(const rcc_report_t *r);
rcc_status_t rcc_report_history_load(rcc_report_t *r, const char *json);

/* Writes report.json and report.md into dir (each atomically: temporary name, rename). */
rcc_status_t rcc_report_write(const rcc_report_t *r, const char *dir);
/* The summary table printed at the end of a run (the body of report.md). */
void rcc_report_print_summary(const rcc_report_t *r, FILE *out);
