/* compressed/ (dense HF layout) and packed.safetensors writers. */
#include "compress/export.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"

/* Growable list of output tensors plus the buffers they own. */
typedef struct {
  rcc_tensor_t *t;
  int n, cap;
  void **owned;
  int n_owned, cap_owned;
} tensor_list_t;

/* Takes ownership of a buffer, freed by list_free. */
static rcc_status_t own(tensor_list_t *l, void *p) {
  if (l->n_owned == l->cap_owned) {
    int cap = l->cap_owned ? 2 * l->cap_owned : 256;
    void **g = realloc(l->owned, (size_t)cap * sizeof *g);
    if (!g) {
      free(p);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    l->owned = g;
    l->cap_owned = cap;
  }
  l->owned[l->n_owned++] = p;
  return RCC_OK;
}

/* Appends t; `owned` (may be NULL) is freed with the list. */
static rcc_status_t list_push(tensor_list_t *l, rcc_tensor_t t, void *owned) {
  if (owned) RCC_TRY(own(l, owned));
  if (l->n == l->cap) {
    int cap = l->cap ? 2 * l->cap : 256;
    rcc_tensor_t *g = realloc(l->t, (size_t)cap * sizeof *g);
    if (!g) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    l->t = g;
    l->cap = cap;
  }
  l->t[l->n++] = t;
  return RCC_OK;
}

static void list_free(tensor_list_t *l) {
  for (int i = 0; i < l->n_owned; i++)
    free(l->owned[i]);
  free(l->owned);
  free(l->t);
}

/* Appends a tensor named prefix+suffix; the list owns the name and `data`. */
static rcc_status_t push_named(tensor_list_t *l, const char *prefix, const char *suffix,
                               rcc_dtype_t dtype, int ndim, int64_t d0, int64_t d1, void *data) {
  size_t len = strlen(prefix) + strlen(suffix) + 1;
  char *name = malloc(len);
  if (!name) {
    free(data);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  snprintf(name, len, "%s%s", prefix, suffix);
  RCC_TRY(own(l, name));
  rcc_tensor_t t = {.name = name,
                    .dtype = dtype,
                    .ndim = ndim,
                    .shape = {d0, d1},
                    .numel = ndim == 1 ? d0 : d0 * d1,
                    .data = data};
  return list_push(l, t, data);
}

static rcc_status_t push_f32(tensor_list_t *l, const char *prefix, const char *suffix, int ndim,
                             int64_t d0, int64_t d1, float *data) {
  return push_named(l, prefix, suffix, RCC_DTYPE_F32, ndim, d0, d1, data);
}

/* Linear layer index whose weight is `name` ("<prefix>.weight"), or -1. */
static int weight_owner(const rcc_export_t *e, const char *name) {
  size_t n = strlen(name);
  if (n < 8 || strcmp(name + n - 7, ".weight")) return -1;
  for (int i = 0; i < rcc_clip_num_linears(e->model); i++) {
    const char *p = rcc_clip_linear(e->model, i)->name;
    if (strlen(p) == n - 7 && !strncmp(p, name, n - 7)) return e->compressed[i] ? i : -1;
  }
  return -1;
}

/* Points t at its replacement in e->tensors, if any, and counts it in *used. */
static rcc_status_t replace_tensor(const rcc_export_t *e, rcc_tensor_t *t, int *used) {
  const rcc_clip_tensor_t *r = e->tensors ? rcc_clip_tensors_find(e->tensors, t->name) : NULL;
  if (!r) return RCC_OK;
  if (t->dtype != RCC_DTYPE_F32 || t->numel != r->count)
    return rcc_fail(RCC_ERR_ARG,
                    "export.c: tensor '%s' of %s/model.safetensors is %s with %lld values, its "
                    "replacement has %lld floats",
                    t->name, e->model_dir, rcc_dtype_name(t->dtype), (long long)t->numel,
                    (long long)r->count);
  t->data = r->values;
  (*used)++;
  return RCC_OK;
}

/* Every replacement must have met its tensor: a misspelt one would be lost silently. */
static rcc_status_t check_replaced(const rcc_export_t *e, rcc_safetensors_t *orig, int used) {
  if (!e->tensors || used == e->tensors->n) return RCC_OK;
  for (int i = 0; i < e->tensors->n; i++)
    if (!rcc_st_find(orig, e->tensors->items[i].name))
      return rcc_fail(RCC_ERR_ARG, "export.c: no tensor '%s' in %s/model.safetensors to replace",
                      e->tensors->items[i].name, e->model_dir);
  return rcc_fail(RCC_ERR_ARG,
                  "export.c: %d of %d replacement tensors met no tensor of %s/model.safetensors "
                  "that is written as stored (a name given twice, or a compressed layer's weight)",
                  e->tensors->n - used, e->tensors->n, e->model_dir);
}

static rcc_status_t open_original(const rcc_export_t *e, rcc_safetensors_t **st) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", e->model_dir);
  return rcc_st_open(path, st);
}

static rcc_status_t copy_file(const char *src, const char *dst) {
  FILE *in = fopen(src, "rb");
  if (!in) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", src, strerror(errno));
  FILE *out = fopen(dst, "wb");
  if (!out) {
    fclose(in);
    return rcc_fail(RCC_ERR_IO, "%s: cannot create: %s", dst, strerror(errno));
  }
  char buf[1 << 16];
  size_t n;
  int ok = 1;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    ok &= fwrite(buf, 1, n, out) == n;
  ok &= !ferror(in);
  fclose(in);
  ok &= fclose(out) == 0;
  return ok ? RCC_OK : rcc_fail(RCC_ERR_IO, "%s: write failed: %s", dst, strerror(errno));
}

static rcc_status_t remove_tree(const char *dir) {
  char cmd[8300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? RCC_OK : rcc_fail(RCC_ERR_IO, "%s: cannot remove", dir);
}

rcc_status_t rcc_export_hf_dir(const rcc_export_t *e, const char *out_dir) {
  char tmp[4096], path[4400], src[4400];
  snprintf(tmp, sizeof tmp, "%s.tmp", out_dir);
  RCC_TRY(remove_tree(tmp));
  if (mkdir(tmp, 0755) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  /* Every file of the original directory but the weights: config, tokenizer, processor. */
  DIR *d = opendir(e->model_dir);
  if (!d) return rcc_fail(RCC_ERR_IO, "%s: cannot list: %s", e->model_dir, strerror(errno));
  rcc_status_t st = RCC_OK;
  struct dirent *ent;
  while (st == RCC_OK && (ent = readdir(d))) {
    struct stat sb;
    snprintf(src, sizeof src, "%s/%s", e->model_dir, ent->d_name);
    if (ent->d_name[0] == '.' || !strcmp(ent->d_name, "model.safetensors") || stat(src, &sb) != 0 ||
        !S_ISREG(sb.st_mode))
      continue;
    snprintf(path, sizeof path, "%s/%s", tmp, ent->d_name);
    st = copy_file(src, path);
  }
  closedir(d);
  rcc_safetensors_t *orig = NULL;
  tensor_list_t out = {0};
  int used = 0;
  if (st == RCC_OK) st = open_original(e, &orig);
  for (int i = 0; st == RCC_OK && i < rcc_st_count(orig); i++) {
    rcc_tensor_t t = *rcc_st_tensor(orig, i);
    int li = weight_owner(e, t.name);
    float *dense = NULL;
    if (li < 0 && (st = replace_tensor(e, &t, &used)) != RCC_OK) break;
    if (li >= 0) {
      const rcc_factored_t *f = &e->layers[li];
      if (!(dense = malloc((size_t)f->m * f->n * sizeof *dense))) {
        st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
        break;
      }
      rcc_factored_dense(f, dense);
      t.data = dense;
    }
    st = list_push(&out, t, dense);
  }
  if (st == RCC_OK) st = check_replaced(e, orig, used);
  if (st == RCC_OK) {
    snprintf(path, sizeof path, "%s/model.safetensors", tmp);
    const char *keys[] = {"format"}, *values[] = {"pt"};
    st = rcc_st_save(path, out.t, out.n, keys, values, 1);
  }
  list_free(&out);
  rcc_st_close(orig);
  if (st != RCC_OK) {
    remove_tree(tmp);
    return st;
  }
  /* Replace the previous directory only once the new one is complete. */
  char old[4200];
  snprintf(old, sizeof old, "%s.old", out_dir);
  RCC_TRY(remove_tree(old));
  struct stat sb;
  if (stat(out_dir, &sb) == 0 && rename(out_dir, old) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot move aside: %s", out_dir, strerror(errno));
  if (rename(tmp, out_dir) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot rename: %s", tmp, strerror(errno));
  return remove_tree(old);
}

static rcc_status_t read_config_text(const char *model_dir, char **text) {
  char path[4096];
  snprintf(path, sizeof path, "%s/config.json", model_dir);
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  *text = n >= 0 ? malloc((size_t)n + 1) : NULL;
  size_t got = *text ? fread(*text, 1, (size_t)n, f) : 0;
  fclose(f);
  if (!*text || got != (size_t)n) {
    free(*text);
    return rcc_fail(RCC_ERR_IO, "%s: cannot read", path);
  }
  (*text)[n] = '\0';
  return RCC_OK;
}

/* Appends the packed tensors of one layer (named by its prefix). */
static rcc_status_t push_layer(tensor_list_t *l, const char *p, const rcc_factored_t *f) {
  const int64_t m = f->m, n = f->n;
  if (f->S && f->mask) {
    int64_t nnz = rcc_factored_nnz(f), row_bytes = (n + 7) / 8, k = 0;
    float *values = malloc((size_t)(nnz > 0 ? nnz : 1) * sizeof *values);
    uint8_t *bits = calloc((size_t)(m * row_bytes), 1);
    if (!values || !bits) {
      free(values);
      free(bits);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < n; j++)
        if (f->mask[i * n + j]) {
          values[k++] = f->S[i * n + j];
          bits[i * row_bytes + j / 8] |= (uint8_t)(1u << (j % 8));
        }
    RCC_TRY(push_f32(l, p, ".S.values", 1, nnz, 0, values));
    RCC_TRY(push_named(l, p, ".S.mask", RCC_DTYPE_U8, 2, m, row_bytes, bits));
  } else if (f->S) {
    float *S = malloc((size_t)(m * n) * sizeof *S);
    if (!S) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    memcpy(S, f->S, (size_t)(m * n) * sizeof *S);
    RCC_TRY(push_f32(l, p, ".S", 2, m, n, S));
  }
  if (f->rank > 0) {
    float *U = malloc((size_t)(m * f->rank) * sizeof *U),
          *V = malloc((size_t)(f->rank * n) * sizeof *V);
    if (!U || !V) {
      free(U);
      free(V);
      return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    }
    memcpy(U, f->U, (size_t)(m * f->rank) * sizeof *U);
    memcpy(V, f->V, (size_t)(f->rank * n) * sizeof *V);
    rcc_status_t st = push_f32(l, p, ".U", 2, m, f->rank, U);
    if (st != RCC_OK) {
      free(V);
      return st;
    }
    RCC_TRY(push_f32(l, p, ".V", 2, f->rank, n, V));
  }
  if (f->alpha) {
    float *a = malloc((size_t)m * sizeof *a);
    if (!a) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    memcpy(a, f->alpha, (size_t)m * sizeof *a);
    RCC_TRY(push_f32(l, p, ".alpha", 1, m, 0, a));
  }
  return RCC_OK;
}

rcc_status_t rcc_export_packed(const rcc_export_t *e, const char *path, int64_t *bytes) {
  rcc_safetensors_t *orig = NULL;
  tensor_list_t out = {0};
  char *config = NULL;
  cJSON *layers = cJSON_CreateArray();
  rcc_status_t st = layers ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  int used = 0;
  if (st == RCC_OK) st = read_config_text(e->model_dir, &config);
  if (st == RCC_OK) st = open_original(e, &orig);
  for (int i = 0; st == RCC_OK && i < rcc_st_count(orig); i++) {
    rcc_tensor_t *t = rcc_st_tensor(orig, i);
    int li = weight_owner(e, t->name);
    if (li < 0) {
      rcc_tensor_t kept = *t;
      st = replace_tensor(e, &kept, &used);
      if (st == RCC_OK) st = list_push(&out, kept, NULL);
      continue;
    }
    const char *p = rcc_clip_linear(e->model, li)->name;
    cJSON_AddItemToArray(layers, cJSON_CreateString(p));
    st = push_layer(&out, p, &e->layers[li]);
  }
  if (st == RCC_OK) st = check_replaced(e, orig, used);
  char *layer_list = st == RCC_OK ? cJSON_PrintUnformatted(layers) : NULL;
  if (st == RCC_OK && !layer_list) st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) {
    const char *keys[] = {"format", "rcc_packed_version", "config", "layers"};
    const char *values[] = {"rcc-packed", "1", config, layer_list};
    st = rcc_st_save(path, out.t, out.n, keys, values, 4);
  }
  struct stat sb;
  if (st == RCC_OK && bytes) *bytes = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
  free(layer_list);
  cJSON_Delete(layers);
  free(config);
  list_free(&out);
  rcc_st_close(orig);
  return st;
}
