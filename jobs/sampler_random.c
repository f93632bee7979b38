/* Random sampler: each value comes from its own splitmix64 stream keyed by the sweep's
 * seed, the configuration index and the parameter index, so that a trial's values do not
 * depend on which other trials ran, or in what order. */
#include <math.h>

#include "jobs/sampler.h"

static uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* A uniform double in [0, 1) from 53 random bits. */
static double uniform(uint64_t seed, int64_t k, int i) {
  /* Odd multipliers spread neighbouring k and i over the whole word before each mix. */
  uint64_t h = splitmix64(splitmix64(splitmix64(seed) + (uint64_t)k * 0xd1b54a32d192ed03ULL) +
                          (uint64_t)i * 0x8cb92ba72f3d8dd7ULL);
  return (double)(h >> 11) * 0x1.0p-53;
}

void rcc_sampler_random(const rcc_sweep_t *s, int64_t k, rcc_param_value_t *values) {
  for (int i = 0; i < s->num_params; i++) {
    const rcc_sweep_param_t *p = &s->params[i];
    double u = uniform((uint64_t)s->seed, k, i);
    values[i] = (rcc_param_value_t){0};
    if (p->kind == RCC_PARAM_CHOICE) {
      values[i].choice = (int)(u * p->num_choices);
    } else if (p->kind == RCC_PARAM_INT) {
      /* Every integer of [low, high] equally likely (log: uniform in log(x), rounded). */
      double x = p->log ? exp(log(p->low) + u * (log(p->high + 1) - log(p->low)))
                        : p->low + u * (p->high - p->low + 1);
      values[i].x = fmin(floor(x), p->high);
    } else {
      values[i].x = p->log ? exp(log(p->low) + u * (log(p->high) - log(p->low)))
                           : p->low + u * (p->high - p->low);
    }
  }
}
