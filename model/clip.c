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

/* Activations, grown on demand and reused across calls. */
typedef struct {
  size_t cap;
  float *x, *h, *q, *k, *v, *ctx, *tmp, *mlp, *scores, *pooled, *proj;
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
  for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
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
  rcc_tensor_t *t;
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

static rcc_status_t bind_host(rcc_clip_model_t *m, const char *name, int ndim,
                              const int64_t *shape, const float **out) {
  rcc_tensor_t *t;
  RCC_TRY(find_tensor(m, name, ndim, shape, &t));
  *out = t->data;
  return RCC_OK;
}

static rcc_status_t bind_vec(rcc_clip_model_t *m, const char *prefix, const char *suffix,
                             int64_t n, float **out) {
  char name[256];
  snprintf(name, sizeof name, "%s.%s", prefix, suffix);
  return bind(m, name, 1, &n, out);
}

static rcc_status_t bind_linear(rcc_clip_model_t *m, rcc_linear_t *lin, const char *name,
                                int out_f, int in_f, int has_bias) {
  char key[256];
  int64_t shape[2] = {out_f, in_f};
  snprintf(lin->name, sizeof lin->name, "%s", name);
  lin->out_features = out_f;
  lin->in_features = in_f;
  snprintf(key, sizeof key, "%s.weight", name);
  RCC_TRY(bind(m, key, 2, shape, &lin->weight));
  lin->bias = NULL;
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
#define LIN(field, sub, o, i)                                                                \
  snprintf(name, sizeof name, "%s.%s", p, sub);                                              \
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
  RCC_TRY(bind_host(m, "vision_model.embeddings.class_embedding", 1, cls_shape,
                    &tw->class_embedding));
  RCC_TRY(bind_host(m, "vision_model.embeddings.position_embedding.weight", 2, pos_shape,
                    &tw->position));
  /* The conv weight (D, C, p, p) is read as a (D, C*p*p) matrix: same memory. */
  snprintf(tw->patch.name, sizeof tw->patch.name, "vision_model.embeddings.patch_embedding");
  tw->patch.out_features = D;
  tw->patch.in_features = c->num_channels * p * p;
  RCC_TRY(bind(m, "vision_model.embeddings.patch_embedding.weight", 4, patch_shape,
               &tw->patch.weight));
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
  RCC_TRY(bind_host(m, "text_model.embeddings.position_embedding.weight", 2, pos_shape,
                    &tw->position));
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
      for (int i = 0; i < 6; i++) m->linears[m->n_linears++] = ls[i];
    }
    m->linears[m->n_linears++] = &towers[t]->projection;
  }
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

rcc_status_t rcc_clip_load(const char *model_dir, rcc_backend_t be, rcc_clip_model_t **out) {
  char path[4096];
  rcc_clip_model_t *m = calloc(1, sizeof *m);
  if (!m) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  m->be = be;
  rcc_status_t st;
  snprintf(path, sizeof path, "%s/config.json", model_dir);
  if ((st = rcc_clip_config_load(path, &m->cfg)) != RCC_OK) goto fail;
  m->vision.cfg = m->cfg.vision;
  m->text.cfg = m->cfg.text;
  snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
  if ((st = rcc_st_open(path, &m->st)) != RCC_OK) goto fail;
  rcc_tensor_t *ls = rcc_st_find(m->st, "logit_scale");
  if (!ls || ls->dtype != RCC_DTYPE_F32 || ls->numel != 1) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: missing or malformed scalar 'logit_scale'", path);
    goto fail;
  }
  m->logit_scale = *(const float *)ls->data;
  if ((st = bind_vision(m)) != RCC_OK || (st = bind_text(m)) != RCC_OK) {
    rcc_fail_context(st, "%s", model_dir);
    goto fail;
  }
  if ((st = collect_linears(m)) != RCC_OK) goto fail;
  count_params(m);
  *out = m;
  return RCC_OK;
fail:
  rcc_clip_free(m);
  return st;
}

static void workspace_free(rcc_clip_model_t *m) {
  clip_workspace_t *w = &m->ws;
  float **bufs[] = {&w->x,   &w->h,      &w->q,      &w->k,    &w->v,   &w->ctx,
                    &w->tmp, &w->mlp,    &w->scores, &w->pooled, &w->proj};
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
  for (int i = 0; i < m->n_owned; i++) rcc_backend_release(m->be, m->owned[i]);
  free(m->owned);
  free(m->vision.layers);
  free(m->text.layers);
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
  float **bufs[] = {&w->x,   &w->h,   &w->q,      &w->k,      &w->v,   &w->ctx,
                    &w->tmp, &w->mlp, &w->scores, &w->pooled, &w->proj};
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
    RCC_TRY(rcc_linear_forward(be, &L->q, w->h, N, w->q));
    RCC_TRY(rcc_linear_forward(be, &L->k, w->h, N, w->k));
    RCC_TRY(rcc_linear_forward(be, &L->v, w->h, N, w->v));
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
    RCC_TRY(rcc_linear_forward(be, &L->o, w->ctx, N, w->tmp));
    RCC_TRY(rcc_add(be, w->x, w->x, w->tmp, (int64_t)N * D));
    /* MLP */
    RCC_TRY(rcc_layernorm(be, w->h, w->x, L->ln2_w, L->ln2_b, N, D, eps));
    RCC_TRY(rcc_linear_forward(be, &L->fc1, w->h, N, w->mlp));
    RCC_TRY(rcc_activation(be, c->act, w->mlp, (int64_t)N * I));
    RCC_TRY(rcc_linear_forward(be, &L->fc2, w->mlp, N, w->tmp));
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
  RCC_TRY(rcc_linear_forward(be, &tw->projection, w->pooled, B, w->proj));
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
      return rcc_fail(RCC_ERR_ARG, "token id %d at sequence %lld position %lld is outside the vocabulary (%d)",
                      ids[i], (long long)(i / T), (long long)(i % T), c->vocab_size);
  RCC_TRY(workspace_reserve(m, tw, B, T));
  clip_workspace_t *w = &m->ws;
  float *x = w->host;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *tok = tw->token_embedding + (size_t)ids[(size_t)b * T + t] * D;
      const float *pos = tw->position + (size_t)t * D;
      float *dst = x + ((size_t)b * T + t) * D;
      for (int d = 0; d < D; d++) dst[d] = tok[d] + pos[d];
    }
  RCC_TRY(rcc_backend_upload(m->be, w->x, x, (size_t)B * T * D * sizeof(float)));
  RCC_TRY(encoder_forward(m, tw, B, T, 1));
  int *rows = malloc((size_t)B * sizeof *rows);
  if (!rows) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int b = 0; b < B; b++) rows[b] = pooled_position(ids + (size_t)b * T, T, c->eos_token_id);
  rcc_status_t st = pool_and_project(m, tw, B, T, rows, out);
  free(rows);
  return st;
}
