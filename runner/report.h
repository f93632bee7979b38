/* The run's record, filled as the cascade goes, written as report.json and report.md. */
#pragma once
#include <stdint.h>

#include "jobs/job.h"

typedef struct {
  rcc_stage_t config; /* the effective configuration of this attempt */
  double metric, retention;
  const char *decision; /* "commit", "retry", "rollback", "abort", "commit-below-threshold" */
  char note[256];       /* why, when not a plain commit */
} rcc_report_attempt_t;

typedef struct {
  const rcc_stage_t *stage;
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

typedef struct {
  const rcc_job_t *job;
  int ranks;
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
  double final_metric;
  double seconds_total;
  const char *outcome; /* "completed" or "aborted" */
} rcc_report_t;

/* Writes report.json and report.md into dir (each atomically: temporary name, rename). */
rcc_status_t rcc_report_write(const rcc_report_t *r, const char *dir);
/* The summary table printed at the end of a run (the body of report.md). */
void rcc_report_print_summary(const rcc_report_t *r, FILE *out);
