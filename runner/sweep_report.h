/* `rcc-dist report SWEEP_DIR`: gathers SWEEP_DIR/trials/K/result.json of every trial and
 * prints one table (parameters, compression, retention, score, seconds, state) with the
 * Pareto front of (compression, retention) marked `pareto`; for configurations run with
 * several seeds, mean ± std and the 95% confidence interval; writes SWEEP_DIR/pareto.gp
 * and, with gnuplot, SWEEP_DIR/pareto.png; and writes the best trial's job (highest
 * objective score) as SWEEP_DIR/best.yaml with its output set to SWEEP_DIR/best. */
#pragma once
#include <stdio.h>

#include "common/status.h"

rcc_status_t rcc_sweep_report(const char *sweep_dir, FILE *out);
