/* RCC_FAULT parsing and the injection point (see fault.h). */
#include "runner/fault.h"

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
