/* A float sum over ranks that skips frozen entries and stages through a bounded bucket.
 * Distillation's gradient buffer holds every entry of a sparse layer's S, pruned ones
 * included (they stay 0 and never train): sending only the entries that train cuts the bytes
 * by the sparsity (a fifth of them at 80 %), and packing them bucket by bucket keeps the
 * staging memory at `bucket_bytes` however large the model. Host buffers (self, mpi). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"

/* Default staging size: large enough that per-message latency does not matter (1M floats),
 * small enough to stay in a node's last-level cache on the way through. */
enum { RCC_ALLREDUCE_BUCKET_BYTES = 4 << 20 };

/* buf (n) += the other ranks' buf, in place, for every i with skip[i] == 0; entries with
 * skip[i] != 0 are left as they are. skip (n) must be the same on every rank (NULL: none
 * skipped). Collective; with one rank it returns at once. */
rcc_status_t rcc_comm_allreduce_sum_packed(rcc_comm_t comm, float *buf, int64_t n,
                                           const uint8_t *skip, size_t bucket_bytes);
