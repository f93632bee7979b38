/* Fault injection for tests: RCC_FAULT=rank:R,stage:K makes rank R leave abruptly
 * (_exit, no MPI_Finalize, no cleanup) in the middle of stage K (1-based, counting the
 * job's stages) of a fresh or resumed run: what a node crash looks like to the others. */
#pragma once

/* Called once per stage attempt after the rank's first layer is done. */
void rcc_fault_point(int rank, int stage_number);
