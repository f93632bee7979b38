/* Checkpoint naming, fingerprint, layer <-> dataset mapping, and the search for the newest
 * valid checkpoint. Layer datasets: layers/<name>/{S, mask, U, V, alpha}, each present only
 * when the layer has that part (S and mask dense (m, n): simple, and checkpoints are
 * scratch files, not the compressed model's storage format). Changed biases and LayerNorms:
 * tensors/<HF name> (count), present only when distillation trained them. */
#include "runner/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "jobs/sha256.h"

static rcc_status_t hash_file(rcc_sha256_t *h, const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  static unsigned char buf[1 << 20];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0)
    rcc_sha256_update(h, buf, n);
  int bad = ferror(f);
  fclose(f);
  return bad ? rcc_fail(RCC_ERR_IO, "%s: read error", path) : RCC_OK;
}

rcc_status_t rcc_run_fingerprint(const rcc_job_t *job, rcc_comm_t comm, char hex[65]) {
  char buf[65] = "";
  int32_t ok = 1;
  if (rcc_comm_rank(comm) == 0) {
    rcc_sha256_t h;
    uint8_t digest[32];
    char path[4200];
    rcc_sha256_init(&h);
    rcc_status_t st = hash_file(&h, job->path);
    snprintf(path, sizeof path, "%s/config.json", job->model);
    if (st == RCC_OK) st = hash_file(&h, path);
    snprintf(path, sizeof path, "%s/model.safetensors", job->model);
    if (st == RCC_OK) st = hash_file(&h, path);
    rcc_sha256_final(&h, digest);
    rcc_sha256_hex(buf, digest);
    ok = st == RCC_OK;
  }
  RCC_TRY(rcc_comm_broadcast(comm, &ok, 1, RCC_DT_I32, 0));
  if (!ok)
    return rcc_comm_rank(comm) == 0 ? RCC_ERR_IO
                                    : rcc_fail(RCC_ERR_IO, "rank 0 could not fingerprint the job");
  RCC_TRY(rcc_comm_broadcast(comm, buf, sizeof buf, RCC_DT_U8, 0));
  memcpy(hex, buf, 65);
  return RCC_OK;
}

/* The group of the changed biases and LayerNorms. */
#define TENSORS "tensors/"

static void stage_path(const rcc_job_t *job, int k, const char *suffix, char *out, size_t cap) {
  snprintf(out, cap, "%s/checkpoints/stage-%d.h5%s", job->output, k, suffix);
}

rcc_status_t rcc_run_checkpoint_save(const rcc_job_t *job, int stage_index, const char *fingerprint,
                                     const char *history, const rcc_layer_ref_t *layers, int n,
                                     const rcc_clip_tensors_t *tensors) {
  const int nt = tensors ? tensors->n : 0;
  rcc_ckpt_dataset_t *ds = calloc((size_t)n * 5 + (size_t)nt + 1, sizeof *ds);
  char(*names)[300] = calloc((size_t)n * 5 + (size_t)nt + 1, sizeof *names);
  if (!ds || !names) {
    free(ds);
    free(names);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  int k = 0;
  for (int i = 0; i < n; i++) {
    const rcc_factored_t *f = layers[i].f;
    struct {
      const char *part;
      const void *data;
      rcc_dtype_t dtype;
      int ndim;
      int64_t d0, d1;
    } parts[5] = {{"S", f->S, RCC_DTYPE_F32, 2, f->m, f->n},
                  {"mask", f->mask, RCC_DTYPE_U8, 2, f->m, f->n},
                  {"U", f->U, RCC_DTYPE_F32, 2, f->m, f->rank},
                  {"V", f->V, RCC_DTYPE_F32, 2, f->rank, f->n},
                  {"alpha", f->alpha, RCC_DTYPE_F32, 1, f->m, 0}};
    for (int p = 0; p < 5; p++) {
      if (!parts[p].data) continue;
      snprintf(names[k], sizeof names[k], "layers/%s/%s", layers[i].name, parts[p].part);
      ds[k] = (rcc_ckpt_dataset_t){.name = names[k],
                                   .dtype = parts[p].dtype,
                                   .ndim = parts[p].ndim,
                                   .shape = {parts[p].d0, parts[p].d1},
                                   .owner = layers[i].owner,
                                   .data = parts[p].data};
      k++;
    }
  }
  for (int i = 0; i < nt; i++) {
    snprintf(names[k], sizeof names[k], "%s%s", TENSORS, tensors->items[i].name);
    ds[k] = (rcc_ckpt_dataset_t){.name = names[k],
                                 .dtype = RCC_DTYPE_F32,
                                 .ndim = 1,
                                 .shape = {tensors->items[i].count, 0},
                                 .owner = 0,
                                 .data = tensors->items[i].values};
    k++;
  }
  rcc_ckpt_meta_t meta = {.stage_index = stage_index, .history = (char *)history};
  snprintf(meta.fingerprint, sizeof meta.fingerprint, "%s", fingerprint);
  char path[4200];
  stage_path(job, stage_index, "", path, sizeof path);
  rcc_status_t st = rcc_ckpt_write(path, &meta, ds, k);
  free(ds);
  free(names);
  return st;
}

rcc_status_t rcc_run_checkpoint_find(const rcc_job_t *job, const char *fingerprint, bool *found,
                                     rcc_ckpt_t *out) {
  *found = false;
  for (int k = job->num_stages; k >= 1; k--) {
    char path[4200];
    stage_path(job, k, "", path, sizeof path);
    if (access(path, F_OK) != 0) continue;
    rcc_ckpt_t ck;
    if (rcc_ckpt_read(path, &ck) != RCC_OK) {
      RCC_WARN("%s is unreadable or corrupt, falling back to an earlier checkpoint: %s", path,
               rcc_last_error());
      continue;
    }
    if (strcmp(ck.meta.fingerprint, fingerprint) != 0) {
      rcc_ckpt_free(&ck);
      return rcc_fail(RCC_ERR_ARG,
                      "%s was written by another job or model (fingerprint %.12s..., this run "
                      "%.12s...); rerun with --fresh to discard it and start over",
                      path, ck.meta.fingerprint, fingerprint);
    }
    if (ck.meta.stage_index != k) {
      rcc_ckpt_free(&ck);
      RCC_WARN("%s says stage %d: skipped", path, ck.meta.stage_index);
      continue;
    }
    *out = ck;
    *found = true;
    return RCC_OK;
  }
  return RCC_OK;
}

static rcc_status_t restore_part(const rcc_ckpt_t *ck, const char *layer, const char *part,
                                 int64_t numel, rcc_dtype_t dtype, void **out) {
  char name[300];
  snprintf(name, sizeof name, "layers/%s/%s", layer, part);
  const rcc_tensor_t *t = rcc_ckpt_find(ck, name);
  *out = NULL;
  if (!t) return RCC_OK;
  if (t->dtype != dtype || t->numel != numel)
    return rcc_fail(RCC_ERR_FORMAT, "checkpoint dataset '%s' has %lld elements, expected %lld",
                    name, (long long)t->numel, (long long)numel);
  size_t bytes = (size_t)numel * rcc_dtype_size(dtype);
  if (!(*out = malloc(bytes ? bytes : 1))) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  memcpy(*out, t->data, bytes);
  return RCC_OK;
}

rcc_status_t rcc_run_checkpoint_restore(const rcc_ckpt_t *ck, const rcc_layer_ref_t *layers,
                                        int n) {
  for (int i = 0; i < n; i++) {
    rcc_factored_t *f = layers[i].f;
    const int m = f->m, c = f->n;
    char name[300];
    snprintf(name, sizeof name, "layers/%s/U", layers[i].name);
    const rcc_tensor_t *U = rcc_ckpt_find(ck, name);
    rcc_factored_t g = {.m = m, .n = c, .rank = U ? (int)U->shape[1] : 0};
    rcc_status_t st =
        restore_part(ck, layers[i].name, "S", (int64_t)m * c, RCC_DTYPE_F32, (void **)&g.S);
    if (st == RCC_OK)
      st = restore_part(ck, layers[i].name, "mask", (int64_t)m * c, RCC_DTYPE_U8, (void **)&g.mask);
    if (st == RCC_OK && g.rank > 0)
      st = restore_part(ck, layers[i].name, "U", (int64_t)m * g.rank, RCC_DTYPE_F32, (void **)&g.U);
    if (st == RCC_OK && g.rank > 0)
      st = restore_part(ck, layers[i].name, "V", (int64_t)g.rank * c, RCC_DTYPE_F32, (void **)&g.V);
    if (st == RCC_OK)
      st = restore_part(ck, layers[i].name, "alpha", m, RCC_DTYPE_F32, (void **)&g.alpha);
    if (st == RCC_OK && ((g.rank > 0 && (!g.U || !g.V)) || (!g.S && g.rank == 0)))
      st = rcc_fail(RCC_ERR_FORMAT, "checkpoint: layer '%s' is incomplete", layers[i].name);
    if (st != RCC_OK) {
      rcc_factored_free(&g);
      return st;
    }
    rcc_factored_free(f);
    *f = g;
  }
  return RCC_OK;
}

rcc_status_t rcc_run_checkpoint_restore_tensors(const rcc_ckpt_t *ck, rcc_clip_tensors_t *out) {
  rcc_clip_tensors_free(out);
  const size_t prefix = strlen(TENSORS);
  for (int i = 0; i < ck->n; i++) {
    const rcc_tensor_t *t = &ck->datasets[i];
    if (strncmp(t->name, TENSORS, prefix) != 0) continue;
    if (t->dtype != RCC_DTYPE_F32 || t->ndim != 1)
      return rcc_fail(RCC_ERR_FORMAT, "checkpoint dataset '%s' must be a float32 vector", t->name);
    RCC_TRY(rcc_clip_tensors_put(out, t->name + prefix, t->data, t->numel));
  }
  return RCC_OK;
}

rcc_status_t rcc_run_checkpoint_clear(const rcc_job_t *job) {
  char dir[4200];
  snprintf(dir, sizeof dir, "%s/checkpoints", job->output);
  DIR *d = opendir(dir);
  if (!d) return RCC_OK;
  struct dirent *e;
  rcc_status_t st = RCC_OK;
  while ((e = readdir(d))) {
    if (strncmp(e->d_name, "stage-", 6) != 0) continue;
    char path[4600];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (unlink(path) != 0 && st == RCC_OK)
      st = rcc_fail(RCC_ERR_IO, "%s: cannot remove: %s", path, strerror(errno));
  }
  closedir(d);
  return st;
}
