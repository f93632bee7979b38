/* Fault injection for tests, chosen by the environment variable RCC_FAULT:
 *   rank:R,stage:K  rank R leaves abruptly (_exit, no MPI_Finalize, no cleanup) in the
 *                   middle of stage K (1-based, counting the job's stages) of a fresh or
 *                   resumed run: what a node crash looks like to the others;
 *   nan,stage:K     the first layer each rank compresses in stage K (every attempt) comes
 *                   out with a NaN, as from a numerically broken stage. */
#pragma once

#include "compress/factored.h"

/* Called once per stage attempt after the rank's first layer is done. */
void rcc_fault_point(int rank, int stage_number);

/* Called on the rank's first compressed layer of each stage attempt, before the check
 * for non-finite values. */
void rcc_fault_poison(int stage_number, rcc_factored_t *f);
