/* Small pieces of sweeps shared by the samplers, `rcc-dist trial` and the report: how a
 * parameter value is written, and the objective's score of a trial. */
#include <math.h>
#include <stdio.h>

#include "jobs/sweep.h"

void rcc_param_value_text(const rcc_sweep_param_t *p, const rcc_param_value_t *v, char *buf,
                          size_t size) {
  switch (p->kind) {
  case RCC_PARAM_CHOICE: snprintf(buf, size, "%s", p->choices[v->choice]); break;
  case RCC_PARAM_INT: snprintf(buf, size, "%.0f", v->x); break;
  case RCC_PARAM_FLOAT: snprintf(buf, size, "%.6g", v->x); break;
  }
}

double rcc_objective_score(const rcc_objective_t *o, const double metrics[RCC_NUM_METRICS],
                           bool *feasible) {
  double off = 0;
  for (int m = 0; m < RCC_NUM_METRICS; m++)
    if (metrics[m] < o->min[m]) off += o->min[m] - metrics[m];
  *feasible = off == 0;
  if (!*feasible) return -1 - off;
  if (o->kind == RCC_OBJECTIVE_MAXIMIZE) return metrics[o->metric];
  double score = 1;
  for (int m = 0; m < RCC_NUM_METRICS; m++)
    if (o->weight[m] != 0) score *= pow(fmax(metrics[m], 0), o->weight[m]);
  return score;
}
