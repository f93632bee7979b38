/* Sharding of the cascade's layer work across ranks: rank 0 plans which rank compresses
 * which layer (balanced by estimated cost), and after each attempt every layer's result is
 * broadcast from its owner so that all ranks hold the whole new model. */
#pragma once
#include <stdbool.h>

#include "comm/comm.h"
#include "compress/factored.h"

/* owner[i] for every layer i with selected[i] (others -1): longest-processing-time-first
 * over the estimated cost m n min(m, n) + n^3 (SVD and OBS terms), ties by index; planned
 * on rank 0 and broadcast. m[i], n[i]: layer shapes. */
rcc_status_t rcc_shard_plan(rcc_comm_t comm, const bool *selected, const int *m, const int *n,
                            int count, int *owner);

/* Broadcasts f from rank `root` (its shape, which parts exist, and their values); on
 * other ranks f is freed and replaced. */
rcc_status_t rcc_shard_broadcast(rcc_comm_t comm, rcc_factored_t *f, int root);

/* Every rank's local status in, the worst one out, so that all ranks take the same branch
 * after work that may fail on some of them. A rank whose own status is OK but sees a
 * failure elsewhere gets that status with a message saying so. */
rcc_status_t rcc_shard_agree(rcc_comm_t comm, rcc_status_t local);
