/* RCC_FAULT parsing and the injection points (see fault.h). */
#include "runner/fault.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void rcc_fault_point(int rank, int stage_number) {
  const char *spec = getenv("RCC_FAULT");
  int r, k;
  if (!spec || sscanf(spec, "rank:%d,stage:%d", &r, &k) != 2) return;
  if (r != rank || k != stage_number) return;
  fprintf(stderr, "rcc-dist[rank %d]: RCC_FAULT: exiting abruptly in stage %d\n", rank, k);
  _exit(42);
}

void rcc_fault_poison(int stage_number, rcc_factored_t *f) {
  const char *spec = getenv("RCC_FAULT");
  int k;
  if (!spec || sscanf(spec, "nan,stage:%d", &k) != 1 || k != stage_number) return;
  if (f->S && f->m > 0 && f->n > 0)
    f->S[0] = NAN;
  else if (f->rank > 0 && f->m > 0)
    f->U[0] = NAN;
  else if (f->alpha && f->m > 0)
    f->alpha[0] = NAN;
}
