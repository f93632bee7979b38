/* The compression run of a job: baseline, calibration, the stage loop with validation,
 * retry / rollback / abort decisions, outputs (compressed/, packed.safetensors) and the
 * report (report.json, report.md) in the run directory. */
#pragma once
#include <stdbool.h>

#include "jobs/job.h"
#include "runner/session.h"

/* Returns RCC_OK when the cascade ran to its end (stages may have been rolled back),
 * RCC_ERR_NUMERIC when a stage failed validation with on_fail: abort (the report is still
 * written, with the decision), or another error. */
/* fresh: discard the run's checkpoints instead of resuming after the newest valid one. */
rcc_status_t rcc_cascade_run(const rcc_job_t *job, rcc_session_t *s, bool fresh);
