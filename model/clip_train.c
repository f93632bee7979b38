/* Trainable CLIP for distillation (clip_train.h): the forward of model/clip.c rebuilt from
 * the ops of grad_ops.h so that every activation the backward needs is kept, and the
 * backward through both towers down to the lowest trainable parameter.
 *
 * Storage, all of it in the backend's memory: trainable tensors live in one flat params
 * array (gradients in a second one of the same layout); frozen tensors are owned copies
 * uploaded at creation, except on the cpu backend, whose memory is the host's: there file
 * tensors point into the copy-on-write mapping of model.safetensors (kept open), as they
 * always did. Host inputs (pixels, token ids, pooled rows) are uploaded per forward into
 * buffers of the model; on the cpu backend they are read in place. Every layer
 * reads its tensors through pointers fixed at creation, so values written into params
 * take effect on the next forward. Activations of the last forward of each tower live in
 * one arena per tower; the backward's temporaries in one shared scratch buffer. */
#include "model/clip_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend_train.h"
#include "io/safetensors.h"
#include "model/grad_ops.h"

/* One linear layer: what it computes with (op), where its gradients go (g; NULL parts are
 * frozen), and the trainable S when its mask must be re-applied. */
typedef struct {
  char name[128];
  rcc_grad_linear_t op;
  rcc_grad_linear_grads_t g;
  bool compressed;
  float *S_train; /* op.W in params when S trains with a mask, else NULL */
} tlin_t;

typedef struct {
  const float *w, *b;
  float *gw, *gb; /* NULL when LayerNorms are frozen */
} tln_t;

typedef struct {
  tlin_t *k, *v, *q, *o, *fc1, *fc2;
  tln_t ln1, ln2;
} tblock_t;

/* What the forward of one block keeps (N = B*T rows). */
typedef struct {
  float *x;                        /* (N,D) block input, the residual stream */
  float *mean1, *rstd1, *h1;       /* LayerNorm 1 statistics (N), output (N,D) */
  float *q, *k, *v, *Pq, *Pk, *Pv; /* (N,D); P: pre-alpha outputs when alpha trains */
  float *zq, *zk, *zv;             /* (N,r) x V^T of low-rank parts */
  float *att, *ctx, *Po, *zo;      /* (B,H,T,T) probabilities, (N,D) context */
  float *xm;                       /* (N,D) residual stream after attention */
  float *mean2, *rstd2, *h2;       /* LayerNorm 2 */
  float *a, *Pf1, *zf1, *ga;       /* (N,I) fc1 output before and after the activation */
  float *Pf2, *zf2;                /* fc2 */
} tacts_t;

typedef struct {
  rcc_clip_tower_config_t cfg;
  bool vision;
  tblock_t *blocks;
  tln_t ln_pre; /* vision only */
  tln_t ln_post;
  tlin_t *proj;
  const float *patch_w, *cls, *pos, *tok; /* frozen embeddings (tok: text only) */
  /* last forward */
  int B, T;
  bool ready;       /* a forward ran since the arena was laid out */
  int *rows;        /* (B) pooled row of each sequence, host */
  int *rows_be;     /* rows in backend memory (== rows on the cpu backend) */
  int B_cap;        /* sequences rows and rows_be hold */
  void *input;      /* pixels or token ids in backend memory (NULL on the cpu backend) */
  size_t input_cap; /* bytes of input */
  float *arena;
  size_t arena_cap, kept; /* floats allocated / laid out by the last forward */
  tacts_t *acts;
  float *x_out;                  /* (N,D) last block's output */
  float *emb, *mean0, *rstd0;    /* vision: embeddings before pre_layrnorm */
  float *pooled, *meanp, *rstdp; /* (B,D) pooled rows, final LayerNorm statistics */
  float *pooled_n, *Pp, *zp;     /* (B,D) after the final LayerNorm; projection's P, z */
} ttower_t;

/* A trainable tensor between registration and the allocation of params. */
typedef struct {
  rcc_clip_param_group_t pub;
  const float *src;    /* initial value; NULL = all ones (alpha of a layer without one) */
  const float **value; /* where the layer reads it */
  float **grad;        /* where the layer writes its gradient */
  float **mut;         /* optional writable alias of *value */
} group_t;

struct rcc_clip_train {
  rcc_backend_t be;
  bool on_host; /* the cpu backend: backend memory is host memory */
  rcc_clip_config_t cfg;
  rcc_safetensors_t *st;
  float logit_scale;
  tlin_t *lin;
  int n_lin;
  ttower_t vision, text;
  group_t *groups;
  int n_groups, cap_groups;
  int64_t n_params;
  float *params, *grads;
  void **owned; /* owned copies (backend memory) of frozen tensors */
  int n_owned, cap_owned;
  float *scratch;
  size_t scratch_cap;
};

/* ---------------------------------------------------------------- creation */

/* The host (mapped) data of a float tensor of the file. */
static rcc_status_t file_host(rcc_clip_train_t *t, const char *name, int64_t numel,
                              const float **out) {
  const rcc_tensor_t *x = rcc_st_find(t->st, name);
  if (!x) return rcc_fail(RCC_ERR_FORMAT, "clip_train.c: model.safetensors: no tensor '%s'", name);
  if (x->dtype != RCC_DTYPE_F32 || x->numel != numel)
    return rcc_fail(RCC_ERR_FORMAT,
                    "clip_train.c: model.safetensors: '%s' is %s with %lld values, expected a "
                    "float tensor of %lld",
                    name, rcc_dtype_name(x->dtype), (long long)x->numel, (long long)numel);
  *out = x->data;
  return RCC_OK;
}

static rcc_status_t own_copy(rcc_clip_train_t *t, const void *src, size_t bytes, void **out);

/* A frozen tensor of the file where the backend reads it. */
static rcc_status_t file_tensor(rcc_clip_train_t *t, const char *name, int64_t numel,
                                const float **out) {
  const float *host = NULL;
  RCC_TRY(file_host(t, name, numel, &host));
  if (t->on_host) {
    *out = host;
    return RCC_OK;
  }
  return own_copy(t, host, (size_t)numel * sizeof(float), (void **)out);
}

/* An owned copy of `bytes` of host src in backend memory (freed with the model). */
static rcc_status_t own_copy(rcc_clip_train_t *t, const void *src, size_t bytes, void **out) {
  if (t->n_owned == t->cap_owned) {
    int cap = t->cap_owned ? 2 * t->cap_owned : 64;
    void **grown = realloc(t->owned, (size_t)cap * sizeof *grown);
    if (!grown) return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
    t->owned = grown;
    t->cap_owned = cap;
  }
  void *p = rcc_backend_alloc(t->be, bytes ? bytes : 1);
  if (!p) return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: copy of %zu bytes", bytes);
  t->owned[t->n_owned++] = p;
  RCC_TRY(rcc_backend_upload(t->be, p, src, bytes));
  *out = p;
  return RCC_OK;
}

static rcc_status_t add_group(rcc_clip_train_t *t, const char *prefix, const char *suffix,
                              rcc_param_kind_t kind, int layer, int64_t count, const float *src,
                              const float **value, float **grad, float **mut) {
  if (t->n_groups == t->cap_groups) {
    int cap = t->cap_groups ? 2 * t->cap_groups : 128;
    group_t *grown = realloc(t->groups, (size_t)cap * sizeof *grown);
    if (!grown) return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
    t->groups = grown;
    t->cap_groups = cap;
  }
  group_t *g = &t->groups[t->n_groups++];
  memset(g, 0, sizeof *g);
  snprintf(g->pub.name, sizeof g->pub.name, "%s.%s", prefix, suffix);
  g->pub.kind = kind;
  g->pub.layer = layer;
  g->pub.offset = t->n_params;
  g->pub.count = count;
  g->src = src;
  g->value = value;
  g->grad = grad;
  g->mut = mut;
  t->n_params += count;
  return RCC_OK;
}

static rcc_status_t init_layernorm(rcc_clip_train_t *t, tln_t *ln, const char *prefix, int D,
                                   bool train) {
  char name[200];
  /* a trainable tensor starts from the file's host data and lives in params */
  rcc_status_t (*get)(rcc_clip_train_t *, const char *, int64_t, const float **) =
      train ? file_host : file_tensor;
  snprintf(name, sizeof name, "%s.weight", prefix);
  RCC_TRY(get(t, name, D, &ln->w));
  snprintf(name, sizeof name, "%s.bias", prefix);
  RCC_TRY(get(t, name, D, &ln->b));
  if (!train) return RCC_OK;
  RCC_TRY(add_group(t, prefix, "weight", RCC_PARAM_LN_WEIGHT, -1, D, ln->w, &ln->w, &ln->gw, NULL));
  return add_group(t, prefix, "bias", RCC_PARAM_LN_BIAS, -1, D, ln->b, &ln->b, &ln->gb, NULL);
}

/* Linear layer i named `name` (m,n): dense from the file when f is NULL, else f's factors. */
static rcc_status_t init_linear(rcc_clip_train_t *t, int i, const char *name, int m, int n,
                                bool has_bias, const rcc_factored_t *f, rcc_clip_trainable_t w) {
  tlin_t *L = &t->lin[i];
  char key[200];
  snprintf(L->name, sizeof L->name, "%s", name);
  L->op.m = m;
  L->op.n = n;
  if (has_bias) {
    snprintf(key, sizeof key, "%s.bias", name);
    RCC_TRY((w.bias ? file_host : file_tensor)(t, key, m, &L->op.bias));
    if (w.bias)
      RCC_TRY(add_group(t, name, "bias", RCC_PARAM_BIAS, i, m, L->op.bias, &L->op.bias, &L->g.dbias,
                        NULL));
  }
  if (!f) {
    snprintf(key, sizeof key, "%s.weight", name);
    return file_tensor(t, key, (int64_t)m * n, &L->op.W);
  }
  if (f->m != m || f->n != n || f->rank < 0 || f->rank > (m < n ? m : n) ||
      (!f->S && f->rank == 0) || (f->rank > 0 && (!f->U || !f->V)))
    return rcc_fail(RCC_ERR_ARG,
                    "clip_train.c: layer %d (%s, %d x %d): compressed form %d x %d, rank %d, "
                    "%s sparse part is not a valid factorization of it",
                    i, name, m, n, f->m, f->n, f->rank, f->S ? "with" : "without");
  L->compressed = true;
  const size_t mn = (size_t)m * n;
  if (f->S && w.sparse_values) {
    RCC_TRY(add_group(t, name, "weight", RCC_PARAM_S, i, (int64_t)mn, f->S, &L->op.W, &L->g.dW,
                      f->mask ? &L->S_train : NULL));
    if (f->mask) RCC_TRY(own_copy(t, f->mask, mn, (void **)&L->op.mask));
  } else if (f->S) {
    RCC_TRY(own_copy(t, f->S, mn * sizeof(float), (void **)&L->op.W));
  }
  L->op.rank = f->rank;
  if (f->rank > 0 && w.lowrank) {
    RCC_TRY(add_group(t, name, "U", RCC_PARAM_U, i, (int64_t)m * f->rank, f->U, &L->op.U, &L->g.dU,
                      NULL));
    RCC_TRY(add_group(t, name, "V", RCC_PARAM_V, i, (int64_t)f->rank * n, f->V, &L->op.V, &L->g.dV,
                      NULL));
  } else if (f->rank > 0) {
    RCC_TRY(own_copy(t, f->U, (size_t)m * f->rank * sizeof(float), (void **)&L->op.U));
    RCC_TRY(own_copy(t, f->V, (size_t)f->rank * n * sizeof(float), (void **)&L->op.V));
  }
  if (w.alpha)
    return add_group(t, name, "alpha", RCC_PARAM_ALPHA, i, m, f->alpha, &L->op.alpha, &L->g.dalpha,
                     NULL);
  if (f->alpha) RCC_TRY(own_copy(t, f->alpha, (size_t)m * sizeof(float), (void **)&L->op.alpha));
  return RCC_OK;
}

/* Binds tower `tw` and its linear layers from index *next on, in rcc_clip_linear order. */
static rcc_status_t init_tower(rcc_clip_train_t *t, ttower_t *tw, const char *prefix,
                               rcc_factored_t *const *layers, int *next, rcc_clip_trainable_t w) {
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size, I = c->intermediate_size;
  char p[160], name[200];
  tw->blocks = calloc((size_t)c->num_layers + 1, sizeof *tw->blocks);
  tw->acts = calloc((size_t)c->num_layers + 1, sizeof *tw->acts);
  if (!tw->blocks || !tw->acts) return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
  if (tw->vision) {
    const int g = c->image_size / c->patch_size,
              K = c->num_channels * c->patch_size * c->patch_size;
    RCC_TRY(file_tensor(t, "vision_model.embeddings.class_embedding", D, &tw->cls));
    RCC_TRY(file_tensor(t, "vision_model.embeddings.position_embedding.weight",
                        (int64_t)(g * g + 1) * D, &tw->pos));
    RCC_TRY(file_tensor(t, "vision_model.embeddings.patch_embedding.weight", (int64_t)D * K,
                        &tw->patch_w));
    RCC_TRY(init_layernorm(t, &tw->ln_pre, "vision_model.pre_layrnorm", D, w.layernorm));
  } else {
    RCC_TRY(file_tensor(t, "text_model.embeddings.token_embedding.weight",
                        (int64_t)c->vocab_size * D, &tw->tok));
    RCC_TRY(file_tensor(t, "text_model.embeddings.position_embedding.weight",
                        (int64_t)c->max_position_embeddings * D, &tw->pos));
  }
  for (int l = 0; l < c->num_layers; l++) {
    tblock_t *bl = &tw->blocks[l];
    snprintf(p, sizeof p, "%s.encoder.layers.%d", prefix, l);
    /* HF parameter order: self_attn (k, v, q, out), layer_norm1, mlp (fc1, fc2), layer_norm2 */
    static const char *const subs[6] = {"self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.q_proj", "self_attn.out_proj",
                                        "mlp.fc1",          "mlp.fc2"};
    tlin_t **slots[6] = {&bl->k, &bl->v, &bl->q, &bl->o, &bl->fc1, &bl->fc2};
    for (int j = 0; j < 6; j++) {
      const int m = j == 4 ? I : D, n = j == 5 ? I : D, i = (*next)++;
      snprintf(name, sizeof name, "%s.%s", p, subs[j]);
      RCC_TRY(init_linear(t, i, name, m, n, true, layers[i], w));
      *slots[j] = &t->lin[i];
      if (j == 3) {
        snprintf(name, sizeof name, "%s.layer_norm1", p);
        RCC_TRY(init_layernorm(t, &bl->ln1, name, D, w.layernorm));
      }
    }
    snprintf(name, sizeof name, "%s.layer_norm2", p);
    RCC_TRY(init_layernorm(t, &bl->ln2, name, D, w.layernorm));
  }
  snprintf(name, sizeof name, "%s.%s", prefix, tw->vision ? "post_layernorm" : "final_layer_norm");
  RCC_TRY(init_layernorm(t, &tw->ln_post, name, D, w.layernorm));
  const int i = (*next)++;
  RCC_TRY(init_linear(t, i, tw->vision ? "visual_projection" : "text_projection",
                      t->cfg.projection_dim, D, false, layers[i], w));
  tw->proj = &t->lin[i];
  return RCC_OK;
}

/* Allocates params and grads and points every trainable tensor at its slice. */
static rcc_status_t place_params(rcc_clip_train_t *t) {
  const size_t bytes = (size_t)(t->n_params ? t->n_params : 1) * sizeof(float);
  t->params = rcc_backend_alloc(t->be, bytes);
  t->grads = rcc_backend_alloc(t->be, bytes);
  if (!t->params || !t->grads) return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: parameters");
  RCC_TRY(rcc_train_fill(t->be, t->grads, 0.0f, t->n_params));
  for (int i = 0; i < t->n_groups; i++) {
    group_t *g = &t->groups[i];
    float *p = t->params + g->pub.offset;
    if (g->src)
      RCC_TRY(rcc_backend_upload(t->be, p, g->src, (size_t)g->pub.count * sizeof *p));
    else
      RCC_TRY(rcc_train_fill(t->be, p, 1.0f, g->pub.count));
    *g->value = p;
    *g->grad = t->grads + g->pub.offset;
    if (g->mut) *g->mut = p;
  }
  return RCC_OK;
}

rcc_status_t rcc_clip_train_create(const char *model_dir, rcc_backend_t be,
                                   rcc_factored_t *const *layers, int num_layers,
                                   rcc_clip_trainable_t which, rcc_clip_train_t **out) {
  if (!be) return rcc_fail(RCC_ERR_ARG, "clip_train.c: NULL backend");
  rcc_clip_train_t *t = calloc(1, sizeof *t);
  if (!t) return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
  t->be = be;
  t->on_host = !rcc_backend_device_path(be);
  char path[4096];
  rcc_status_t st;
  snprintf(path, sizeof path, "%s/config.json", model_dir);
  if ((st = rcc_clip_config_load(path, &t->cfg)) != RCC_OK) goto fail;
  snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
  if ((st = rcc_st_open(path, &t->st)) != RCC_OK) goto fail;
  t->vision.cfg = t->cfg.vision;
  t->vision.vision = true;
  t->text.cfg = t->cfg.text;
  t->n_lin = 6 * (t->cfg.vision.num_layers + t->cfg.text.num_layers) + 2;
  if (num_layers != t->n_lin) {
    st = rcc_fail(RCC_ERR_ARG, "clip_train.c: %s has %d linear layers, %d compressed forms given",
                  model_dir, t->n_lin, num_layers);
    goto fail;
  }
  const float *ls = NULL;
  if ((st = file_host(t, "logit_scale", 1, &ls)) != RCC_OK) goto fail;
  t->logit_scale = expf(*ls);
  if (!(t->lin = calloc((size_t)t->n_lin, sizeof *t->lin))) {
    st = rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
    goto fail;
  }
  int next = 0;
  if ((st = init_tower(t, &t->vision, "vision_model", layers, &next, which)) != RCC_OK ||
      (st = init_tower(t, &t->text, "text_model", layers, &next, which)) != RCC_OK ||
      (st = place_params(t)) != RCC_OK) {
    rcc_fail_context(st, "%s", model_dir);
    goto fail;
  }
  *out = t;
  return RCC_OK;
fail:
  rcc_clip_train_free(t);
  return st;
}

void rcc_clip_train_free(rcc_clip_train_t *t) {
  if (!t) return;
  ttower_t *towers[2] = {&t->vision, &t->text};
  for (int i = 0; i < 2; i++) {
    free(towers[i]->blocks);
    free(towers[i]->acts);
    if (towers[i]->rows_be != towers[i]->rows) rcc_backend_release(t->be, towers[i]->rows_be);
    free(towers[i]->rows);
    rcc_backend_release(t->be, towers[i]->input);
    rcc_backend_release(t->be, towers[i]->arena);
  }
  for (int i = 0; i < t->n_owned; i++)
    rcc_backend_release(t->be, t->owned[i]);
  free(t->owned);
  free(t->groups);
  free(t->lin);
  rcc_backend_release(t->be, t->params);
  rcc_backend_release(t->be, t->grads);
  rcc_backend_release(t->be, t->scratch);
  rcc_st_close(t->st);
  free(t);
}

const rcc_clip_config_t *rcc_clip_train_config(const rcc_clip_train_t *t) { return &t->cfg; }
int64_t rcc_clip_train_num_params(const rcc_clip_train_t *t) { return t->n_params; }
float *rcc_clip_train_params(rcc_clip_train_t *t) { return t->params; }
float *rcc_clip_train_grads(rcc_clip_train_t *t) { return t->grads; }
rcc_status_t rcc_clip_train_zero_grads(rcc_clip_train_t *t) {
  return rcc_train_fill(t->be, t->grads, 0.0f, t->n_params);
}
int rcc_clip_train_num_groups(const rcc_clip_train_t *t) { return t->n_groups; }
const rcc_clip_param_group_t *rcc_clip_train_group(const rcc_clip_train_t *t, int g) {
  return (g >= 0 && g < t->n_groups) ? &t->groups[g].pub : NULL;
}
float rcc_clip_train_logit_scale(const rcc_clip_train_t *t) { return t->logit_scale; }
size_t rcc_clip_train_activation_bytes(const rcc_clip_train_t *t) {
  return (t->vision.ready ? t->vision.kept : 0) * sizeof(float) +
         (t->text.ready ? t->text.kept : 0) * sizeof(float);
}

/* ---------------------------------------------------------------- activations */

/* Bump allocation of the arena: with base NULL only counts. 16-float (64-byte) alignment. */
typedef struct {
  float *base;
  size_t off;
} cursor_t;

static float *take(cursor_t *c, size_t n) {
  float *p = c->base ? c->base + c->off : NULL;
  c->off += (n + 15) / 16 * 16;
  return p;
}

/* P (N,m) when alpha trains, z (N,r) when the layer is low-rank, else NULL. */
static void take_linear(cursor_t *c, const tlin_t *L, size_t N, float **P, float **z) {
  *P = L->g.dalpha ? take(c, N * L->op.m) : NULL;
  *z = L->op.rank > 0 ? take(c, N * L->op.rank) : NULL;
}

static void layout(ttower_t *tw, cursor_t *c, int B, int T) {
  const rcc_clip_tower_config_t *cf = &tw->cfg;
  const size_t N = (size_t)B * T, D = cf->hidden_size, I = cf->intermediate_size;
  for (int l = 0; l < cf->num_layers; l++) {
    tacts_t *a = &tw->acts[l];
    const tblock_t *bl = &tw->blocks[l];
    a->x = take(c, N * D);
    a->mean1 = take(c, N);
    a->rstd1 = take(c, N);
    a->h1 = take(c, N * D);
    a->q = take(c, N * D);
    a->k = take(c, N * D);
    a->v = take(c, N * D);
    take_linear(c, bl->q, N, &a->Pq, &a->zq);
    take_linear(c, bl->k, N, &a->Pk, &a->zk);
    take_linear(c, bl->v, N, &a->Pv, &a->zv);
    a->att = take(c, (size_t)B * cf->num_heads * T * T);
    a->ctx = take(c, N * D);
    take_linear(c, bl->o, N, &a->Po, &a->zo);
    a->xm = take(c, N * D);
    a->mean2 = take(c, N);
    a->rstd2 = take(c, N);
    a->h2 = take(c, N * D);
    a->a = take(c, N * I);
    take_linear(c, bl->fc1, N, &a->Pf1, &a->zf1);
    a->ga = take(c, N * I);
    take_linear(c, bl->fc2, N, &a->Pf2, &a->zf2);
  }
  tw->x_out = take(c, N * D);
  if (tw->vision) {
    tw->emb = take(c, N * D);
    tw->mean0 = take(c, N);
    tw->rstd0 = take(c, N);
  }
  tw->pooled = take(c, (size_t)B * D);
  tw->meanp = take(c, (size_t)B);
  tw->rstdp = take(c, (size_t)B);
  tw->pooled_n = take(c, (size_t)B * D);
  take_linear(c, tw->proj, (size_t)B, &tw->Pp, &tw->zp);
}

static rcc_status_t reserve_acts(rcc_clip_train_t *t, ttower_t *tw, int B, int T) {
  cursor_t c = {NULL, 0};
  layout(tw, &c, B, T);
  if (c.off > tw->arena_cap) {
    rcc_backend_release(t->be, tw->arena);
    tw->arena_cap = 0;
    if (!(tw->arena = rcc_backend_alloc(t->be, c.off * sizeof(float))))
      return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: activations of %d x %d tokens", B, T);
    tw->arena_cap = c.off;
  }
  if (B > tw->B_cap) {
    int *rows = realloc(tw->rows, (size_t)B * sizeof *rows);
    if (!rows) return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: out of memory");
    tw->rows = rows;
    if (t->on_host) {
      tw->rows_be = rows;
    } else {
      rcc_backend_release(t->be, tw->rows_be);
      if (!(tw->rows_be = rcc_backend_alloc(t->be, (size_t)B * sizeof *rows)))
        return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: pooled rows of %d sequences", B);
    }
    tw->B_cap = B;
  }
  tw->kept = c.off;
  cursor_t place = {tw->arena, 0};
  layout(tw, &place, B, T);
  tw->B = B;
  tw->T = T;
  return RCC_OK;
}

static rcc_status_t reserve_scratch(rcc_clip_train_t *t, size_t floats) {
  if (floats <= t->scratch_cap) return RCC_OK;
  rcc_backend_release(t->be, t->scratch);
  t->scratch_cap = 0;
  if (!(t->scratch = rcc_backend_alloc(t->be, floats * sizeof(float))))
    return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: backward scratch");
  t->scratch_cap = floats;
  return RCC_OK;
}

/* Host input of `bytes` where the backend reads it: in place on the cpu backend, else
 * uploaded into the tower's input buffer. */
static rcc_status_t stage_input(rcc_clip_train_t *t, ttower_t *tw, const void *host, size_t bytes,
                                const void **out) {
  if (t->on_host) {
    *out = host;
    return RCC_OK;
  }
  if (bytes > tw->input_cap) {
    rcc_backend_release(t->be, tw->input);
    tw->input_cap = 0;
    if (!(tw->input = rcc_backend_alloc(t->be, bytes)))
      return rcc_fail_context(RCC_ERR_NOMEM, "clip_train.c: input of %zu bytes", bytes);
    tw->input_cap = bytes;
  }
  RCC_TRY(rcc_backend_upload(t->be, tw->input, host, bytes));
  *out = tw->input;
  return RCC_OK;
}

/* The host pooled rows where the backend reads them. */
static rcc_status_t stage_rows(rcc_clip_train_t *t, ttower_t *tw) {
  if (t->on_host) return RCC_OK;
  return rcc_backend_upload(t->be, tw->rows_be, tw->rows, (size_t)tw->B * sizeof *tw->rows);
}

/* ---------------------------------------------------------------- forward */

/* Pruned entries of a trainable S are forced back to 0, whatever the optimizer wrote. */
static rcc_status_t apply_mask(rcc_backend_t be, tlin_t *L) {
  if (!L->S_train) return RCC_OK;
  return rcc_backend_apply_mask(be, L->S_train, L->op.mask, (int64_t)L->op.m * L->op.n);
}

static rcc_status_t tower_forward(rcc_clip_train_t *t, ttower_t *tw, bool causal, float *emb) {
  rcc_backend_t be = t->be;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int B = tw->B, T = tw->T, N = B * T, D = c->hidden_size, I = c->intermediate_size;
  const float eps = c->layer_norm_eps;
  for (int l = 0; l < c->num_layers; l++) {
    const tblock_t *bl = &tw->blocks[l];
    tacts_t *a = &tw->acts[l];
    float *out = l + 1 < c->num_layers ? tw->acts[l + 1].x : tw->x_out;
    tlin_t *ls[6] = {bl->k, bl->v, bl->q, bl->o, bl->fc1, bl->fc2};
    for (int j = 0; j < 6; j++)
      RCC_TRY(apply_mask(be, ls[j]));
    RCC_TRY(rcc_grad_layernorm_forward(be, a->h1, a->mean1, a->rstd1, a->x, bl->ln1.w, bl->ln1.b, N,
                                       D, eps));
    RCC_TRY(rcc_grad_linear_forward(be, a->q, a->Pq, a->zq, a->h1, N, &bl->q->op));
    RCC_TRY(rcc_grad_linear_forward(be, a->k, a->Pk, a->zk, a->h1, N, &bl->k->op));
    RCC_TRY(rcc_grad_linear_forward(be, a->v, a->Pv, a->zv, a->h1, N, &bl->v->op));
    RCC_TRY(rcc_grad_attention_forward(be, a->ctx, a->att, a->q, a->k, a->v, B, T, D, c->num_heads,
                                       causal, NULL));
    RCC_TRY(rcc_grad_linear_forward(be, a->xm, a->Po, a->zo, a->ctx, N, &bl->o->op));
    RCC_TRY(rcc_grad_residual_forward(be, a->xm, a->xm, a->x, (int64_t)N * D));
    RCC_TRY(rcc_grad_layernorm_forward(be, a->h2, a->mean2, a->rstd2, a->xm, bl->ln2.w, bl->ln2.b,
                                       N, D, eps));
    RCC_TRY(rcc_grad_linear_forward(be, a->a, a->Pf1, a->zf1, a->h2, N, &bl->fc1->op));
    RCC_TRY(rcc_grad_activation_forward(be, c->act, a->ga, a->a, (int64_t)N * I));
    RCC_TRY(rcc_grad_linear_forward(be, out, a->Pf2, a->zf2, a->ga, N, &bl->fc2->op));
    RCC_TRY(rcc_grad_residual_forward(be, out, out, a->xm, (int64_t)N * D));
  }
  RCC_TRY(rcc_grad_pool_forward(be, tw->pooled, tw->x_out, tw->rows_be, B, T, D));
  RCC_TRY(rcc_grad_layernorm_forward(be, tw->pooled_n, tw->meanp, tw->rstdp, tw->pooled,
                                     tw->ln_post.w, tw->ln_post.b, B, D, eps));
  RCC_TRY(apply_mask(be, tw->proj));
  RCC_TRY(rcc_grad_linear_forward(be, emb, tw->Pp, tw->zp, tw->pooled_n, B, &tw->proj->op));
  tw->ready = true;
  return RCC_OK;
}

rcc_status_t rcc_clip_train_image_forward(rcc_clip_train_t *t, const float *pixels, int B,
                                          float *emb) {
  ttower_t *tw = &t->vision;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int p = c->patch_size, g = c->image_size / p, T = g * g + 1, D = c->hidden_size;
  const int K = c->num_channels * p * p;
  if (B <= 0) return rcc_fail(RCC_ERR_ARG, "clip_train.c: image batch must be > 0 (got %d)", B);
  tw->ready = false;
  RCC_TRY(reserve_acts(t, tw, B, T));
  /* the im2col matrix only feeds the frozen patch weight: scratch, not kept */
  RCC_TRY(reserve_scratch(t, (size_t)B * (T - 1) * K));
  const void *px = NULL;
  RCC_TRY(stage_input(t, tw, pixels,
                      (size_t)B * c->num_channels * c->image_size * c->image_size * sizeof *pixels,
                      &px));
  RCC_TRY(rcc_grad_patch_embed_forward(t->be, tw->emb, t->scratch, px, tw->patch_w, tw->cls,
                                       tw->pos, B, c->num_channels, c->image_size, p, D));
  RCC_TRY(rcc_grad_layernorm_forward(t->be, tw->acts[0].x, tw->mean0, tw->rstd0, tw->emb,
                                     tw->ln_pre.w, tw->ln_pre.b, B * T, D, c->layer_norm_eps));
  for (int b = 0; b < B; b++)
    tw->rows[b] = 0; /* the class token */
  RCC_TRY(stage_rows(t, tw));
  return tower_forward(t, tw, false, emb);
}

/* HF's pooling rule (as model/clip.c): with the legacy eos_token_id 2, the position of the
 * largest id (the first one on ties); otherwise the first eos_token_id (0 if none). */
static int pooled_position(const int32_t *ids, int T, int eos) {
  int best = 0;
  for (int i = 0; i < T; i++) {
    if (eos == 2) {
      if (ids[i] > ids[best]) best = i;
    } else if (ids[i] == eos) {
      return i;
    }
  }
  return eos == 2 ? best : 0;
}

rcc_status_t rcc_clip_train_text_forward(rcc_clip_train_t *t, const int32_t *ids, int B, int T,
                                         float *emb) {
  ttower_t *tw = &t->text;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  if (B <= 0 || T <= 0 || T > c->max_position_embeddings)
    return rcc_fail(RCC_ERR_ARG,
                    "clip_train.c: text batch %d x %d tokens: need B > 0 and 0 < T <= %d", B, T,
                    c->max_position_embeddings);
  for (int64_t i = 0; i < (int64_t)B * T; i++)
    if (ids[i] < 0 || ids[i] >= c->vocab_size)
      return rcc_fail(RCC_ERR_ARG,
                      "clip_train.c: token id %d at sequence %lld position %lld is outside the "
                      "vocabulary (%d)",
                      ids[i], (long long)(i / T), (long long)(i % T), c->vocab_size);
  tw->ready = false;
  RCC_TRY(reserve_acts(t, tw, B, T));
  const void *ids_be = NULL;
  RCC_TRY(stage_input(t, tw, ids, (size_t)B * T * sizeof *ids, &ids_be));
  RCC_TRY(rcc_grad_token_embed_forward(t->be, tw->acts[0].x, ids_be, tw->tok, tw->pos, B, T,
                                       c->hidden_size));
  for (int b = 0; b < B; b++)
    tw->rows[b] = pooled_position(ids + (size_t)b * T, T, c->eos_token_id);
  RCC_TRY(stage_rows(t, tw));
  return tower_forward(t, tw, true, emb);
}

/* ---------------------------------------------------------------- backward */

static int64_t max_linear_scratch(const rcc_clip_train_t *t, int N) {
  int64_t best = 0;
  for (int i = 0; i < t->n_lin; i++) {
    int64_t s = rcc_grad_linear_scratch(&t->lin[i].op, N);
    if (s > best) best = s;
  }
  return best;
}

/* The backward of one block: dres (N,D) holds d loss / d block output on entry and
 * d loss / d block input on exit (only when need_dinput; otherwise the parameter gradients
 * alone are accumulated and dres is left partial). */
static rcc_status_t block_backward(rcc_clip_train_t *t, const ttower_t *tw, int l, float *dres,
                                   bool need_dinput) {
  rcc_backend_t be = t->be;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int B = tw->B, T = tw->T, N = B * T, D = c->hidden_size, I = c->intermediate_size;
  const int H = c->num_heads;
  const size_t ND = (size_t)N * D, NI = (size_t)N * I;
  const tblock_t *bl = &tw->blocks[l];
  const tacts_t *a = &tw->acts[l];
  /* scratch after dres: dtmp, dq, dk, dv (N,D), datt (B,H,T,T), dga, da (N,I), linear's */
  float *dtmp = dres + ND, *dq = dtmp + ND, *dk = dq + ND, *dv = dk + ND, *datt = dv + ND;
  float *dga = datt + (size_t)B * H * T * T, *da = dga + NI, *lin_scratch = da + NI;

  /* MLP: out = xm + fc2(act(fc1(ln2(xm)))) */
  RCC_TRY(rcc_train_fill(be, dga, 0.0f, (int64_t)NI));
  RCC_TRY(rcc_grad_linear_backward(be, dga, &bl->fc2->g, dres, a->ga, a->Pf2, a->zf2, N,
                                   &bl->fc2->op, lin_scratch));
  RCC_TRY(rcc_train_fill(be, da, 0.0f, (int64_t)NI));
  RCC_TRY(rcc_grad_activation_backward(be, c->act, da, dga, a->a, (int64_t)NI));
  RCC_TRY(rcc_train_fill(be, dtmp, 0.0f, (int64_t)ND));
  RCC_TRY(rcc_grad_linear_backward(be, dtmp, &bl->fc1->g, da, a->h2, a->Pf1, a->zf1, N,
                                   &bl->fc1->op, lin_scratch));
  /* the residual passes dres through unchanged; the LayerNorm adds its part: dres = d xm */
  RCC_TRY(rcc_grad_layernorm_backward(be, dres, bl->ln2.gw, bl->ln2.gb, dtmp, a->xm, bl->ln2.w,
                                      a->mean2, a->rstd2, N, D));
  /* attention: xm = x + out_proj(attn(q, k, v of ln1(x))) */
  RCC_TRY(rcc_train_fill(be, dtmp, 0.0f, (int64_t)ND));
  RCC_TRY(rcc_grad_linear_backward(be, dtmp, &bl->o->g, dres, a->ctx, a->Po, a->zo, N, &bl->o->op,
                                   lin_scratch));
  RCC_TRY(rcc_train_fill(be, dq, 0.0f, 3 * (int64_t)ND));
  RCC_TRY(rcc_grad_attention_backward(be, dq, dk, dv, datt, dtmp, a->att, a->q, a->k, a->v, B, T, D,
                                      H));
  /* dh1 is needed for the input's gradient or LayerNorm 1's parameters; the text tower's
   * first block needs neither when its LayerNorms are frozen (embeddings never train) */
  const bool need_dh1 = need_dinput || bl->ln1.gw;
  float *dh1 = need_dh1 ? dtmp : NULL;
  if (dh1) RCC_TRY(rcc_train_fill(be, dh1, 0.0f, (int64_t)ND));
  RCC_TRY(rcc_grad_linear_backward(be, dh1, &bl->q->g, dq, a->h1, a->Pq, a->zq, N, &bl->q->op,
                                   lin_scratch));
  RCC_TRY(rcc_grad_linear_backward(be, dh1, &bl->k->g, dk, a->h1, a->Pk, a->zk, N, &bl->k->op,
                                   lin_scratch));
  RCC_TRY(rcc_grad_linear_backward(be, dh1, &bl->v->g, dv, a->h1, a->Pv, a->zv, N, &bl->v->op,
                                   lin_scratch));
  if (dh1)
    RCC_TRY(rcc_grad_layernorm_backward(be, need_dinput ? dres : NULL, bl->ln1.gw, bl->ln1.gb, dh1,
                                        a->x, bl->ln1.w, a->mean1, a->rstd1, N, D));
  return RCC_OK;
}

/* Backward from d_emb (B,P) down to the first block (vision: and pre_layrnorm). */
static rcc_status_t tower_backward(rcc_clip_train_t *t, ttower_t *tw, const float *d_emb) {
  if (!tw->ready)
    return rcc_fail(RCC_ERR_ARG, "clip_train.c: %s backward without a forward before it",
                    tw->vision ? "image" : "text");
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int B = tw->B, T = tw->T, N = B * T, D = c->hidden_size, I = c->intermediate_size;
  const size_t ND = (size_t)N * D;
  RCC_TRY(reserve_scratch(t, 5 * ND + (size_t)B * c->num_heads * T * T + 2 * (size_t)N * I +
                                 (size_t)max_linear_scratch(t, N)));
  float *dres = t->scratch, *dpn = dres + ND, *dpool = dpn + (size_t)B * D;
  float *lin_scratch = dpool + (size_t)B * D;
  /* head: emb = proj(LN(pool(x_out))) */
  RCC_TRY(rcc_train_fill(t->be, dpn, 0.0f, 2 * (int64_t)B * D));
  RCC_TRY(rcc_grad_linear_backward(t->be, dpn, &tw->proj->g, d_emb, tw->pooled_n, tw->Pp, tw->zp, B,
                                   &tw->proj->op, lin_scratch));
  RCC_TRY(rcc_grad_layernorm_backward(t->be, dpool, tw->ln_post.gw, tw->ln_post.gb, dpn, tw->pooled,
                                      tw->ln_post.w, tw->meanp, tw->rstdp, B, D));
  RCC_TRY(rcc_train_fill(t->be, dres, 0.0f, (int64_t)ND));
  RCC_TRY(rcc_grad_pool_backward(t->be, dres, dpool, tw->rows_be, B, T, D));
  for (int l = c->num_layers - 1; l >= 0; l--)
    RCC_TRY(block_backward(t, tw, l, dres, l > 0 || (tw->vision && tw->ln_pre.gw)));
  /* vision: x0 = pre_layrnorm(embeddings); the frozen embeddings need no gradient */
  if (tw->vision && tw->ln_pre.gw)
    RCC_TRY(rcc_grad_layernorm_backward(t->be, NULL, tw->ln_pre.gw, tw->ln_pre.gb, dres, tw->emb,
                                        tw->ln_pre.w, tw->mean0, tw->rstd0, N, D));
  return RCC_OK;
}

rcc_status_t rcc_clip_train_image_backward(rcc_clip_train_t *t, const float *d_emb) {
  return tower_backward(t, &t->vision, d_emb);
}

rcc_status_t rcc_clip_train_text_backward(rcc_clip_train_t *t, const float *d_emb) {
  return tower_backward(t, &t->text, d_emb);
}

/* ---------------------------------------------------------------- export */

rcc_status_t rcc_clip_train_export_layer(const rcc_clip_train_t *t, int i, rcc_factored_t *f) {
  if (i < 0 || i >= t->n_lin)
    return rcc_fail(RCC_ERR_ARG, "clip_train.c: export: no linear layer %d", i);
  const tlin_t *L = &t->lin[i];
  const rcc_grad_linear_t *op = &L->op;
  if (!L->compressed)
    return rcc_fail(RCC_ERR_ARG,
                    "clip_train.c: export: layer %d (%s) was created dense; only its bias "
                    "trains (rcc_clip_train_tensor)",
                    i, L->name);
  if (f->m != op->m || f->n != op->n || f->rank != op->rank || !f->S != !op->W)
    return rcc_fail(RCC_ERR_ARG,
                    "clip_train.c: export: layer %d (%s) does not have the form of the "
                    "destination (%d x %d, rank %d)",
                    i, L->name, f->m, f->n, f->rank);
  if (f->S) RCC_TRY(rcc_backend_download(t->be, f->S, op->W, (size_t)op->m * op->n * sizeof *f->S));
  if (op->rank > 0) {
    RCC_TRY(rcc_backend_download(t->be, f->U, op->U, (size_t)op->m * op->rank * sizeof *f->U));
    RCC_TRY(rcc_backend_download(t->be, f->V, op->V, (size_t)op->rank * op->n * sizeof *f->V));
  }
  if (op->alpha) {
    if (!f->alpha && !(f->alpha = malloc((size_t)op->m * sizeof *f->alpha)))
      return rcc_fail(RCC_ERR_NOMEM, "clip_train.c: export: out of memory");
    RCC_TRY(rcc_backend_download(t->be, f->alpha, op->alpha, (size_t)op->m * sizeof *f->alpha));
  }
  return RCC_OK;
}

const float *rcc_clip_train_tensor(const rcc_clip_train_t *t, const char *name, int64_t *count) {
  for (int i = 0; i < t->n_groups; i++)
    if (strcmp(t->groups[i].pub.name, name) == 0) {
      if (count) *count = t->groups[i].pub.count;
      return t->params + t->groups[i].pub.offset;
    }
  if (!t->on_host) return NULL; /* frozen file tensors have no name-indexed device copy */
  const rcc_tensor_t *x = rcc_st_find(t->st, name);
  if (!x || x->dtype != RCC_DTYPE_F32) return NULL;
  if (count) *count = x->numel;
  return x->data;
}
