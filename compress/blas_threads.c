/* See blas_threads.h. */
#include "compress/blas_threads.h"

#include <cblas.h>
#include <omp.h>

int rcc_blas_threads_widen(void) {
  const int previous = openblas_get_num_threads();
  if (!omp_in_parallel()) openblas_set_num_threads(omp_get_max_threads());
  return previous;
}

void rcc_blas_threads_restore(int previous) {
  if (!omp_in_parallel()) openblas_set_num_threads(previous);
}
