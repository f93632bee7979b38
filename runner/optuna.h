/* The optuna sampler of sweeps, through Optuna's command line (`pip install optuna`):
 * one study "rcc-sweep" in a journal file SWEEP_DIR/optuna.journal (JournalFileBackend,
 * which locks the file, so array tasks on several nodes may share it), TPE seeded with the
 * sweep's seed. rcc-dist itself needs no Python: only sweeps with `sampler: optuna` call
 * the `optuna` program. Its messages go to SWEEP_DIR/optuna.log. */
#pragma once
#include "common/status.h"
#include "jobs/sweep.h"

/* RCC_ERR_ARG, saying to install optuna or use grid/random, when `optuna` is not in PATH. */
rcc_status_t rcc_optuna_check(void);

/* Creates the study when it does not exist yet (safe to call from every trial). */
rcc_status_t rcc_optuna_create(const char *sweep_dir);

/* Asks for trial `task`: its optuna number and one value per parameter. Every ask is a
 * new Python process whose sampler starts afresh, so the sampler's seed is the sweep's
 * seed plus the task: with one seed for all, every task would draw the same values. */
rcc_status_t rcc_optuna_ask(const rcc_sweep_t *s, const char *sweep_dir, int task, int *number,
                            rcc_param_value_t *values);

/* Tells a finished trial: state "complete" with the score, or "fail" / "pruned". */
rcc_status_t rcc_optuna_tell(const char *sweep_dir, int number, const char *state, double value);
