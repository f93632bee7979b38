/* Layer sharding: the plan, result broadcasts, and agreement on failures. */
#include "runner/shard.h"

#include <stdlib.h>
#include <string.h>

rcc_status_t rcc_shard_plan(rcc_comm_t comm, const bool *selected, const int *m, const int *n,
                            int count, int *owner) {
  const int ranks = rcc_comm_size(comm);
  int32_t *plan = malloc((size_t)(count > 0 ? count : 1) * sizeof *plan);
  if (!plan) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (rcc_comm_rank(comm) == 0) {
    double *cost = calloc((size_t)count + 1, sizeof *cost),
           *load = calloc((size_t)ranks, sizeof *load);
    int *order = malloc(((size_t)count + 1) * sizeof *order);
    if (!cost || !load || !order) {
      free(cost);
      free(load);
      free(order);
      free(plan);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    int k = 0;
    for (int i = 0; i < count; i++) {
      plan[i] = -1;
      if (!selected[i]) continue;
      double mm = m[i], nn = n[i], r = mm < nn ? mm : nn;
      cost[i] = mm * nn * r + nn * nn * nn;
      order[k++] = i;
    }
    /* Largest cost first (insertion sort: a few hundred layers at most), ties by index. */
    for (int a = 1; a < k; a++)
      for (int b = a; b > 0 && cost[order[b]] > cost[order[b - 1]]; b--) {
        int t = order[b];
        order[b] = order[b - 1];
        order[b - 1] = t;
      }
    for (int a = 0; a < k; a++) {
      int best = 0;
      for (int r = 1; r < ranks; r++)
        if (load[r] < load[best]) best = r;
      plan[order[a]] = best;
      load[best] += cost[order[a]];
    }
    free(cost);
    free(load);
    free(order);
  }
  rcc_status_t st = rcc_comm_broadcast(comm, plan, (size_t)count, RCC_DT_I32, 0);
  for (int i = 0; st == RCC_OK && i < count; i++)
    owner[i] = plan[i];
  free(plan);
  return st;
}

rcc_status_t rcc_shard_broadcast(rcc_comm_t comm, rcc_factored_t *f, int root) {
  if (rcc_comm_size(comm) == 1) return RCC_OK;
  const bool mine = rcc_comm_rank(comm) == root;
  int64_t head[6] = {f->m, f->n, f->S != NULL, f->mask != NULL, f->rank, f->alpha != NULL};
  RCC_TRY(rcc_comm_broadcast(comm, head, 6, RCC_DT_I64, root));
  const int m = (int)head[0], n = (int)head[1], r = (int)head[4];
  const size_t mn = (size_t)m * n;
  if (!mine) {
    rcc_factored_free(f);
    *f = (rcc_factored_t){.m = m, .n = n, .rank = r};
    bool ok = true;
    if (head[2]) ok &= (f->S = malloc(mn * sizeof *f->S)) != NULL;
    if (head[3]) ok &= (f->mask = malloc(mn)) != NULL;
    if (r > 0) {
      ok &= (f->U = malloc((size_t)m * r * sizeof *f->U)) != NULL;
      ok &= (f->V = malloc((size_t)r * n * sizeof *f->V)) != NULL;
    }
    if (head[5]) ok &= (f->alpha = malloc((size_t)m * sizeof *f->alpha)) != NULL;
    /* Out of memory here would desynchronise the ranks: it is fatal for the job. */
    if (!ok) rcc_comm_abort(comm, 1, "out of memory receiving a layer");
  }
  if (f->S) RCC_TRY(rcc_comm_broadcast(comm, f->S, mn, RCC_DT_F32, root));
  if (f->mask) RCC_TRY(rcc_comm_broadcast(comm, f->mask, mn, RCC_DT_U8, root));
  if (r > 0) {
    RCC_TRY(rcc_comm_broadcast(comm, f->U, (size_t)m * r, RCC_DT_F32, root));
    RCC_TRY(rcc_comm_broadcast(comm, f->V, (size_t)r * n, RCC_DT_F32, root));
  }
  if (f->alpha) RCC_TRY(rcc_comm_broadcast(comm, f->alpha, (size_t)m, RCC_DT_F32, root));
  return RCC_OK;
}

rcc_status_t rcc_shard_agree(rcc_comm_t comm, rcc_status_t local) {
  /* [worst real error, any non-finite result]: a real error anywhere wins over NaNs. */
  int32_t flags[2] = {local == RCC_ERR_NUMERIC ? RCC_OK : (int32_t)local, local == RCC_ERR_NUMERIC};
  RCC_TRY(rcc_comm_allreduce(comm, flags, 2, RCC_DT_I32, RCC_OP_MAX));
  rcc_status_t worst = flags[0] != RCC_OK ? (rcc_status_t)flags[0]
                       : flags[1]         ? RCC_ERR_NUMERIC
                                          : RCC_OK;
  if (worst == RCC_OK || worst == local) return local;
  return rcc_fail(worst, "another rank failed (%s); see its message", rcc_status_str(worst));
}
