/* Grid sampler: configuration k is a mixed-radix number, one digit per parameter. */
#include <math.h>

#include "jobs/sampler.h"

/* Distinct points of parameter p on the grid. */
static int64_t points(const rcc_sweep_param_t *p) {
  if (p->kind == RCC_PARAM_CHOICE) return p->num_choices;
  if (p->low == p->high) return 1;
  if (p->kind == RCC_PARAM_INT && p->high - p->low + 1 < p->steps)
    return (int64_t)(p->high - p->low + 1);
  return p->steps;
}

int64_t rcc_sampler_grid_size(const rcc_sweep_t *s) {
  int64_t n = 1;
  for (int i = 0; i < s->num_params; i++) {
    n *= points(&s->params[i]);
    if (n > ((int64_t)1 << 40)) return (int64_t)1 << 40; /* more than any sweep runs */
  }
  return n;
}

void rcc_sampler_grid(const rcc_sweep_t *s, int64_t k, rcc_param_value_t *values) {
  k %= rcc_sampler_grid_size(s);
  for (int i = s->num_params - 1; i >= 0; i--) {
    const rcc_sweep_param_t *p = &s->params[i];
    int64_t n = points(p), d = k % n;
    k /= n;
    values[i] = (rcc_param_value_t){0};
    if (p->kind == RCC_PARAM_CHOICE) {
      values[i].choice = (int)d;
      continue;
    }
    double t = n > 1 ? (double)d / (double)(n - 1) : 0;
    double x = p->log ? exp(log(p->low) + t * (log(p->high) - log(p->low)))
                      : p->low + t * (p->high - p->low);
    values[i].x = p->kind == RCC_PARAM_INT ? round(x) : x;
  }
}
