/* CLIPModel forward in float32, op for op as transformers' modeling_clip.py:
 *   vision: conv patch embedding (as im2col + GEMM), class token, positions, pre_layrnorm,
 *           pre-LN encoder, post_layernorm of the class token, visual_projection;
 *   text:   token + position embeddings, causal pre-LN encoder, final_layer_norm at the
 *           pooled (EOS) token, text_projection.
 * Weights live in backend memory; on the CPU backend they point straight into the
 * copy-on-write mapping of model.safetensors (no copy). Embedding tables stay on the host:
 * gathering token rows is cheap and keeps the backend interface small. */
#include "model/clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"

typedef struct {
  rcc_linear_t q, k, v, o, fc1, fc2;
  float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
} clip_layer_t;

typedef struct {
  rcc_clip_tower_config_t cfg;
  clip_layer_t *layers;
  float *ln_pre_w, *ln_pre_b;   /* vision pre_layrnorm (NULL for text) */
  float *ln_post_w, *ln_post_b; /* vision post_layernorm / text final_layer_norm */
  rcc_linear_t patch;           /* vision: conv as (D, C*p*p), no bias */
  const float *class_embedding; /* host (D) */
  const float *position;        /* host (T, D) */
  const float *token_embedding; /* host (V, D), text only */
  rcc_linear_t projection;      /* (P, D), no bias */
} clip_tower_t;

/* A bias or LayerNorm tensor, which rcc_clip_set_tensor may overwrite. */
typedef struct {
  char name[160];
  float **slot;  /* the model's pointer to it, read at every forward */
  float *loaded; /* what load bound it to: the mapping, or its upload */
  float *set;    /* model-owned backend buffer with the value set, or NULL */
  int64_t count;
} clip_vec_t;

/* Activations, grown on demand and reused across calls. */
typedef struct {
  size_t cap;
  float *x, *h, *q, *k, *v, *ctx, *tmp, *mlp, *scores, *pooled, *proj, *lowrank;
  float *host; /* staging for embeddings */
} clip_workspace_t;

struct rcc_clip_model {
  rcc_backend_t be;
  rcc_clip_config_t cfg;
  rcc_safetensors_t *st;
  clip_tower_t vision, text;
  float logit_scale; /* the raw parameter; exp() is applied on use */
  rcc_linear_t **linears;
  int n_linears;
  void **owned; /* backend buffers to release (weights uploaded to a device) */
  int n_owned, cap_owned;
  clip_workspace_t ws;
  rcc_clip_param_counts_t counts;
  int packed; /* loaded from a packed.safetensors file */
  rcc_clip_input_hook_t hook;
  void *hook_ctx;
  void **replaced;  /* per linear: backend buffer holding its replaced S, U, V (or NULL) */
  clip_vec_t *vecs; /* every bias and LayerNorm tensor, in load order */
  int n_vecs, cap_vecs;
};

/* ---------------------------------------------------------------- loading */

static rcc_status_t find_tensor(rcc_clip_model_t *m, const char *name, int ndim,
                                const int64_t *shape, rcc_tensor_t **out) {
  rcc_tensor_t *t = rcc_st_find(m->st, name);
  if (!t) return rcc_fail(RCC_ERR_FORMAT, "model.safetensors: missing tensor '%s'", name);
  if (t->dtype != RCC_DTYPE_F32)
    return rcc_fail(RCC_ERR_FORMAT, "model.safetensors: tensor '%s' is %s, expected a float type",
                    name, rcc_dtype_name(t->dtype));
  int ok = t->ndim == ndim;
  for (int i = 0; ok && i < ndim; i++)
    ok = t->shape[i] == shape[i];
  if (!ok) {
    char want[128] = "", got[128] = "";
    for (int i = 0; i < ndim; i++)
      snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "",
               (long long)shape[i]);
    for (int i = 0; i < t->ndim; i++)
      snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "",
               (long long)t->shape[i]);
    return rcc_fail(RCC_ERR_FORMAT,
                    "model.safetensors: tensor '%s' has shape [%s], config.json implies [%s]", name,
                    got, want);
  }
  *out = t;
  return RCC_OK;
}

/* Returns the tensor's data in backend memory (the mapping itself on host backends). */
static rcc_status_t bind(rcc_clip_model_t *m, const char *name, int ndim, const int64_t *shape,
                         float **out) {
  rcc_tensor_t *t = NULL;
  RCC_TRY(find_tensor(m, name, ndim, shape, &t));
  if (rcc_backend_kind(m->be) == RCC_BACKEND_CPU) {
    *out = t->data;
    return RCC_OK;
  }
  size_t bytes = (size_t)t->numel * sizeof(float);
  float *dev = rcc_backend_alloc(m->be, bytes);
  if (!dev) return rcc_fail_context(RCC_ERR_NOMEM, "uploading '%s'", name);
  if (m->n_owned == m->cap_owned) {
    int cap = m->cap_owned ? 2 * m->cap_owned : 64;
    void **grown = realloc(m->owned, (size_t)cap * sizeof *grown);
    if (!grown) {
      rcc_backend_release(m->be, dev);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory while loading '%s'", name);
    }
    m->owned = grown;
    m->cap_owned = cap;
  }
  m->owned[m->n_owned++] = dev;
  *out = dev;
  return rcc_backend_upload(m->be, dev, t->data, bytes);
}

static rcc_status_t bind_host(rcc_clip_model_t *m, const char *name, int ndim, const int64_t *shape,
                              const float **out) {
  rcc_tensor_t *t = NULL;
  RCC_TRY(find_tensor(m, name, ndim, shape, &t));
  *out = t->data;
  return RCC_OK;
}

/* Binds a bias or LayerNorm vector and records it for rcc_clip_set_tensor. */
static rcc_status_t bind_vec(rcc_clip_model_t *m, const char *prefix, const char *suffix, int64_t n,
                             float **out) {
  if (m->n_vecs == m->cap_vecs) {
    int cap = m->cap_vecs ? 2 * m->cap_vecs : 64;
    clip_vec_t *grown = realloc(m->vecs, (size_t)cap * sizeof *grown);
    if (!grown) return rcc_fail(RCC_ERR_NOMEM, "clip.c: out of memory for tensor '%s'", suffix);
    m->vecs = grown;
    m->cap_vecs = cap;
  }
  clip_vec_t *v = &m->vecs[m->n_vecs];
  *v = (clip_vec_t){.slot = out, .count = n};
  if ((size_t)snprintf(v->name, sizeof v->name, "%s.%s", prefix, suffix) >= sizeof v->name)
    return rcc_fail(RCC_ERR_FORMAT, "clip.c: tensor name '%s.%s' is too long", prefix, suffix);
  RCC_TRY(bind(m, v->name, 1, &n, out));
  v->loaded = *out;
  m->n_vecs++;
  return RCC_OK;
}

static rcc_status_t bind_linear(rcc_clip_model_t *m, rcc_linear_t *lin, const char *name, int out_f,
                                int in_f, int has_bias) {
  char key[256];
  int64_t shape[2] = {out_f, in_f};
  snprintf(lin->name, sizeof lin->name, "%s", name);
  lin->out_features = out_f;
  lin->in_features = in_f;
  snprintf(key, sizeof key, "%s.weight", name);
  lin->bias = NULL;
  if (m->packed && !rcc_st_find(m->st, key)) {
    lin->weight = NULL;
    lin->rank = -1; /* stored factored: decoded once every layer is bound */
  } else {
    RCC_TRY(bind(m, key, 2, shape, &lin->weight));
  }
  if (has_bias) RCC_TRY(bind_vec(m, name, "bias", out_f, &lin->bias));
  return RCC_OK;
}

static rcc_status_t bind_layers(rcc_clip_model_t *m, clip_tower_t *tw, const char *prefix) {
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size, I = c->intermediate_size;
  tw->layers = calloc((size_t)c->num_layers + 1, sizeof *tw->layers);
  if (!tw->layers) return rcc_fail(RCC_ERR_NOMEM, "out of memory for %d layers", c->num_layers);
  for (int l = 0; l < c->num_layers; l++) {
    clip_layer_t *L = &tw->layers[l];
    char p[160], name[200];
    snprintf(p, sizeof p, "%s.encoder.layers.%d", prefix, l);
#define LIN(field, sub, o, i)                                                                      \
  snprintf(name, sizeof name, "%s.%s", p, sub);                                                    \
  RCC_TRY(bind_linear(m, &L->field, name, o, i, 1))
    LIN(q, "self_attn.q_proj", D, D);
    LIN(k, "self_attn.k_proj", D, D);
    LIN(v, "self_attn.v_proj", D, D);
    LIN(o, "self_attn.out_proj", D, D);
    LIN(fc1, "mlp.fc1", I, D);
    LIN(fc2, "mlp.fc2", D, I);
#undef LIN
    RCC_TRY(bind_vec(m, p, "layer_norm1.weight", D, &L->ln1_w));
    RCC_TRY(bind_vec(m, p, "layer_norm1.bias", D, &L->ln1_b));
    RCC_TRY(bind_vec(m, p, "layer_norm2.weight", D, &L->ln2_w));
    RCC_TRY(bind_vec(m, p, "layer_norm2.bias", D, &L->ln2_b));
  }
  return RCC_OK;
}

static rcc_status_t bind_vision(rcc_clip_model_t *m) {
  clip_tower_t *tw = &m->vision;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size, p = c->patch_size, g = c->image_size / p;
  int64_t cls_shape[1] = {D}, pos_shape[2] = {(int64_t)g * g + 1, D};
  int64_t patch_shape[4] = {D, c->num_channels, p, p};
  RCC_TRY(
      bind_host(m, "vision_model.embeddings.class_embedding", 1, cls_shape, &tw->class_embedding));
  RCC_TRY(bind_host(m, "vision_model.embeddings.position_embedding.weight", 2, pos_shape,
                    &tw->position));
  /* The conv weight (D, C, p, p) is read as a (D, C*p*p) matrix: same memory. */
  snprintf(tw->patch.name, sizeof tw->patch.name, "vision_model.embeddings.patch_embedding");
  tw->patch.out_features = D;
  tw->patch.in_features = c->num_channels * p * p;
  RCC_TRY(
      bind(m, "vision_model.embeddings.patch_embedding.weight", 4, patch_shape, &tw->patch.weight));
  RCC_TRY(bind_vec(m, "vision_model", "pre_layrnorm.weight", D, &tw->ln_pre_w));
  RCC_TRY(bind_vec(m, "vision_model", "pre_layrnorm.bias", D, &tw->ln_pre_b));
  RCC_TRY(bind_layers(m, tw, "vision_model"));
  RCC_TRY(bind_vec(m, "vision_model", "post_layernorm.weight", D, &tw->ln_post_w));
  RCC_TRY(bind_vec(m, "vision_model", "post_layernorm.bias", D, &tw->ln_post_b));
  return bind_linear(m, &tw->projection, "visual_projection", m->cfg.projection_dim, D, 0);
}

static rcc_status_t bind_text(rcc_clip_model_t *m) {
  clip_tower_t *tw = &m->text;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size;
  int64_t tok_shape[2] = {c->vocab_size, D}, pos_shape[2] = {c->max_position_embeddings, D};
  RCC_TRY(bind_host(m, "text_model.embeddings.token_embedding.weight", 2, tok_shape,
                    &tw->token_embedding));
  RCC_TRY(
      bind_host(m, "text_model.embeddings.position_embedding.weight", 2, pos_shape, &tw->position));
  RCC_TRY(bind_layers(m, tw, "text_model"));
  RCC_TRY(bind_vec(m, "text_model", "final_layer_norm.weight", D, &tw->ln_post_w));
  RCC_TRY(bind_vec(m, "text_model", "final_layer_norm.bias", D, &tw->ln_post_b));
  return bind_linear(m, &tw->projection, "text_projection", m->cfg.projection_dim, D, 0);
}

static rcc_status_t collect_linears(rcc_clip_model_t *m) {
  int n = 6 * (m->vision.cfg.num_layers + m->text.cfg.num_layers) + 2;
  m->linears = malloc((size_t)n * sizeof *m->linears);
  if (!m->linears) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  clip_tower_t *towers[2] = {&m->vision, &m->text};
  for (int t = 0; t < 2; t++) {
    for (int l = 0; l < towers[t]->cfg.num_layers; l++) {
      clip_layer_t *L = &towers[t]->layers[l];
      rcc_linear_t *ls[6] = {&L->k, &L->v, &L->q, &L->o, &L->fc1, &L->fc2};
      for (int i = 0; i < 6; i++)
        m->linears[m->n_linears++] = ls[i];
    }
    m->linears[m->n_linears++] = &towers[t]->projection;
  }
  for (int i = 0; i < m->n_linears; i++)
    m->linears[i]->index = i;
  m->replaced = calloc((size_t)n, sizeof *m->replaced);
  if (!m->replaced) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  return RCC_OK;
}

static void count_params(rcc_clip_model_t *m) {
  rcc_clip_param_counts_t c = {0, 0, 0};
  for (int i = 0; i < rcc_st_count(m->st); i++) {
    const rcc_tensor_t *t = rcc_st_tensor(m->st, i);
    if (strstr(t->name, "position_ids")) continue; /* a buffer, not a parameter */
    c.total += t->numel;
    if (strstr(t->name, "embedding")) c.embeddings += t->numel;
  }
  for (int i = 0; i < m->n_linears; i++) {
    const rcc_linear_t *l = m->linears[i];
    c.linear += (int64_t)l->out_features * l->in_features + (l->bias ? l->out_features : 0);
  }
  m->counts = c;
}

/* A float tensor of the packed file with the expected element count, or NULL. */
static const float *packed_part(rcc_clip_model_t *m, const char *layer, const char *part,
                                int64_t numel, rcc_status_t *st) {
  char key[256];
  snprintf(key, sizeof key, "%s.%s", layer, part);
  const rcc_tensor_t *t = rcc_st_find(m->st, key);
  if (!t) return NULL;
  if (t->dtype != RCC_DTYPE_F32 || (numel >= 0 && t->numel != numel)) {
    *st = rcc_fail(RCC_ERR_FORMAT, "packed tensor '%s' has %lld elements, expected %lld", key,
                   (long long)t->numel, (long long)numel);
    return NULL;
  }
  return t->data;
}

/* Rebuilds S (from values + bit mask, or dense), U, V and alpha of a packed layer and hands
 * them to the model with alpha folded in. */
static rcc_status_t decode_packed_layer(rcc_clip_model_t *m, rcc_linear_t *lin) {
  const int64_t O = lin->out_features, I = lin->in_features, row_bytes = (I + 7) / 8;
  rcc_status_t st = RCC_OK;
  char key[256];
  float *S = NULL, *U = NULL;
  int rank = 0;
  snprintf(key, sizeof key, "%s.S.mask", lin->name);
  const rcc_tensor_t *mask = rcc_st_find(m->st, key);
  const float *values = packed_part(m, lin->name, "S.values", -1, &st);
  const float *dense = packed_part(m, lin->name, "S", O * I, &st);
  const float *alpha = packed_part(m, lin->name, "alpha", O, &st);
  snprintf(key, sizeof key, "%s.U", lin->name);
  const rcc_tensor_t *ut = rcc_st_find(m->st, key);
  if (ut && ut->ndim == 2 && ut->shape[0] == O) rank = (int)ut->shape[1];
  const float *Up = rank > 0 ? packed_part(m, lin->name, "U", O * rank, &st) : NULL;
  const float *Vp = rank > 0 ? packed_part(m, lin->name, "V", (int64_t)rank * I, &st) : NULL;
  if (st != RCC_OK) return st;
  if ((ut && (!Up || !Vp)) || (!values && !dense && rank == 0) || (!!values != !!mask))
    return rcc_fail(RCC_ERR_FORMAT, "packed layer '%s' is incomplete", lin->name);
  if (values || dense) {
    if (!(S = calloc((size_t)(O * I), sizeof *S))) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    if (dense) memcpy(S, dense, (size_t)(O * I) * sizeof *S);
  }
  if (values) {
    snprintf(key, sizeof key, "%s.S.values", lin->name);
    const rcc_tensor_t *vt = rcc_st_find(m->st, key);
    if (mask->dtype != RCC_DTYPE_U8 || mask->numel != O * row_bytes) {
      free(S);
      return rcc_fail(RCC_ERR_FORMAT, "packed '%s.S.mask' must be U8 (%lld, %lld)", lin->name,
                      (long long)O, (long long)row_bytes);
    }
    const uint8_t *bits = mask->data;
    int64_t k = 0;
    for (int64_t i = 0; i < O; i++)
      for (int64_t j = 0; j < I; j++)
        if (bits[i * row_bytes + j / 8] >> (j % 8) & 1) {
          if (k >= vt->numel) break;
          S[i * I + j] = values[k++];
        }
    if (k != vt->numel) {
      free(S);
      return rcc_fail(RCC_ERR_FORMAT,
                      "packed layer '%s': mask has a different number of entries "
                      "than S.values (%lld)",
                      lin->name, (long long)vt->numel);
    }
  }
  if (rank > 0) {
    if (!(U = malloc((size_t)(O * rank) * sizeof *U))) {
      free(S);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    memcpy(U, Up, (size_t)(O * rank) * sizeof *U);
  }
  for (int64_t i = 0; alpha && i < O; i++) {
    for (int64_t j = 0; S && j < I; j++)
      S[i * I + j] *= alpha[i];
    for (int k = 0; k < rank; k++)
      U[i * rank + k] *= alpha[i];
  }
  lin->rank = 0;
  st = rcc_clip_replace_linear(m, lin->index, S, rank, U, Vp);
  free(S);
  free(U);
  return st;
}

rcc_status_t rcc_clip_load(const char *model_path, rcc_backend_t be, rcc_clip_model_t **out) {
  char path[4096];
  rcc_clip_model_t *m = calloc(1, sizeof *m);
  if (!m) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  m->be = be;
  rcc_status_t st;
  struct stat sb;
  m->packed = stat(model_path, &sb) == 0 && S_ISREG(sb.st_mode);
  if (m->packed) {
    /* packed.safetensors: the config travels in the metadata. */
    snprintf(path, sizeof path, "%s", model_path);
    if ((st = rcc_st_open(path, &m->st)) != RCC_OK) goto fail;
    const char *format = rcc_st_metadata(m->st, "format"), *cfg = rcc_st_metadata(m->st, "config");
    if (!format || strcmp(format, "rcc-packed") != 0 || !cfg) {
      st =
          rcc_fail(RCC_ERR_FORMAT,
                   "%s: not a packed model written by rcc-dist (metadata "
                   "'format' must be 'rcc-packed' with a 'config'); pass a model directory instead",
                   path);
      goto fail;
    }
    if ((st = rcc_clip_config_parse(cfg, path, &m->cfg)) != RCC_OK) goto fail;
  } else {
    snprintf(path, sizeof path, "%s/config.json", model_path);
    if ((st = rcc_clip_config_load(path, &m->cfg)) != RCC_OK) goto fail;
    snprintf(path, sizeof path, "%s/model.safetensors", model_path);
    if ((st = rcc_st_open(path, &m->st)) != RCC_OK) goto fail;
  }
  m->vision.cfg = m->cfg.vision;
  m->text.cfg = m->cfg.text;
  rcc_tensor_t *ls = rcc_st_find(m->st, "logit_scale");
  if (!ls || ls->dtype != RCC_DTYPE_F32 || ls->numel != 1) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: missing or malformed scalar 'logit_scale'", path);
    goto fail;
  }
  m->logit_scale = *(const float *)ls->data;
  if ((st = bind_vision(m)) != RCC_OK || (st = bind_text(m)) != RCC_OK) {
    rcc_fail_context(st, "%s", model_path);
    goto fail;
  }
  if ((st = collect_linears(m)) != RCC_OK) goto fail;
  for (int i = 0; i < m->n_linears; i++)
    if (m->linears[i]->rank < 0 && (st = decode_packed_layer(m, m->linears[i])) != RCC_OK) {
      rcc_fail_context(st, "%s", model_path);
      goto fail;
    }
  count_params(m);
  *out = m;
  return RCC_OK;
fail:
  rcc_clip_free(m);
  return st;
}

static void workspace_free(rcc_clip_model_t *m) {
  clip_workspace_t *w = &m->ws;
  float **bufs[] = {&w->x,   &w->h,   &w->q,      &w->k,      &w->v,    &w->ctx,
                    &w->tmp, &w->mlp, &w->scores, &w->pooled, &w->proj, &w->lowrank};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    rcc_backend_release(m->be, *bufs[i]);
    *bufs[i] = NULL;
  }
  free(w->host);
  w->host = NULL;
  w->cap = 0;
}

void rcc_clip_free(rcc_clip_model_t *m) {
  if (!m) return;
  workspace_free(m);
  for (int i = 0; i < m->n_owned; i++)
    rcc_backend_release(m->be, m->owned[i]);
  free(m->owned);
  free(m->vision.layers);
  free(m->text.layers);
  for (int i = 0; m->replaced && i < m->n_linears; i++)
    rcc_backend_release(m->be, m->replaced[i]);
  free(m->replaced);
  for (int i = 0; i < m->n_vecs; i++)
    rcc_backend_release(m->be, m->vecs[i].set);
  free(m->vecs);
  free(m->linears);
  rcc_st_close(m->st);
  free(m);
}

const rcc_clip_config_t *rcc_clip_get_config(const rcc_clip_model_t *m) { return &m->cfg; }
float rcc_clip_logit_scale(const rcc_clip_model_t *m) { return expf(m->logit_scale); }
int rcc_clip_num_linears(const rcc_clip_model_t *m) { return m->n_linears; }
rcc_linear_t *rcc_clip_linear(rcc_clip_model_t *m, int i) {
  return (i >= 0 && i < m->n_linears) ? m->linears[i] : NULL;
}
rcc_clip_param_counts_t rcc_clip_count_params(const rcc_clip_model_t *m) { return m->counts; }

/* ---------------------------------------------------------------- forward */

/* Sizes every activation buffer for B sequences of T tokens of tower `tw`. `cap` tracks
 * one number: the largest (B*T) * max(width) seen, so each buffer fits every tower. */
static rcc_status_t workspace_reserve(rcc_clip_model_t *m, const clip_tower_t *tw, int B, int T) {
  const rcc_clip_tower_config_t *c = &tw->cfg;
  size_t N = (size_t)B * T, width = (size_t)c->hidden_size;
  if (c->intermediate_size > c->hidden_size) width = (size_t)c->intermediate_size;
  size_t scores = (size_t)B * c->num_heads * T * T;
  size_t need = N * width > scores ? N * width : scores;
  size_t patch_cols = (size_t)m->vision.patch.in_features;
  if (N * patch_cols > need) need = N * patch_cols;
  if (N * (size_t)m->cfg.projection_dim > need) need = N * (size_t)m->cfg.projection_dim;
  if (need <= m->ws.cap) return RCC_OK;
  workspace_free(m);
  clip_workspace_t *w = &m->ws;
  float **bufs[] = {&w->x,   &w->h,   &w->q,      &w->k,      &w->v,    &w->ctx,
                    &w->tmp, &w->mlp, &w->scores, &w->pooled, &w->proj, &w->lowrank};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
    *bufs[i] = rcc_backend_alloc(m->be, need * sizeof(float));
    if (!*bufs[i]) {
      workspace_free(m);
      return rcc_fail_context(RCC_ERR_NOMEM, "activations for batch %d x %d tokens", B, T);
    }
  }
  w->host = malloc(need * sizeof(float));
  if (!w->host) {
    workspace_free(m);
    return rcc_fail(RCC_ERR_NOMEM, "out of host memory for activations");
  }
  w->cap = need;
  return RCC_OK;
}

/* One linear layer, after handing its input to the calibration hook (if any). */
static rcc_status_t linear(rcc_clip_model_t *m, const rcc_linear_t *lin, const float *x, int N,
                           float *y) {
  if (m->hook) RCC_TRY(m->hook(m->hook_ctx, lin, x, N));
  return rcc_linear_forward(m->be, lin, x, N, y, m->ws.lowrank);
}

/* Pre-LN transformer encoder over x (B*T, D), in place. */
static rcc_status_t encoder_forward(rcc_clip_model_t *m, const clip_tower_t *tw, int B, int T,
                                    int causal) {
  rcc_backend_t be = m->be;
  clip_workspace_t *w = &m->ws;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size, H = c->num_heads, hd = D / H, I = c->intermediate_size;
  const int N = B * T;
  const float eps = c->layer_norm_eps, scale = 1.0f / sqrtf((float)hd);
  for (int l = 0; l < c->num_layers; l++) {
    const clip_layer_t *L = &tw->layers[l];
    /* attention: q, k, v (N, D) hold H heads of hd columns each */
    RCC_TRY(rcc_layernorm(be, w->h, w->x, L->ln1_w, L->ln1_b, N, D, eps));
    RCC_TRY(linear(m, &L->q, w->h, N, w->q));
    RCC_TRY(linear(m, &L->k, w->h, N, w->k));
    RCC_TRY(linear(m, &L->v, w->h, N, w->v));
    for (int b = 0; b < B; b++) {
      const size_t off = (size_t)b * T * D;
      /* scores (H, T, T) = scale * q_h k_h^T */
      RCC_TRY(rcc_gemm_strided_batched(be, false, true, T, T, hd, scale, w->q + off, D, hd,
                                       w->k + off, D, hd, 0.0f, w->scores + (size_t)b * H * T * T,
                                       T, (int64_t)T * T, H));
    }
    RCC_TRY(rcc_softmax(be, w->scores, B * H * T, T, 1.0f, causal ? T : 0, NULL, 1));
    for (int b = 0; b < B; b++) {
      const size_t off = (size_t)b * T * D;
      /* ctx_h (T, hd) = softmax(scores_h) (T, T) v_h (T, hd), written into (T, D) */
      RCC_TRY(rcc_gemm_strided_batched(be, false, false, T, hd, T, 1.0f,
                                       w->scores + (size_t)b * H * T * T, T, (int64_t)T * T,
                                       w->v + off, D, hd, 0.0f, w->ctx + off, D, hd, H));
    }
    RCC_TRY(linear(m, &L->o, w->ctx, N, w->tmp));
    RCC_TRY(rcc_add(be, w->x, w->x, w->tmp, (int64_t)N * D));
    /* MLP */
    RCC_TRY(rcc_layernorm(be, w->h, w->x, L->ln2_w, L->ln2_b, N, D, eps));
    RCC_TRY(linear(m, &L->fc1, w->h, N, w->mlp));
    RCC_TRY(rcc_activation(be, c->act, w->mlp, (int64_t)N * I));
    RCC_TRY(linear(m, &L->fc2, w->mlp, N, w->tmp));
    RCC_TRY(rcc_add(be, w->x, w->x, w->tmp, (int64_t)N * D));
  }
  return RCC_OK;
}

/* Gathers row rows[b] of each sequence of x (B*T, D), applies the tower's final LayerNorm
 * and projection, and downloads (B, P) into out. */
static rcc_status_t pool_and_project(rcc_clip_model_t *m, const clip_tower_t *tw, int B, int T,
                                     const int *rows, float *out) {
  rcc_backend_t be = m->be;
  clip_workspace_t *w = &m->ws;
  const int D = tw->cfg.hidden_size, P = m->cfg.projection_dim;
  for (int b = 0; b < B; b++)
    RCC_TRY(rcc_backend_download(be, w->host + (size_t)b * D, w->x + ((size_t)b * T + rows[b]) * D,
                                 (size_t)D * sizeof(float)));
  RCC_TRY(rcc_backend_upload(be, w->pooled, w->host, (size_t)B * D * sizeof(float)));
  RCC_TRY(rcc_layernorm(be, w->pooled, w->pooled, tw->ln_post_w, tw->ln_post_b, B, D,
                        tw->cfg.layer_norm_eps));
  RCC_TRY(linear(m, &tw->projection, w->pooled, B, w->proj));
  return rcc_backend_download(be, out, w->proj, (size_t)B * P * sizeof(float));
}

rcc_status_t rcc_clip_image_features(rcc_clip_model_t *m, const float *pixels, int B, float *out) {
  const clip_tower_t *tw = &m->vision;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size, p = c->patch_size, S = c->image_size, C = c->num_channels;
  const int g = S / p, Np = g * g, T = Np + 1, K = C * p * p;
  if (B <= 0) return rcc_fail(RCC_ERR_ARG, "image batch must be > 0 (got %d)", B);
  RCC_TRY(workspace_reserve(m, tw, B, T));
  clip_workspace_t *w = &m->ws;
  rcc_backend_t be = m->be;
  /* im2col: cols (B*Np, C*p*p), column order (c, ky, kx) as the conv weight is stored. */
  float *cols = w->host;
  for (int b = 0; b < B; b++)
    for (int gy = 0; gy < g; gy++)
      for (int gx = 0; gx < g; gx++) {
        float *dst = cols + ((size_t)b * Np + (size_t)gy * g + gx) * K;
        for (int ch = 0; ch < C; ch++)
          for (int ky = 0; ky < p; ky++) {
            const float *src =
                pixels + (((size_t)b * C + ch) * S + (size_t)gy * p + ky) * S + (size_t)gx * p;
            memcpy(dst + ((size_t)ch * p + ky) * p, src, (size_t)p * sizeof(float));
          }
      }
  RCC_TRY(rcc_backend_upload(be, w->mlp, cols, (size_t)B * Np * K * sizeof(float)));
  /* Patch rows of sequence b land at x rows b*T+1 .. b*T+Np; row b*T is the class token. */
  RCC_TRY(rcc_gemm_strided_batched(be, false, true, Np, D, K, 1.0f, w->mlp, K, (int64_t)Np * K,
                                   tw->patch.weight, K, 0, 0.0f, w->x + D, D, (int64_t)T * D, B));
  for (int b = 0; b < B; b++)
    RCC_TRY(rcc_backend_upload(be, w->x + (size_t)b * T * D, tw->class_embedding,
                               (size_t)D * sizeof(float)));
  RCC_TRY(rcc_backend_upload(be, w->h, tw->position, (size_t)T * D * sizeof(float)));
  for (int b = 0; b < B; b++)
    RCC_TRY(rcc_add(be, w->x + (size_t)b * T * D, w->x + (size_t)b * T * D, w->h, (int64_t)T * D));
  RCC_TRY(rcc_layernorm(be, w->x, w->x, tw->ln_pre_w, tw->ln_pre_b, B * T, D, c->layer_norm_eps));
  RCC_TRY(encoder_forward(m, tw, B, T, 0));
  int *rows = calloc((size_t)B, sizeof *rows); /* the class token: row 0 of each sequence */
  if (!rows) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  rcc_status_t st = pool_and_project(m, tw, B, T, rows, out);
  free(rows);
  return st;
}

/* HF's pooling rule: with the legacy eos_token_id 2, the position of the largest id (the
 * first one on ties); otherwise the first position holding eos_token_id (0 if none). */
static int pooled_position(const int32_t *ids, int T, int eos) {
  int best = 0;
  for (int t = 0; t < T; t++) {
    if (eos == 2) {
      if (ids[t] > ids[best]) best = t;
    } else if (ids[t] == eos) {
      return t;
    }
  }
  return eos == 2 ? best : 0;
}

rcc_status_t rcc_clip_text_features(rcc_clip_model_t *m, const int32_t *ids, int B, int T,
                                    float *out) {
  const clip_tower_t *tw = &m->text;
  const rcc_clip_tower_config_t *c = &tw->cfg;
  const int D = c->hidden_size;
  if (B <= 0 || T <= 0 || T > c->max_position_embeddings)
    return rcc_fail(RCC_ERR_ARG, "text batch %d x %d tokens: need B > 0 and 0 < T <= %d", B, T,
                    c->max_position_embeddings);
  for (int64_t i = 0; i < (int64_t)B * T; i++)
    if (ids[i] < 0 || ids[i] >= c->vocab_size)
      return rcc_fail(RCC_ERR_ARG,
                      "token id %d at sequence %lld position %lld is outside the vocabulary (%d)",
                      ids[i], (long long)(i / T), (long long)(i % T), c->vocab_size);
  RCC_TRY(workspace_reserve(m, tw, B, T));
  clip_workspace_t *w = &m->ws;
  float *x = w->host;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *tok = tw->token_embedding + (size_t)ids[(size_t)b * T + t] * D;
      const float *pos = tw->position + (size_t)t * D;
      float *dst = x + ((size_t)b * T + t) * D;
      for (int d = 0; d < D; d++)
        dst[d] = tok[d] + pos[d];
    }
  RCC_TRY(rcc_backend_upload(m->be, w->x, x, (size_t)B * T * D * sizeof(float)));
  RCC_TRY(encoder_forward(m, tw, B, T, 1));
  int *rows = malloc((size_t)B * sizeof *rows);
  if (!rows) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int b = 0; b < B; b++)
    rows[b] = pooled_position(ids + (size_t)b * T, T, c->eos_token_id);
  rcc_status_t st = pool_and_project(m, tw, B, T, rows, out);
  free(rows);
  return st;
}

/* ---------------------------------------------------------------- compression hooks */

void rcc_clip_set_input_hook(rcc_clip_model_t *m, rcc_clip_input_hook_t hook, void *ctx) {
  m->hook = hook;
  m->hook_ctx = ctx;
}

rcc_status_t rcc_clip_replace_linear(rcc_clip_model_t *m, int i, const float *S, int rank,
                                     const float *U, const float *V) {
  if (i < 0 || i >= m->n_linears) return rcc_fail(RCC_ERR_ARG, "no linear layer %d", i);
  rcc_linear_t *lin = m->linears[i];
  const size_t O = (size_t)lin->out_features, I = (size_t)lin->in_features;
  if (rank < 0 || (size_t)rank > (O < I ? O : I) || (!S && rank == 0))
    return rcc_fail(RCC_ERR_ARG, "%s: invalid replacement (rank %d, %s sparse part)", lin->name,
                    rank, S ? "with" : "without");
  /* One buffer per layer: [S | U | V]. */
  size_t n = (S ? O * I : 0) + (size_t)rank * (O + I);
  float *buf = rcc_backend_alloc(m->be, n * sizeof(float));
  if (!buf) return rcc_fail_context(RCC_ERR_NOMEM, "replacing %s", lin->name);
  float *s_dev = S ? buf : NULL, *u_dev = buf + (S ? O * I : 0), *v_dev = u_dev + (size_t)rank * O;
  rcc_status_t st = RCC_OK;
  if (S) st = rcc_backend_upload(m->be, s_dev, S, O * I * sizeof(float));
  if (st == RCC_OK && rank > 0)
    st = rcc_backend_upload(m->be, u_dev, U, (size_t)rank * O * sizeof(float));
  if (st == RCC_OK && rank > 0)
    st = rcc_backend_upload(m->be, v_dev, V, (size_t)rank * I * sizeof(float));
  if (st != RCC_OK) {
    rcc_backend_release(m->be, buf);
    return st;
  }
  rcc_backend_release(m->be, m->replaced[i]);
  m->replaced[i] = buf;
  lin->weight = s_dev;
  lin->rank = rank;
  lin->U = rank > 0 ? u_dev : NULL;
  lin->V = rank > 0 ? v_dev : NULL;
  return RCC_OK;
}

rcc_status_t rcc_clip_linear_dense(rcc_clip_model_t *m, int i, float *W) {
  if (i < 0 || i >= m->n_linears) return rcc_fail(RCC_ERR_ARG, "no linear layer %d", i);
  const rcc_linear_t *lin = m->linears[i];
  const int O = lin->out_features, I = lin->in_features, r = lin->rank;
  const size_t bytes = (size_t)O * I * sizeof(float);
  if (lin->weight) {
    RCC_TRY(rcc_backend_download(m->be, W, lin->weight, bytes));
  } else {
    memset(W, 0, bytes);
  }
  if (r == 0) return RCC_OK;
  float *U = malloc((size_t)O * r * sizeof *U), *V = malloc((size_t)r * I * sizeof *V);
  rcc_status_t st = (U && V) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) st = rcc_backend_download(m->be, U, lin->U, (size_t)O * r * sizeof *U);
  if (st == RCC_OK) st = rcc_backend_download(m->be, V, lin->V, (size_t)r * I * sizeof *V);
  for (int o = 0; st == RCC_OK && o < O; o++)
    for (int k = 0; k < r; k++) {
      const float u = U[(size_t)o * r + k];
      const float *v = V + (size_t)k * I;
      float *w = W + (size_t)o * I;
      for (int c = 0; c < I; c++)
        w[c] += u * v[c];
    }
  free(U);
  free(V);
  return st;
}

/* ---------------------------------------------------------------- biases and LayerNorms */

static clip_vec_t *find_vec(rcc_clip_model_t *m, const char *name, int64_t count,
                            const char *what) {
  for (int i = 0; i < m->n_vecs; i++) {
    clip_vec_t *v = &m->vecs[i];
    if (strcmp(v->name, name)) continue;
    if (count != v->count) {
      rcc_fail(RCC_ERR_ARG, "clip.c: %s '%s': %lld values given, the model's has %lld", what, name,
               (long long)count, (long long)v->count);
      return NULL;
    }
    return v;
  }
  rcc_fail(RCC_ERR_ARG,
           "clip.c: %s '%s': the model has no such tensor (only linear biases and LayerNorm "
           "weights and biases can be set)",
           what, name);
  return NULL;
}

rcc_status_t rcc_clip_set_tensor(rcc_clip_model_t *m, const char *name, const float *values,
                                 int64_t count) {
  clip_vec_t *v = find_vec(m, name, count, "set tensor");
  if (!v) return RCC_ERR_ARG;
  const size_t bytes = (size_t)count * sizeof(float);
  /* Its own buffer, never the loaded one: on the CPU backend that is the file's mapping,
   * which rcc_clip_reset_tensors returns to. */
  if (!v->set && !(v->set = rcc_backend_alloc(m->be, bytes ? bytes : sizeof(float))))
    return rcc_fail_context(RCC_ERR_NOMEM, "clip.c: setting '%s'", name);
  RCC_TRY(rcc_backend_upload(m->be, v->set, values, bytes));
  *v->slot = v->set;
  return RCC_OK;
}

rcc_status_t rcc_clip_get_tensor(rcc_clip_model_t *m, const char *name, float *out, int64_t count) {
  clip_vec_t *v = find_vec(m, name, count, "get tensor");
  if (!v) return RCC_ERR_ARG;
  return rcc_backend_download(m->be, out, *v->slot, (size_t)count * sizeof(float));
}

void rcc_clip_reset_tensors(rcc_clip_model_t *m) {
  for (int i = 0; i < m->n_vecs; i++)
    *m->vecs[i].slot = m->vecs[i].loaded;
}

rcc_status_t rcc_clip_set_tensors(rcc_clip_model_t *m, const rcc_clip_tensors_t *l) {
  for (int i = 0; i < l->n; i++)
    RCC_TRY(rcc_clip_set_tensor(m, l->items[i].name, l->items[i].values, l->items[i].count));
  return RCC_OK;
}

static int tensor_index(const rcc_clip_tensors_t *l, const char *name) {
  for (int i = 0; i < l->n; i++)
    if (!strcmp(l->items[i].name, name)) return i;
  return -1;
}

const rcc_clip_tensor_t *rcc_clip_tensors_find(const rcc_clip_tensors_t *l, const char *name) {
  const int i = tensor_index(l, name);
  return i >= 0 ? &l->items[i] : NULL;
}

rcc_status_t rcc_clip_tensors_put(rcc_clip_tensors_t *l, const char *name, const float *values,
                                  int64_t count) {
  const int i = tensor_index(l, name);
  rcc_clip_tensor_t *t = i >= 0 ? &l->items[i] : NULL;
  if (strlen(name) >= sizeof l->items->name)
    return rcc_fail(RCC_ERR_ARG, "clip.c: tensor name '%s' is too long", name);
  float *copy = malloc((size_t)(count > 0 ? count : 1) * sizeof *copy);
  if (!copy) return rcc_fail(RCC_ERR_NOMEM, "clip.c: out of memory for tensor '%s'", name);
  memcpy(copy, values, (size_t)count * sizeof *copy);
  if (!t) {
    rcc_clip_tensor_t *grown = realloc(l->items, (size_t)(l->n + 1) * sizeof *grown);
    if (!grown) {
      free(copy);
      return rcc_fail(RCC_ERR_NOMEM, "clip.c: out of memory for tensor '%s'", name);
    }
    l->items = grown;
    t = &l->items[l->n++];
    snprintf(t->name, sizeof t->name, "%s", name);
  } else {
    free(t->values);
  }
  t->values = copy;
  t->count = count;
  return RCC_OK;
}

void rcc_clip_tensors_free(rcc_clip_tensors_t *l) {
  for (int i = 0; i < l->n; i++)
    free(l->items[i].values);
  free(l->items);
  *l = (rcc_clip_tensors_t){0};
}
