/* The built-in samplers of sweeps: both are pure functions of the trial's configuration
 * index (and the sweep's seed), so that every Slurm array task computes its own trial
 * without talking to the others. Optuna, which needs a shared study, lives in
 * runner/optuna.h. With `repeats: R`, trial K runs configuration K / R with seed
 * seed + K % R; the caller does that division. */
#pragma once
#include <stdint.h>

#include "jobs/sweep.h"

/* Points of the grid: the product over parameters of `steps` (ranges; fewer for an int
 * range narrower than that) or the number of choices. */
int64_t rcc_sampler_grid_size(const rcc_sweep_t *s);

/* Configuration k of the grid (k modulo its size), the last parameter varying fastest;
 * range points are evenly spaced from low to high (in log(x) when log), int points
 * rounded. values has s->num_params entries. */
void rcc_sampler_grid(const rcc_sweep_t *s, int64_t k, rcc_param_value_t *values);

/* Configuration k drawn uniformly (in log(x) when log) from a generator seeded by
 * (s->seed, k, parameter index) alone. */
void rcc_sampler_random(const rcc_sweep_t *s, int64_t k, rcc_param_value_t *values);
