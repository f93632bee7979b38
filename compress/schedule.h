/* How sparsity grows over the iterations of gradual pruning (shared by the pruning
 * kernels and the job files that name it). */
#pragma once

typedef enum { RCC_SCHEDULE_LINEAR, RCC_SCHEDULE_COSINE, RCC_SCHEDULE_CUBIC } rcc_schedule_t;
