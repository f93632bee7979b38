/* Setting keys of a job file by path, for sweeps: `seed`, `data.validation_samples`,
 * `cascade.stages[0].config.target_sparsity`. The job's YAML is loaded as a libyaml
 * document, each path's value is replaced (or added, when only the last key is missing
 * from an existing mapping), and the document is written back as YAML. Comments of the
 * base file do not survive; keys, order and values do.
 *
 * A value is a scalar as it would be written in YAML ("0.5", "wanda", "/abs/path") or a
 * flow list of scalars ("[a, b]"). One special path reorders or drops stages:
 * `cascade.order` with a list of stage names ("[nullu, dare]") makes the cascade exactly
 * those of the base job's stages, in that order. */
#pragma once
#include <stddef.h>

#include "common/status.h"

typedef struct {
  const char *path;
  const char *value;
} rcc_job_setting_t;

/* The special path of stage orders and single-stage ablations. */
#define RCC_JOB_ORDER_PATH "cascade.order"

/* Applies settings[0..n) in order to the job text (`name` is used in messages) and
 * returns the new YAML in *out (malloc'ed, NUL-terminated). On failure *bad is the index
 * of the setting at fault (-1 when the job text itself is not YAML) and rcc_last_error()
 * says what is wrong with it, naming the path: RCC_ERR_ARG for a path the job does not
 * have or a value of the wrong shape, RCC_ERR_FORMAT for YAML that libyaml rejects. */
rcc_status_t rcc_job_override(const char *name, const char *text, size_t len,
                              const rcc_job_setting_t *settings, int n, char **out, int *bad);

/* True when `path` is well formed: names ([A-Za-z0-9_-]+) joined by '.', each followed by
 * any number of [INDEX]. */
int rcc_job_path_valid(const char *path);
