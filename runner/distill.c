/* The distillation loop (see distill.h). Every rank holds the whole student and applies the
 * same update from the same summed gradients, so the ranks stay identical without
 * broadcasting parameters.
 *
 * Memory: the student, its parameters and gradients, the optimizer state and the per-entry
 * masks live in the session backend's memory, and the step (gradient sum, pull, clipping,
 * AdamW) runs there through backend_train.h, and so does the loss (compress/distill_loss.c):
 * the student's features and their gradients never leave the backend. Per micro-batch the
 * host uploads the pixels and the teacher's features of the batch's images (gathered from
 * the host copy all ranks share) and reads back the loss, one double. On the cpu backend
 * every "device" buffer is the host one itself, so nothing is copied and the arithmetic is
 * what it always was. */
#include "runner/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_train.h"
#include "comm/allreduce_packed.h"
#include "common/clock.h"
#include "common/log.h"
#include "compress/distill_loss.h"
#include "compress/optim.h"
#include "eval/zeroshot.h"
#include "model/clip_train.h"
#include "runner/shard.h"

/* Everything the loop allocates, freed in one place. */
typedef struct {
  rcc_clip_train_t *student;
  int C, NT, T, P, R;     /* classes, templates, text length, embedding width, prompts */
  int32_t *ids;           /* (R, T) prompt token ids */
  float *K_t;             /* (C, P) teacher class embeddings */
  float *img_t;           /* (n_train, P) teacher image features */
  float *pixels;          /* (local batch, 3, S, S) */
  float *img_t_batch;     /* (local batch, P): the teacher features of this batch */
  float *start, *best;    /* parameters at the start and at the best epoch (backend memory) */
  uint8_t *decay;         /* per parameter: weight decay applies */
  uint8_t *pull;          /* per parameter: alpha, pulled toward its start */
  uint8_t *frozen;        /* per parameter: never changes in this stage: a bias or LayerNorm
                             carried from an earlier stage that this stage does not train,
                             or a pruned entry of S (0, and so is its gradient) */
  int64_t trained;        /* parameters that train, */
  int64_t trained_bias;   /* of them biases */
  int64_t trained_ln;     /* and LayerNorm weights and biases */
  bool has_tensors;       /* the student holds biases or LayerNorms as parameters */
  int *order, *batch_idx; /* (n_train) shuffled positions, (local batch) dataset indices */
  bool text_frozen;       /* no text layer compressed and no bias or LayerNorm in the student:
                             its class embeddings are the teacher's, and the text tower never
                             runs */
  rcc_adamw_config_t opt;
  int64_t opt_step; /* AdamW updates made so far */
  float *m, *v;     /* AdamW moments (backend memory) */
  rcc_backend_t be; /* the session's: the student's memory, where everything runs */
  bool device;      /* be takes the device path: host buffers have backend twins */
  /* backend-memory twins of host buffers; the host buffer itself on the cpu backend */
  float *K_t_be, *img_t_batch_be;
  uint8_t *decay_be, *pull_be, *frozen_be;
  /* device path on several ranks: the positions of the entries that are not frozen, and
   * the buffer they travel in (the packed all-reduce of the host path, on the backend) */
  int64_t *keep_idx_be, n_keep;
  float *packed_be;
  /* backend memory only: the features the loss reads and the gradients it writes */
  float *img_s_be, *d_img_be;       /* (local batch, P) */
  float *E_be, *dE_be;              /* (R, P) */
  float *K_s_be, *dK_be, *cache_be; /* (C, P), (C, P), ensemble cache */
} distill_t;

static void distill_free(distill_t *d) {
  void *twins[][2] = {{d->K_t_be, d->K_t},
                      {d->img_t_batch_be, d->img_t_batch},
                      {d->decay_be, d->decay},
                      {d->pull_be, d->pull},
                      {d->frozen_be, d->frozen}};
  for (size_t i = 0; i < sizeof twins / sizeof twins[0]; i++)
    if (twins[i][0] != twins[i][1]) rcc_backend_release(d->be, twins[i][0]);
  float *own[] = {d->img_s_be, d->d_img_be, d->E_be, d->dE_be, d->K_s_be, d->dK_be, d->cache_be};
  for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
    rcc_backend_release(d->be, own[i]);
  rcc_backend_release(d->be, d->keep_idx_be);
  rcc_backend_release(d->be, d->packed_be);
  rcc_backend_release(d->be, d->start);
  rcc_backend_release(d->be, d->best);
  rcc_backend_release(d->be, d->m);
  rcc_backend_release(d->be, d->v);
  rcc_clip_train_free(d->student);
  free(d->ids);
  free(d->K_t);
  free(d->img_t);
  free(d->pixels);
  free(d->img_t_batch);
  free(d->decay);
  free(d->pull);
  free(d->frozen);
  free(d->order);
  free(d->batch_idx);
}

/* A backend twin of host buffer `host` (bytes): the host buffer itself on the cpu backend. */
static void *twin(distill_t *d, void *host, size_t bytes) {
  if (!d->device) return host;
  return rcc_backend_alloc(d->be, bytes ? bytes : 1);
}

static rcc_status_t to_backend(distill_t *d, void *be_buf, const void *host, size_t bytes) {
  if (host == be_buf || bytes == 0) return RCC_OK;
  return rcc_backend_upload(d->be, be_buf, host, bytes);
}

/* Teacher outputs, computed once with the original model: class embeddings (the same
 * ensemble the validation uses) and the features of every training image (each rank its
 * contiguous share, summed so that every rank has all). */
static rcc_status_t teacher_outputs(const rcc_distill_args_t *a, distill_t *d) {
  rcc_eval_ctx_t teacher;
  RCC_TRY(rcc_eval_ctx_open(&teacher, a->job->model, a->s->backend, a->job->data.batch_size));
  const int rank = rcc_comm_rank(a->s->comm), size = rcc_comm_size(a->s->comm);
  const int lo = (int)((int64_t)a->n_train * rank / size);
  const int hi = (int)((int64_t)a->n_train * (rank + 1) / size);
  rcc_status_t st = rcc_zeroshot_class_embeddings(&teacher, a->s->comm, a->classes,
                                                  rcc_default_templates, d->NT, d->K_t);
  memset(d->img_t, 0, (size_t)a->n_train * d->P * sizeof *d->img_t);
  if (st == RCC_OK && hi > lo)
    st = rcc_eval_dataset_features(&teacher, a->train, a->train_idx + lo, hi - lo, false,
                                   d->img_t + (size_t)lo * d->P);
  rcc_eval_ctx_close(&teacher);
  /* every rank reaches the sum, failed or not */
  rcc_status_t agreed = st;
  float failed = st != RCC_OK;
  rcc_status_t cst = rcc_comm_allreduce(a->s->comm, &failed, 1, RCC_DT_F32, RCC_OP_MAX);
  if (agreed == RCC_OK && cst == RCC_OK && failed > 0)
    agreed = rcc_fail(RCC_ERR_MPI, "distillation: the teacher failed on another rank");
  if (agreed == RCC_OK) agreed = cst;
  if (agreed == RCC_OK)
    agreed =
        rcc_comm_allreduce(a->s->comm, d->img_t, (size_t)a->n_train * d->P, RCC_DT_F32, RCC_OP_SUM);
  return agreed;
}

/* The group of the student's parameter `name`, or NULL. */
static const rcc_clip_param_group_t *find_group(const rcc_clip_train_t *t, const char *name) {
  for (int g = 0; g < rcc_clip_train_num_groups(t); g++)
    if (!strcmp(rcc_clip_train_group(t, g)->name, name)) return rcc_clip_train_group(t, g);
  return NULL;
}

/* An attention key bias adds the same q . b to every score of a query's row, which softmax
 * ignores: its gradient is zero up to rounding, and Adam would turn that rounding into steps
 * of the full learning rate, different on every machine. So it stays frozen. */
static bool key_bias(const char *name) {
  static const char suffix[] = "self_attn.k_proj.bias";
  const size_t n = strlen(name), k = sizeof suffix - 1;
  return n >= k && strcmp(name + n - k, suffix) == 0;
}

/* Writes the biases and LayerNorms of earlier stages into the student's parameters. */
static rcc_status_t carry_tensors(const rcc_distill_args_t *a, distill_t *d) {
  for (int i = 0; a->tensors && i < a->tensors->n; i++) {
    const rcc_clip_tensor_t *t = &a->tensors->items[i];
    const rcc_clip_param_group_t *grp = find_group(d->student, t->name);
    if (!grp || grp->count != t->count)
      return rcc_fail(RCC_ERR_ARG,
                      "distillation: tensor '%s' (%lld values) of an earlier stage is no "
                      "parameter of the student",
                      t->name, (long long)t->count);
    RCC_TRY(rcc_backend_upload(d->be, rcc_clip_train_params(d->student) + grp->offset, t->values,
                               (size_t)t->count * sizeof *t->values));
  }
  return RCC_OK;
}

static bool is_tensor_group(const rcc_clip_param_group_t *grp) {
  return grp->kind == RCC_PARAM_BIAS || grp->kind == RCC_PARAM_LN_WEIGHT ||
         grp->kind == RCC_PARAM_LN_BIAS;
}

/* Hands each of the student's biases and LayerNorms, as host values, to sink(target, name,
 * values, count): in place on the cpu backend, through a download on a device. */
typedef rcc_status_t (*tensor_sink_t)(void *target, const char *name, const float *values,
                                      int64_t count);

static rcc_status_t each_tensor(distill_t *d, tensor_sink_t sink, void *target) {
  for (int g = 0; d->has_tensors && g < rcc_clip_train_num_groups(d->student); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(d->student, g);
    if (!is_tensor_group(grp)) continue;
    const float *p = rcc_clip_train_params(d->student) + grp->offset;
    if (!d->device) {
      RCC_TRY(sink(target, grp->name, p, grp->count));
      continue;
    }
    float *buf = malloc((size_t)grp->count * sizeof *buf);
    if (!buf) return rcc_fail(RCC_ERR_NOMEM, "distillation: out of memory");
    rcc_status_t st = rcc_backend_download(d->be, buf, p, (size_t)grp->count * sizeof *buf);
    if (st == RCC_OK) st = sink(target, grp->name, buf, grp->count);
    free(buf);
    RCC_TRY(st);
  }
  return RCC_OK;
}

static rcc_status_t set_in_model(void *model, const char *name, const float *v, int64_t count) {
  return rcc_clip_set_tensor(model, name, v, count);
}

static rcc_status_t put_in_list(void *list, const char *name, const float *v, int64_t count) {
  return rcc_clip_tensors_put(list, name, v, count);
}

/* The student's current biases and LayerNorms into the inference model, so that the
 * validation sees them (the linear layers reach it through a->evaluate). */
static rcc_status_t push_tensors(const rcc_distill_args_t *a, distill_t *d) {
  return each_tensor(d, set_in_model, a->ctx->model);
}

/* Host copies of the student's biases and LayerNorms: the stage's result. */
static rcc_status_t collect_tensors(distill_t *d, rcc_clip_tensors_t *out) {
  return each_tensor(d, put_in_list, out);
}

/* keep_idx_be and packed_be for the device path's all-reduce: the gradient entries that are
 * not frozen, gathered into one buffer (as allreduce_packed.c does on the host, so that at
 * high sparsity the pruned entries of S do not travel). */
static rcc_status_t pack_positions(distill_t *d, int64_t np) {
  int64_t *idx = malloc((size_t)(np > 0 ? np : 1) * sizeof *idx);
  if (!idx)
    return rcc_fail(RCC_ERR_NOMEM, "distillation: out of memory for %lld positions", (long long)np);
  d->n_keep = 0;
  for (int64_t i = 0; i < np; i++)
    if (!d->frozen[i]) idx[d->n_keep++] = i;
  const size_t n = (size_t)(d->n_keep > 0 ? d->n_keep : 1);
  d->keep_idx_be = rcc_backend_alloc(d->be, n * sizeof *idx);
  d->packed_be = rcc_backend_alloc(d->be, n * sizeof *d->packed_be);
  rcc_status_t st =
      d->keep_idx_be && d->packed_be
          ? rcc_backend_upload(d->be, d->keep_idx_be, idx, (size_t)d->n_keep * sizeof *idx)
          : rcc_fail_context(RCC_ERR_NOMEM, "distillation: packed gradients");
  free(idx);
  return st;
}

static rcc_status_t setup(const rcc_distill_args_t *a, distill_t *d) {
  const rcc_alphaedit_config_t *cfg = a->cfg;
  const rcc_clip_config_t *mc = rcc_clip_get_config(a->ctx->model);
  const int size = rcc_comm_size(a->s->comm);
  d->be = a->s->backend;
  d->device = rcc_backend_device_path(d->be);
  d->C = rcc_dataset_num_classes(a->classes);
  d->NT = rcc_default_template_count;
  d->T = mc->text.max_position_embeddings;
  d->P = mc->projection_dim;
  d->R = d->C * d->NT;
  if (d->C <= 0)
    return rcc_fail(RCC_ERR_ARG, "%s: distill needs a validation dataset with classes",
                    a->job->path);
  const int local_max = (cfg->batch_size + size - 1) / size;
  const size_t S = (size_t)mc->vision.image_size;
  d->ids = malloc((size_t)d->R * d->T * sizeof *d->ids);
  d->K_t = malloc((size_t)d->C * d->P * sizeof *d->K_t);
  d->img_t = malloc((size_t)a->n_train * d->P * sizeof *d->img_t);
  d->pixels = malloc((size_t)local_max * 3 * S * S * sizeof *d->pixels);
  d->img_t_batch = malloc((size_t)local_max * d->P * sizeof *d->img_t_batch);
  d->order = malloc((size_t)a->n_train * sizeof *d->order);
  d->batch_idx = malloc((size_t)local_max * sizeof *d->batch_idx);
  if (!d->ids || !d->K_t || !d->img_t || !d->pixels || !d->img_t_batch || !d->order ||
      !d->batch_idx)
    return rcc_fail(RCC_ERR_NOMEM, "distillation: out of memory for batches of %d", local_max);
  const size_t bP = (size_t)local_max * d->P * sizeof(float),
               RP = (size_t)d->R * d->P * sizeof(float), CP = (size_t)d->C * d->P * sizeof(float);
  d->K_t_be = twin(d, d->K_t, CP);
  d->img_t_batch_be = twin(d, d->img_t_batch, bP);
  d->img_s_be = rcc_backend_alloc(d->be, bP);
  d->d_img_be = rcc_backend_alloc(d->be, bP);
  d->E_be = rcc_backend_alloc(d->be, RP);
  d->dE_be = rcc_backend_alloc(d->be, RP);
  d->K_s_be = rcc_backend_alloc(d->be, CP);
  d->dK_be = rcc_backend_alloc(d->be, CP);
  d->cache_be = rcc_backend_alloc(d->be, rcc_distill_classes_cache_floats(d->C, d->NT, d->P) *
                                             sizeof *d->cache_be);
  if (!d->K_t_be || !d->img_t_batch_be || !d->img_s_be || !d->d_img_be || !d->E_be || !d->dE_be ||
      !d->K_s_be || !d->dK_be || !d->cache_be)
    return rcc_fail_context(RCC_ERR_NOMEM, "distillation: features of batches of %d", local_max);
  RCC_TRY(rcc_zeroshot_prompt_ids(a->ctx, a->classes, rcc_default_templates, d->NT, d->ids));
  RCC_TRY(teacher_outputs(a, d));
  RCC_TRY(to_backend(d, d->K_t_be, d->K_t, CP));
  /* Biases and LayerNorms changed by an earlier stage are parameters of the student even when
   * this stage does not train them, so that it starts from them (frozen below). */
  const bool carry = a->tensors && a->tensors->n > 0;
  const rcc_clip_trainable_t which = {.alpha = true,
                                      .bias = (cfg->trainable & RCC_TRAIN_BIAS) || carry,
                                      .layernorm = (cfg->trainable & RCC_TRAIN_LAYERNORM) || carry,
                                      .lowrank = cfg->trainable & RCC_TRAIN_LOWRANK,
                                      .sparse_values = cfg->trainable & RCC_TRAIN_SPARSE_VALUES};
  d->has_tensors = which.bias || which.layernorm;
  d->text_frozen = !d->has_tensors;
  for (int i = 0; i < a->n; i++)
    if (a->selected[i] && strncmp(rcc_clip_linear(a->ctx->model, i)->name, "text", 4) == 0)
      d->text_frozen = false;
  if (d->text_frozen) RCC_TRY(rcc_train_copy(d->be, d->K_s_be, d->K_t_be, (int64_t)d->C * d->P));

  rcc_factored_t **ptrs = calloc((size_t)a->n, sizeof *ptrs);
  if (!ptrs) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int i = 0; i < a->n; i++)
    if (a->selected[i]) ptrs[i] = &a->layers[i];
  rcc_status_t st =
      rcc_clip_train_create(a->job->model, a->s->backend, ptrs, a->n, which, &d->student);
  free(ptrs);
  RCC_TRY(st);

  const int64_t np = rcc_clip_train_num_params(d->student);
  d->start = rcc_backend_alloc(d->be, (size_t)(np > 0 ? np : 1) * sizeof *d->start);
  d->best = rcc_backend_alloc(d->be, (size_t)(np > 0 ? np : 1) * sizeof *d->best);
  d->m = rcc_backend_alloc(d->be, (size_t)(np > 0 ? np : 1) * sizeof *d->m);
  d->v = rcc_backend_alloc(d->be, (size_t)(np > 0 ? np : 1) * sizeof *d->v);
  d->decay = calloc((size_t)(np > 0 ? np : 1), 1);
  d->pull = calloc((size_t)(np > 0 ? np : 1), 1);
  d->frozen = calloc((size_t)(np > 0 ? np : 1), 1);
  if (!d->start || !d->best || !d->m || !d->v || !d->decay || !d->pull || !d->frozen)
    return rcc_fail(RCC_ERR_NOMEM, "distillation: out of memory for %lld parameters",
                    (long long)np);
  RCC_TRY(carry_tensors(a, d));
  RCC_TRY(rcc_train_copy(d->be, d->start, rcc_clip_train_params(d->student), np));
  RCC_TRY(rcc_train_copy(d->be, d->best, d->start, np));
  RCC_TRY(rcc_train_fill(d->be, d->m, 0.0f, np));
  RCC_TRY(rcc_train_fill(d->be, d->v, 0.0f, np));
  /* alpha: no decay toward 0 but a pull toward its closed-form start; U, V, S: decay */
  for (int g = 0; g < rcc_clip_train_num_groups(d->student); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(d->student, g);
    uint8_t *dst = grp->kind == RCC_PARAM_ALPHA ? d->pull : d->decay;
    if (grp->kind == RCC_PARAM_ALPHA || grp->kind == RCC_PARAM_U || grp->kind == RCC_PARAM_V ||
        grp->kind == RCC_PARAM_S)
      memset(dst + grp->offset, 1, (size_t)grp->count);
  }
  d->trained = np;
  for (int g = 0; g < rcc_clip_train_num_groups(d->student); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(d->student, g);
    const bool bias = grp->kind == RCC_PARAM_BIAS,
               ln = grp->kind == RCC_PARAM_LN_WEIGHT || grp->kind == RCC_PARAM_LN_BIAS;
    if ((bias && !(cfg->trainable & RCC_TRAIN_BIAS)) ||
        (ln && !(cfg->trainable & RCC_TRAIN_LAYERNORM)) || (bias && key_bias(grp->name))) {
      memset(d->frozen + grp->offset, 1, (size_t)grp->count);
      d->trained -= grp->count;
    } else if (bias) {
      d->trained_bias += grp->count;
    } else if (ln) {
      d->trained_ln += grp->count;
    }
  }
  /* Pruned entries of S, after the counts above (which include them, as the S groups do):
   * marking them frozen leaves them out of the gradient all-reduce. */
  for (int g = 0; g < rcc_clip_train_num_groups(d->student); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(d->student, g);
    const uint8_t *mask = grp->kind == RCC_PARAM_S ? a->layers[grp->layer].mask : NULL;
    if (mask)
      for (int64_t j = 0; j < grp->count; j++)
        if (!mask[j]) d->frozen[grp->offset + j] = 1;
  }
  d->opt = (rcc_adamw_config_t){0.9, 0.999, 1e-8, cfg->weight_decay};
  const size_t mask_bytes = (size_t)(np > 0 ? np : 1);
  d->decay_be = twin(d, d->decay, mask_bytes);
  d->pull_be = twin(d, d->pull, mask_bytes);
  d->frozen_be = twin(d, d->frozen, mask_bytes);
  if (!d->decay_be || !d->pull_be || !d->frozen_be)
    return rcc_fail_context(RCC_ERR_NOMEM, "distillation: masks of %lld parameters", (long long)np);
  RCC_TRY(to_backend(d, d->decay_be, d->decay, (size_t)np));
  RCC_TRY(to_backend(d, d->pull_be, d->pull, (size_t)np));
  RCC_TRY(to_backend(d, d->frozen_be, d->frozen, (size_t)np));
  return d->device && size > 1 ? pack_positions(d, np) : RCC_OK;
}

/* Same permutation on every rank: Fisher-Yates with a splitmix64 stream from the seed. */
static void shuffle(int *order, int n, uint64_t seed) {
  for (int i = 0; i < n; i++)
    order[i] = i;
  for (int i = n - 1; i > 0; i--) {
    seed += 0x9e3779b97f4a7c15ull;
    uint64_t z = seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const int j = (int)(z % (uint64_t)(i + 1));
    const int t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
}

/* Forward and backward of this rank's share [lo, hi) of one global batch of B images;
 * gradients accumulate in the student. Returns this rank's share of the loss. */
static rcc_status_t micro_step(const rcc_distill_args_t *a, distill_t *d, int start, int B,
                               const rcc_distill_loss_config_t *lc, double *loss) {
  const int rank = rcc_comm_rank(a->s->comm), size = rcc_comm_size(a->s->comm);
  const int lo = start + (int)((int64_t)B * rank / size);
  const int b = start + (int)((int64_t)B * (rank + 1) / size) - lo;
  float *img_t = d->img_t_batch;
  for (int i = 0; i < b; i++) {
    d->batch_idx[i] = a->train_idx[d->order[lo + i]];
    memcpy(img_t + (size_t)i * d->P, d->img_t + (size_t)d->order[lo + i] * d->P,
           (size_t)d->P * sizeof *img_t);
  }
  rcc_status_t st = to_backend(d, d->img_t_batch_be, img_t, (size_t)b * d->P * sizeof *img_t);
  if (st == RCC_OK && !d->text_frozen) {
    st = rcc_clip_train_text_forward(d->student, d->ids, d->R, d->T, d->E_be);
    if (st == RCC_OK)
      st = rcc_distill_classes_forward(d->be, d->E_be, d->C, d->NT, d->P, d->cache_be, d->K_s_be);
  }
  if (st == RCC_OK && b > 0)
    st = rcc_eval_dataset_pixels(a->ctx, a->train, d->batch_idx, b, d->pixels);
  if (st == RCC_OK && b > 0)
    st = rcc_clip_train_image_forward(d->student, d->pixels, b, d->img_s_be);
  if (st == RCC_OK)
    st = rcc_distill_loss(d->be, lc, d->img_s_be, d->img_t_batch_be, b, 1.0 / B, d->K_s_be,
                          d->K_t_be, d->C, 1.0 / size, d->P, loss, d->d_img_be, d->dK_be);
  if (st == RCC_OK && b > 0) st = rcc_clip_train_image_backward(d->student, d->d_img_be);
  if (st == RCC_OK && !d->text_frozen) {
    st = rcc_distill_classes_backward(d->be, d->dK_be, d->cache_be, d->K_s_be, d->C, d->NT, d->P,
                                      d->dE_be);
    if (st == RCC_OK) st = rcc_clip_train_text_backward(d->student, d->dE_be);
  }
  return st;
}

/* Sums gradients and loss over ranks, adds alpha's pull, clips, and takes one AdamW step. */
static rcc_status_t optimizer_step(const rcc_distill_args_t *a, distill_t *d, double *loss,
                                   int micro_batches, double lr) {
  const int64_t np = rcc_clip_train_num_params(d->student);
  float *p = rcc_clip_train_params(d->student), *g = rcc_clip_train_grads(d->student);
  /* Frozen entries are the same on every rank and their gradients are discarded below:
   * only the others travel, gathered on the device into one buffer for the backend's
   * collective (NCCL, or staged through the host), on the host in buckets. */
  if (d->device && d->packed_be) {
    RCC_TRY(rcc_train_gather(d->be, d->packed_be, g, d->keep_idx_be, d->n_keep));
    RCC_TRY(rcc_comm_backend_allreduce(&a->s->backend_comm, d->packed_be, (size_t)d->n_keep,
                                       RCC_DT_F32, RCC_OP_SUM));
    RCC_TRY(rcc_train_scatter(d->be, g, d->packed_be, d->keep_idx_be, d->n_keep));
  } else if (!d->device)
    RCC_TRY(
        rcc_comm_allreduce_sum_packed(a->s->comm, g, np, d->frozen, RCC_ALLREDUCE_BUCKET_BYTES));
  RCC_TRY(rcc_comm_allreduce(a->s->comm, loss, 1, RCC_DT_F64, RCC_OP_SUM));
  const float inv = 1.0f / (float)micro_batches, pull = (float)(2.0 * a->cfg->regularization);
  double reg = 0.0, norm = 0.0;
  RCC_TRY(rcc_train_distill_grads(d->be, g, p, d->start, d->frozen_be, d->pull_be, np, inv, pull,
                                  a->cfg->regularization, &reg));
  *loss = *loss / micro_batches + reg;
  if (!isfinite(*loss)) return rcc_fail(RCC_ERR_NUMERIC, "distillation: the loss became %g", *loss);
  RCC_TRY(rcc_train_clip_grad_norm(d->be, g, np, a->cfg->clip_norm, &norm));
  const rcc_train_adamw_t h = {lr,         d->opt.beta1,        d->opt.beta2,
                               d->opt.eps, d->opt.weight_decay, ++d->opt_step};
  RCC_TRY(rcc_train_adamw_step(d->be, p, d->m, d->v, g, d->decay_be, np, &h));
  return rcc_clip_train_zero_grads(d->student);
}

static rcc_status_t export_layers(const rcc_distill_args_t *a, distill_t *d) {
  for (int i = 0; i < a->n; i++)
    if (a->selected[i]) RCC_TRY(rcc_clip_train_export_layer(d->student, i, &a->layers[i]));
  return RCC_OK;
}

static rcc_status_t train(const rcc_distill_args_t *a, distill_t *d, rcc_distill_summary_t *out) {
  const rcc_alphaedit_config_t *cfg = a->cfg;
  const int N = a->n_train, batch = cfg->batch_size, accum = cfg->gradient_accumulation;
  const int batches = (N + batch - 1) / batch;
  const int64_t steps_per_epoch = (batches + accum - 1) / accum;
  const int64_t total = steps_per_epoch * cfg->num_epochs;
  const int64_t warmup = (int64_t)llround(cfg->warmup_ratio * (double)total);
  const int64_t np = rcc_clip_train_num_params(d->student);
  const rcc_distill_loss_config_t lc = {cfg->kd_weight, cfg->kd_temperature, cfg->embedding_loss,
                                        rcc_clip_train_logit_scale(d->student)};
  RCC_TRY(push_tensors(a, d));
  RCC_TRY(a->evaluate(a->evaluate_ctx, a->layers, &out->start_metric));
  out->best_metric = out->start_metric;
  RCC_INFO("distill: %lld parameters (%lld of biases, %lld of LayerNorms) train on %d images, %d "
           "epochs of %lld steps (batch %d x %d accumulated), start: top-1 %.2f%%",
           (long long)d->trained, (long long)d->trained_bias, (long long)d->trained_ln, N,
           cfg->num_epochs, (long long)steps_per_epoch, batch, accum, out->start_metric);
  int bad_epochs = 0;
  int64_t step = 0;
  for (int epoch = 1; epoch <= cfg->num_epochs; epoch++) {
    shuffle(d->order, N, (uint64_t)a->job->seed * 7919u + (uint64_t)epoch);
    const double t0 = rcc_now_seconds();
    double epoch_loss = 0.0, acc_loss = 0.0;
    int micro = 0, epoch_steps = 0;
    for (int bi = 0; bi < batches; bi++) {
      const int start = bi * batch, B = N - start < batch ? N - start : batch;
      double l = 0.0;
      /* agreed before the sums below, so that a failure on one rank stops them all */
      RCC_TRY(rcc_shard_agree(a->s->comm, micro_step(a, d, start, B, &lc, &l)));
      size_t act = rcc_clip_train_activation_bytes(d->student);
      if (act > out->activation_bytes) out->activation_bytes = act;
      acc_loss += l;
      if (++micro == accum || bi == batches - 1) {
        const double lr = rcc_lr_warmup_cosine(cfg->learning_rate, step, warmup, total);
        RCC_TRY(optimizer_step(a, d, &acc_loss, micro, lr));
        if (step == 0) out->first_loss = acc_loss;
        out->last_loss = acc_loss;
        epoch_loss += acc_loss;
        epoch_steps++;
        step++;
        rcc_log_progress("distill epoch %d/%d step %lld/%lld: loss %.5f, lr %.2e, %.1f images/s",
                         epoch, cfg->num_epochs, (long long)step, (long long)total, acc_loss, lr,
                         (start + B) / (rcc_now_seconds() - t0));
        micro = 0;
        acc_loss = 0.0;
      }
    }
    rcc_log_progress_done();
    const double seconds = rcc_now_seconds() - t0;
    out->train_seconds += seconds;
    out->epochs = epoch;
    out->steps = (int)step;
    RCC_TRY(export_layers(a, d));
    RCC_TRY(push_tensors(a, d));
    double metric;
    RCC_TRY(a->evaluate(a->evaluate_ctx, a->layers, &metric));
    const bool better = metric > out->best_metric;
    if (better) {
      out->best_metric = metric;
      out->best_epoch = epoch;
      RCC_TRY(rcc_train_copy(d->be, d->best, rcc_clip_train_params(d->student), np));
    }
    bad_epochs = better ? 0 : bad_epochs + 1;
    RCC_INFO("distill epoch %d/%d: loss %.5f, top-1 %.2f%% (best %.2f%%, epoch %d), %.1f images/s",
             epoch, cfg->num_epochs, epoch_loss / (epoch_steps ? epoch_steps : 1), metric,
             out->best_metric, out->best_epoch, N / seconds);
    if (cfg->patience > 0 && bad_epochs >= cfg->patience && epoch < cfg->num_epochs) {
      RCC_INFO("distill: no better top-1 for %d epoch(s): stopping early", bad_epochs);
      break;
    }
  }
  out->samples_per_second = out->train_seconds > 0 ? N * out->epochs / out->train_seconds : 0.0;
  /* the best state, the closed-form start included, is the one the stage keeps */
  RCC_TRY(rcc_train_copy(d->be, rcc_clip_train_params(d->student), d->best, np));
  RCC_TRY(push_tensors(a, d));
  return export_layers(a, d);
}

rcc_status_t rcc_distill_run(const rcc_distill_args_t *a, rcc_distill_summary_t *out,
                             rcc_clip_tensors_t *tensors) {
  *out = (rcc_distill_summary_t){0};
  rcc_clip_tensors_free(tensors);
  if (a->n_train <= 0)
    return rcc_fail(RCC_ERR_ARG, "%s: distill has no training images", a->job->path);
  distill_t d = {0};
  rcc_status_t st = setup(a, &d);
  if (st == RCC_OK) {
    out->trained_params = d.trained;
    out->trained_bias_params = d.trained_bias;
    out->trained_layernorm_params = d.trained_ln;
    st = train(a, &d, out);
  }
  if (st == RCC_OK) st = collect_tensors(&d, tensors);
  distill_free(&d);
  return st;
}
