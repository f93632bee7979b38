/* The cascade: load, baseline, calibrate, then for each stage try -> validate -> decide,
 * and finally write the outputs and the report. Every rank runs the same steps on the same
 * data (calibration and validation are split across ranks and reduced), so decisions are
 * identical everywhere; only rank 0 writes files. */
#include "runner/cascade.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/log.h"
#include "compress/calibration.h"
#include "compress/export.h"
#include "compress/prune.h"
#include "compress/subspace.h"
#include "eval/zeroshot.h"
#include "io/safetensors.h"
#include "runner/checkpoint.h"
#include "runner/distill.h"
#include "runner/fault.h"
#include "runner/report.h"
#include "runner/shard.h"
#include "runner/stages.h"

typedef struct {
  const rcc_job_t *job;
  rcc_session_t *s;
  int rank;
  rcc_eval_ctx_t ctx;
  rcc_dataset_t *calib_ds, *val_ds;
  int n;                      /* linear layers */
  bool *selected;             /* per linear layer */
  rcc_factored_t *cur;        /* committed state per selected layer */
  rcc_clip_tensors_t tensors; /* committed biases and LayerNorms that distill changed */
  float **W0;                 /* original dense weights per selected layer */
  float **W_base;             /* base model weights (DARE), or NULL */
  int last_committed;         /* kind of the last committed stage, -1 before any */
  int *owner; /* per linear layer: the rank that compresses it, -1 if not selected */
  rcc_calib_t calib;
  int have_calib;
  rcc_report_t report;
} cascade_t;

static bool layer_selected(const rcc_job_t *job, const char *name) {
  bool in = false;
  for (int i = 0; i < job->num_include && !in; i++)
    in = fnmatch(job->include[i], name, 0) == 0;
  for (int i = 0; i < job->num_exclude && in; i++)
    in = fnmatch(job->exclude[i], name, 0) != 0;
  return in;
}

/* Pushes layer i's factored state into the model (alpha folded into S and U). */
static rcc_status_t install(cascade_t *c, int i, const rcc_factored_t *f) {
  float *S, *U;
  RCC_TRY(rcc_factored_folded(f, &S, &U));
  rcc_status_t st = rcc_clip_replace_linear(c->ctx.model, i, S, f->rank, U, f->V);
  free(S);
  free(U);
  return st;
}

static rcc_status_t validate(cascade_t *c, double *metric) {
  double t0 = rcc_now_seconds();
  rcc_zeroshot_result_t r;
  RCC_TRY(rcc_zeroshot_evaluate(&c->ctx, c->s->comm, c->val_ds, rcc_default_templates,
                                rcc_default_template_count, c->job->data.validation_samples, &r));
  c->report.validation_samples = r.samples;
  *metric = r.top1;
  c->report.phase_seconds[RCC_PHASE_VALIDATION] += rcc_now_seconds() - t0;
  return RCC_OK;
}

/* n indices spread evenly over the dataset, so that class-sorted folders are covered. */
static int *spread_indices(int size, int n) {
  int *idx = malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
  for (int i = 0; idx && i < n; i++)
    idx[i] = (int)((int64_t)i * size / n);
  return idx;
}

/* Runs the calibration images and texts through the dense model with the hook attached. */
static rcc_status_t calibrate(cascade_t *c) {
  const rcc_job_t *job = c->job;
  double t0 = rcc_now_seconds();
  RCC_TRY(rcc_calib_init(&c->calib, c->ctx.model, c->s->backend, c->selected));
  c->have_calib = 1;
  int size = rcc_dataset_size(c->calib_ds);
  int n = job->data.calibration_samples < size ? job->data.calibration_samples : size;
  const int P = rcc_clip_get_config(c->ctx.model)->projection_dim;
  const int rank = c->rank, ranks = rcc_comm_size(c->s->comm);
  int lo = (int)((int64_t)n * rank / ranks), hi = (int)((int64_t)n * (rank + 1) / ranks);
  int *idx = spread_indices(size, n);
  /* Texts: class names in every template, or the captions of the sampled pairs. */
  int C = rcc_dataset_num_classes(c->calib_ds);
  int nt = C > 0 ? C * rcc_default_template_count : n;
  char **texts = calloc((size_t)nt, sizeof *texts);
  float *feats = malloc((size_t)(n > nt ? n : nt) * P * sizeof *feats);
  rcc_status_t st = (idx && texts && feats) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  for (int t = 0; st == RCC_OK && t < nt; t++) {
    const char *src = C > 0 ? rcc_default_templates[t % rcc_default_template_count]
                            : rcc_dataset_caption(c->calib_ds, idx[t]);
    const char *name =
        C > 0 ? rcc_dataset_class_name(c->calib_ds, t / rcc_default_template_count) : "";
    size_t len = strlen(src) + strlen(name) + 1;
    if (!(texts[t] = malloc(len))) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    const char *hole = C > 0 ? strstr(src, "{}") : NULL;
    if (hole)
      snprintf(texts[t], len, "%.*s%s%s", (int)(hole - src), src, name, hole + 2);
    else
      snprintf(texts[t], len, "%s", src);
  }
  int tlo = (int)((int64_t)nt * rank / ranks), thi = (int)((int64_t)nt * (rank + 1) / ranks);
  rcc_calib_attach(&c->calib, c->ctx.model);
  if (st == RCC_OK && hi > lo)
    st = rcc_eval_dataset_features(&c->ctx, c->calib_ds, idx + lo, hi - lo, false, feats);
  if (st == RCC_OK && thi > tlo)
    st = rcc_eval_text_features(&c->ctx, (const char *const *)texts + tlo, thi - tlo, false, feats);
  rcc_calib_detach(c->ctx.model);
  if (st == RCC_OK) st = rcc_calib_finalize(&c->calib, &c->s->backend_comm);
  c->report.calibration_samples = n;
  c->report.phase_seconds[RCC_PHASE_CALIBRATION] += rcc_now_seconds() - t0;
  for (int t = 0; texts && t < nt; t++)
    free(texts[t]);
  free(texts);
  free(feats);
  free(idx);
  if (st == RCC_OK) RCC_INFO("calibration: %d images and %d texts through the dense model", n, nt);
  return st;
}

/* Loads the base model's weights of the selected layers (DARE's W_base). */
static rcc_status_t load_base(cascade_t *c) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", c->job->base_model);
  rcc_safetensors_t *st_base;
  RCC_TRY(rcc_st_open(path, &st_base));
  rcc_status_t st = RCC_OK;
  for (int i = 0; i < c->n && st == RCC_OK; i++) {
    if (!c->selected[i]) continue;
    const rcc_linear_t *lin = rcc_clip_linear(c->ctx.model, i);
    char key[256];
    snprintf(key, sizeof key, "%s.weight", lin->name);
    const rcc_tensor_t *t = rcc_st_find(st_base, key);
    if (!t || t->dtype != RCC_DTYPE_F32 ||
        t->numel != (int64_t)lin->out_features * lin->in_features) {
      st = rcc_fail(RCC_ERR_FORMAT, "%s: base model has no tensor '%s' of shape %dx%d", path, key,
                    lin->out_features, lin->in_features);
      break;
    }
    if (!(c->W_base[i] = malloc((size_t)t->numel * sizeof(float)))) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    memcpy(c->W_base[i], t->data, (size_t)t->numel * sizeof(float));
  }
  rcc_st_close(st_base);
  return st;
}

static int64_t stored_params(const cascade_t *c) {
  int64_t p = c->report.params_total;
  for (int i = 0; i < c->n; i++)
    if (c->selected[i]) p += rcc_factored_params(&c->cur[i]) - (int64_t)c->cur[i].m * c->cur[i].n;
  return p;
}

static bool all_finite(const rcc_factored_t *f) {
  const size_t mn = (size_t)f->m * f->n;
  for (size_t i = 0; f->S && i < mn; i++)
    if (!isfinite(f->S[i])) return false;
  for (size_t i = 0; i < (size_t)f->m * f->rank; i++)
    if (!isfinite(f->U[i])) return false;
  for (size_t i = 0; i < (size_t)f->rank * f->n; i++)
    if (!isfinite(f->V[i])) return false;
  for (int i = 0; f->alpha && i < f->m; i++)
    if (!isfinite(f->alpha[i])) return false;
  return true;
}

/* One attempt: the stage (softened to `level`) on every selected layer into trial[]. */
static rcc_status_t attempt(cascade_t *c, int stage_number, const rcc_stage_t *stage,
                            rcc_factored_t *trial, char *note, size_t note_cap) {
  float threshold = 0.0f;
  if (stage->kind == RCC_STAGE_DARE && stage->config.dare.method == RCC_DARE_METHOD_MAGNITUDE &&
      stage->config.dare.scope == RCC_SCOPE_GLOBAL) {
    int k = 0;
    const float **W = malloc((size_t)c->n * sizeof *W);
    int64_t *numel = malloc((size_t)c->n * sizeof *numel);
    float **dense = calloc((size_t)c->n, sizeof *dense);
    rcc_status_t st = (W && numel && dense) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
    for (int i = 0; i < c->n && st == RCC_OK; i++) {
      if (!c->selected[i]) continue;
      if (!(dense[i] = malloc((size_t)c->cur[i].m * c->cur[i].n * sizeof(float)))) {
        st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
        break;
      }
      rcc_factored_dense(&c->cur[i], dense[i]);
      W[k] = dense[i];
      numel[k++] = (int64_t)c->cur[i].m * c->cur[i].n;
    }
    if (st == RCC_OK)
      st = rcc_magnitude_global_threshold(W, numel, k, stage->config.dare.target_sparsity,
                                          &threshold);
    for (int i = 0; dense && i < c->n; i++)
      free(dense[i]);
    free(dense);
    free(W);
    free(numel);
    RCC_TRY(st);
  }
  /* This rank's layers, then an agreement on failures, then every layer from its owner. */
  double t0 = rcc_now_seconds();
  rcc_status_t st = RCC_OK;
  int done = 0, mine = 0, all = 0;
  for (int i = 0; i < c->n; i++) {
    all += c->selected[i];
    mine += c->selected[i] && c->owner[i] == c->rank;
  }
  for (int i = 0; i < c->n && st == RCC_OK; i++) {
    if (!c->selected[i] || c->owner[i] != c->rank) continue;
    const rcc_linear_t *lin = rcc_clip_linear(c->ctx.model, i);
    rcc_log_progress("stage %d/%d %s/%s: layer %d of %d on rank 0 (%d in all): %s", stage_number,
                     c->job->num_stages, rcc_stage_kind_name(stage->kind),
                     rcc_stage_method_name(stage), done + 1, mine, all, lin->name);
    rcc_layer_input_t in = {.name = lin->name,
                            .m = lin->out_features,
                            .n = lin->in_features,
                            .W0 = c->W0[i],
                            .W_base = c->W_base[i],
                            .global_threshold = threshold,
                            .seed = (uint64_t)c->job->seed * 1000003u + (uint64_t)i,
                            .be = c->s->backend};
    in.H = c->have_calib ? rcc_calib_H(&c->calib, i, NULL, NULL) : NULL;
    st = rcc_stage_apply(stage, &in, &c->cur[i], &trial[i]);
    if (st == RCC_OK && done == 0) rcc_fault_poison(stage_number, &trial[i]);
    if (st == RCC_OK && !all_finite(&trial[i])) {
      snprintf(note, note_cap, "non-finite values in %s", lin->name);
      st = RCC_ERR_NUMERIC;
    }
    if (++done == 1) rcc_fault_point(c->rank, stage_number);
  }
  rcc_log_progress_done();
  double t1 = rcc_now_seconds();
  c->report.phase_seconds[RCC_PHASE_COMPRESSION] += t1 - t0;
  st = rcc_shard_agree(c->s->comm, st);
  if (st == RCC_ERR_NUMERIC && !note[0])
    snprintf(note, note_cap, "non-finite values on another rank");
  for (int i = 0; i < c->n && st == RCC_OK; i++)
    if (c->selected[i]) st = rcc_shard_broadcast(c->s->comm, &trial[i], c->owner[i]);
  c->report.phase_seconds[RCC_PHASE_EXCHANGE] += rcc_now_seconds() - t1;
  return st;
}

static rcc_status_t restore_model(cascade_t *c) {
  rcc_clip_reset_tensors(c->ctx.model);
  RCC_TRY(rcc_clip_set_tensors(c->ctx.model, &c->tensors));
  for (int i = 0; i < c->n; i++)
    if (c->selected[i]) RCC_TRY(install(c, i, &c->cur[i]));
  return RCC_OK;
}

/* Grassmann distance between the input subspace a dare stage kept (top right singular
 * vectors of its sparse S, as many as the nullu rank) and the one nullu keeps (rows of V),
 * measured when a nullu stage commits right after a dare stage (DESIGN.md: dare_to_nullu). */
static rcc_status_t measure_dare_to_nullu(cascade_t *c, const rcc_factored_t *before,
                                          const rcc_factored_t *after, int i) {
  const int n = after->n, k = after->rank;
  if (!before->mask || k <= 0 || k > before->m) return RCC_OK;
  float *A = malloc((size_t)n * k * sizeof *A), *B = malloc((size_t)n * k * sizeof *B);
  double *angles = malloc((size_t)k * sizeof *angles);
  rcc_status_t st = (A && B && angles) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) st = rcc_row_space_basis(before->S, before->m, n, k, A);
  for (int r = 0; st == RCC_OK && r < k; r++)
    for (int j = 0; j < n; j++)
      B[(size_t)j * k + r] = after->V[(size_t)r * n + j];
  if (st == RCC_OK) st = rcc_principal_angles(A, n, k, B, k, angles);
  if (st == RCC_OK) c->report.dare_to_nullu[i] = rcc_grassmann_distance(angles, k);
  free(A);
  free(B);
  free(angles);
  return st;
}

/* The dare_to_nullu analysis (an exact SVD of each pruned layer) is layer work like the
 * compression: each owner measures its own layers, then the values meet by a MAX
 * all-reduce (an unmeasured layer holds -1 on every rank). A failed measurement only
 * leaves its layer unmeasured. */
static rcc_status_t analyse_dare_to_nullu(cascade_t *c, const rcc_factored_t *trial) {
  for (int i = 0; i < c->n; i++) {
    c->report.dare_to_nullu[i] = -1.0;
    if (!c->selected[i] || c->owner[i] != c->rank) continue;
    if (measure_dare_to_nullu(c, &c->cur[i], &trial[i], i) != RCC_OK)
      RCC_WARN("dare_to_nullu analysis of %s: %s", rcc_clip_linear(c->ctx.model, i)->name,
               rcc_last_error());
  }
  return rcc_comm_allreduce(c->s->comm, c->report.dare_to_nullu, (size_t)c->n, RCC_DT_F64,
                            RCC_OP_MAX);
}

/* distill's view of the model: install every selected layer, validate. */
static rcc_status_t evaluate_layers(void *ctx, const rcc_factored_t *layers, double *metric) {
  cascade_t *c = ctx;
  for (int i = 0; i < c->n; i++)
    if (c->selected[i]) RCC_TRY(install(c, i, &layers[i]));
  return validate(c, metric);
}

/* alphaedit distill: the closed form has given `trial` its starting alpha on every rank;
 * train it end to end (runner/distill.c) on spread calibration images. Trained biases and
 * LayerNorms go to *tensors (and into the model). */
static rcc_status_t distill(cascade_t *c, const rcc_alphaedit_config_t *cfg, rcc_factored_t *trial,
                            rcc_distill_summary_t *summary, rcc_clip_tensors_t *tensors) {
  const int size = rcc_dataset_size(c->calib_ds);
  int n = cfg->train_samples > 0 ? cfg->train_samples : c->job->data.calibration_samples;
  if (n > size) n = size;
  int *idx = spread_indices(size, n);
  if (!idx) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  const rcc_distill_args_t args = {.job = c->job,
                                   .cfg = cfg,
                                   .s = c->s,
                                   .ctx = &c->ctx,
                                   .train = c->calib_ds,
                                   .train_idx = idx,
                                   .n_train = n,
                                   .classes = c->val_ds,
                                   .n = c->n,
                                   .selected = c->selected,
                                   .layers = trial,
                                   .tensors = &c->tensors,
                                   .evaluate = evaluate_layers,
                                   .evaluate_ctx = c};
  /* its validations count as validation, the rest as distillation */
  const double t0 = rcc_now_seconds(), v0 = c->report.phase_seconds[RCC_PHASE_VALIDATION];
  rcc_status_t st = rcc_distill_run(&args, summary, tensors);
  c->report.phase_seconds[RCC_PHASE_DISTILLATION] +=
      rcc_now_seconds() - t0 - (c->report.phase_seconds[RCC_PHASE_VALIDATION] - v0);
  free(idx);
  return st;
}

/* Runs one stage with its retries; returns RCC_ERR_NUMERIC when the job must abort. */
static rcc_status_t run_stage(cascade_t *c, int stage_number, const rcc_stage_t *stage,
                              rcc_report_stage_t *rs) {
  const rcc_validation_config_t *v = &c->job->validation;
  const int max_attempts = 1 + (v->on_fail == RCC_ON_FAIL_RETRY ? v->max_retries : 0);
  double t0 = rcc_now_seconds();
  rs->stage = stage;
  rs->job_index = stage_number - 1;
  rs->attempts = calloc((size_t)max_attempts, sizeof *rs->attempts);
  rcc_factored_t *trial = calloc((size_t)c->n, sizeof *trial);
  rcc_clip_tensors_t trial_tensors = {0};
  if (!rs->attempts || !trial) {
    free(trial);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  rcc_status_t result = RCC_OK;
  for (int level = 0; level < max_attempts; level++) {
    rcc_report_attempt_t *a = &rs->attempts[rs->n_attempts++];
    a->level = level;
    rcc_stage_soften(stage, level, &a->config);
    rcc_status_t st = attempt(c, stage_number, &a->config, trial, a->note, sizeof a->note);
    if (st == RCC_OK && stage->kind == RCC_STAGE_ALPHAEDIT &&
        stage->config.alphaedit.method == RCC_ALPHAEDIT_METHOD_DISTILL) {
      st = distill(c, &a->config.config.alphaedit, trial, &a->distill, &trial_tensors);
      a->has_distill = st == RCC_OK;
      if (st == RCC_ERR_NUMERIC) snprintf(a->note, sizeof a->note, "%s", rcc_last_error());
    }
    if (st != RCC_OK && st != RCC_ERR_NUMERIC) {
      result = st;
      break;
    }
    bool finite = st == RCC_OK;
    for (int i = 0; finite && i < c->n; i++)
      if (c->selected[i] && (st = install(c, i, &trial[i])) != RCC_OK) break;
    if (st != RCC_OK && st != RCC_ERR_NUMERIC) {
      result = st;
      break;
    }
    a->metric = NAN;
    if (finite && (st = validate(c, &a->metric)) != RCC_OK) {
      result = st;
      break;
    }
    a->retention = finite ? a->metric / c->report.baseline : NAN;
    bool pass = finite && a->retention >= v->performance_threshold;
    bool last = level + 1 == max_attempts;
    if (pass || (last && !v->rollback_enabled && v->on_fail != RCC_ON_FAIL_ABORT && finite)) {
      a->decision = pass ? "commit" : "commit-below-threshold";
      if (stage->kind == RCC_STAGE_NULLU && c->last_committed == RCC_STAGE_DARE &&
          (st = analyse_dare_to_nullu(c, trial)) != RCC_OK) {
        result = st;
        break;
      }
      for (int i = 0; i < c->n; i++)
        if (c->selected[i]) rcc_factored_swap(&c->cur[i], &trial[i]);
      /* distill returns every tensor it carried, so a non-empty list supersedes the old one */
      if (trial_tensors.n > 0) {
        rcc_clip_tensors_free(&c->tensors);
        c->tensors = trial_tensors;
        trial_tensors = (rcc_clip_tensors_t){0};
      }
      c->last_committed = (int)stage->kind;
    } else if (!last) {
      a->decision = "retry";
    } else if (v->on_fail == RCC_ON_FAIL_ABORT) {
      a->decision = "abort";
      if (!finite)
        result = rcc_fail(RCC_ERR_NUMERIC, "%s:%d:%d: stage %s/%s gave %s, and on_fail is abort",
                          c->job->path, stage->pos.line, stage->pos.col,
                          rcc_stage_kind_name(stage->kind), rcc_stage_method_name(stage), a->note);
      else
        result = rcc_fail(RCC_ERR_NUMERIC,
                          "%s:%d:%d: stage %s/%s kept %.1f%% of the baseline, under the threshold "
                          "%.1f%%, and on_fail is abort",
                          c->job->path, stage->pos.line, stage->pos.col,
                          rcc_stage_kind_name(stage->kind), rcc_stage_method_name(stage),
                          100.0 * a->retention, 100.0 * v->performance_threshold);
    } else {
      a->decision = "rollback";
    }
    if (!a->note[0] && !pass)
      snprintf(a->note, sizeof a->note, "retention %.4f < threshold %.4f", a->retention,
               v->performance_threshold);
    RCC_INFO("stage %s/%s attempt %d: top-1 %.2f%%, retention %.4f -> %s",
             rcc_stage_kind_name(stage->kind), rcc_stage_method_name(stage), level + 1, a->metric,
             a->retention, a->decision);
    for (int i = 0; i < c->n; i++)
      rcc_factored_free(&trial[i]);
    rcc_clip_tensors_free(&trial_tensors);
    if (strcmp(a->decision, "commit") && strcmp(a->decision, "commit-below-threshold")) {
      if ((st = restore_model(c)) != RCC_OK) {
        result = st;
        break;
      }
    } else {
      break;
    }
    if (result != RCC_OK) break;
  }
  for (int i = 0; i < c->n; i++)
    rcc_factored_free(&trial[i]);
  free(trial);
  rcc_clip_tensors_free(&trial_tensors);
  rs->params_stored = stored_params(c);
  rs->seconds = rcc_now_seconds() - t0;
  return result;
}

static rcc_status_t prepare(cascade_t *c) {
  const rcc_job_t *job = c->job;
  RCC_TRY(rcc_dataset_open(job->data.validation, &c->val_ds));
  if (rcc_dataset_num_classes(c->val_ds) <= 0)
    return rcc_fail(RCC_ERR_ARG,
                    "%s: validation data '%s' has no classes; the validation metric "
                    "is zero-shot top-1 and needs a class dataset",
                    job->path, job->data.validation);
  RCC_TRY(rcc_dataset_open(job->data.calibration, &c->calib_ds));
  RCC_TRY(rcc_eval_ctx_open(&c->ctx, job->model, c->s->backend, job->data.batch_size));
  c->n = rcc_clip_num_linears(c->ctx.model);
  c->selected = calloc((size_t)c->n, sizeof *c->selected);
  c->cur = calloc((size_t)c->n, sizeof *c->cur);
  c->W0 = calloc((size_t)c->n, sizeof *c->W0);
  c->W_base = calloc((size_t)c->n, sizeof *c->W_base);
  c->report.dare_to_nullu = malloc((size_t)c->n * sizeof *c->report.dare_to_nullu);
  c->owner = malloc((size_t)c->n * sizeof *c->owner);
  int *ms = malloc((size_t)c->n * sizeof *ms), *ns = malloc((size_t)c->n * sizeof *ns);
  if (!c->selected || !c->cur || !c->W0 || !c->W_base || !c->report.dare_to_nullu || !c->owner ||
      !ms || !ns) {
    free(ms);
    free(ns);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  for (int i = 0; i < c->n; i++)
    c->report.dare_to_nullu[i] = -1.0;
  c->report.n_linears = c->n;
  int count = 0;
  for (int i = 0; i < c->n; i++) {
    const rcc_linear_t *lin = rcc_clip_linear(c->ctx.model, i);
    if (!(c->selected[i] = layer_selected(job, lin->name))) continue;
    count++;
    size_t mn = (size_t)lin->out_features * lin->in_features;
    if (!(c->W0[i] = malloc(mn * sizeof(float)))) return rcc_fail(RCC_ERR_NOMEM, "out of memory");
    RCC_TRY(rcc_clip_linear_dense(c->ctx.model, i, c->W0[i]));
    RCC_TRY(rcc_factored_init_dense(&c->cur[i], c->W0[i], lin->out_features, lin->in_features));
    c->report.params_compressible += (int64_t)mn;
  }
  for (int i = 0; i < c->n; i++) {
    ms[i] = rcc_clip_linear(c->ctx.model, i)->out_features;
    ns[i] = rcc_clip_linear(c->ctx.model, i)->in_features;
  }
  rcc_status_t plan_st = rcc_shard_plan(c->s->comm, c->selected, ms, ns, c->n, c->owner);
  free(ms);
  free(ns);
  RCC_TRY(plan_st);
  if (count == 0)
    return rcc_fail(RCC_ERR_ARG,
                    "%s: layers.include/exclude select none of the model's %d linear "
                    "layers",
                    job->path, c->n);
  if (rcc_comm_size(c->s->comm) > 1) {
    int *per_rank = calloc((size_t)rcc_comm_size(c->s->comm), sizeof *per_rank);
    for (int i = 0; per_rank && i < c->n; i++)
      if (c->owner[i] >= 0) per_rank[c->owner[i]]++;
    for (int r = 0; per_rank && r < rcc_comm_size(c->s->comm); r++)
      RCC_INFO("shard plan: rank %d compresses %d layer%s", r, per_rank[r],
               per_rank[r] == 1 ? "" : "s");
    free(per_rank);
  }
  rcc_clip_param_counts_t pc = rcc_clip_count_params(c->ctx.model);
  c->report.params_total = pc.total;
  c->report.params_linear = pc.linear;
  RCC_INFO("model %s: %lld parameters, %d of %d linear layers selected (%lld weights)", job->model,
           (long long)pc.total, count, c->n, (long long)c->report.params_compressible);
  if (job->base_model) RCC_TRY(load_base(c));
  return RCC_OK;
}

static void fill_layers(cascade_t *c) {
  int k = 0;
  if (c->n <= 0 || !(c->report.layers = calloc((size_t)c->n, sizeof *c->report.layers))) return;
  for (int i = 0; i < c->n; i++) {
    if (!c->selected[i]) continue;
    rcc_report_layer_t *l = &c->report.layers[k++];
    const rcc_factored_t *f = &c->cur[i];
    snprintf(l->name, sizeof l->name, "%s", rcc_clip_linear(c->ctx.model, i)->name);
    l->m = f->m;
    l->n = f->n;
    l->nnz = rcc_factored_nnz(f);
    l->rank = f->rank;
    l->has_alpha = f->alpha != NULL;
    l->rel_error = rcc_factored_rel_error(f, c->W0[i]);
    l->owner_rank = c->owner[i];
    l->grassmann_dare_nullu = c->report.dare_to_nullu[i];
  }
  c->report.n_layers = k;
}

static rcc_status_t write_outputs(cascade_t *c) {
  const rcc_job_t *job = c->job;
  char path[4096];
  rcc_export_t e = {.model_dir = job->model,
                    .model = c->ctx.model,
                    .layers = c->cur,
                    .compressed = c->selected,
                    .tensors = &c->tensors};
  snprintf(path, sizeof path, "%s/compressed", job->output);
  RCC_TRY(rcc_export_hf_dir(&e, path));
  snprintf(path, sizeof path, "%s/packed.safetensors", job->output);
  RCC_TRY(rcc_export_packed(&e, path, &c->report.bytes_packed));
  snprintf(path, sizeof path, "%s/model.safetensors", job->model);
  struct stat sb;
  c->report.bytes_original = stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
  return RCC_OK;
}

static void cascade_free(cascade_t *c) {
  for (int i = 0; c->cur && i < c->n; i++)
    rcc_factored_free(&c->cur[i]);
  for (int i = 0; c->W0 && i < c->n; i++)
    free(c->W0[i]);
  for (int i = 0; c->W_base && i < c->n; i++)
    free(c->W_base[i]);
  for (int s = 0; c->report.stages && s < c->report.n_stages; s++)
    free(c->report.stages[s].attempts);
  free(c->report.stages);
  free(c->report.layers);
  free(c->cur);
  free(c->W0);
  free(c->W_base);
  free(c->report.dare_to_nullu);
  free(c->owner);
  free(c->selected);
  rcc_clip_tensors_free(&c->tensors);
  if (c->have_calib) rcc_calib_free(&c->calib);
  rcc_eval_ctx_close(&c->ctx);
  rcc_dataset_free(c->calib_ds);
  rcc_dataset_free(c->val_ds);
}

/* RUN/ and RUN/checkpoints/ (rank 0, before any rank writes a checkpoint). */
static rcc_status_t make_run_dirs(const rcc_job_t *job) {
  char path[4200];
  snprintf(path, sizeof path, "%s/checkpoints", job->output);
  const char *dirs[2] = {job->output, path};
  for (int i = 0; i < 2; i++)
    if (mkdir(dirs[i], 0755) != 0 && errno != EEXIST)
      return rcc_fail(RCC_ERR_IO, "%s: cannot create directory: %s", dirs[i], strerror(errno));
  return RCC_OK;
}

/* The selected layers as checkpoint references (all ranks hold all of them). */
static rcc_layer_ref_t *layer_refs(cascade_t *c, int *n) {
  rcc_layer_ref_t *refs = malloc((size_t)(c->n > 0 ? c->n : 1) * sizeof *refs);
  *n = 0;
  for (int i = 0; refs && i < c->n; i++)
    if (c->selected[i])
      refs[(*n)++] =
          (rcc_layer_ref_t){rcc_clip_linear(c->ctx.model, i)->name, &c->cur[i], c->owner[i]};
  return refs;
}

static rcc_status_t save_checkpoint(cascade_t *c, int stages_done, const char *fingerprint) {
  int n;
  rcc_layer_ref_t *refs = layer_refs(c, &n);
  char *history = rcc_report_history_json(&c->report);
  rcc_status_t st = (refs && history) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  /* Parallel HDF5 needs every rank to write identical attributes, or the ranks' metadata
   * caches diverge and H5Fclose deadlocks; the history holds per-rank timings, so every
   * rank writes rank 0's text. */
  int64_t len = history ? (int64_t)strlen(history) + 1 : 0;
  if (st == RCC_OK) st = rcc_comm_broadcast(c->s->comm, &len, 1, RCC_DT_I64, 0);
  char *grown = st == RCC_OK ? realloc(history, (size_t)len) : NULL;
  if (st == RCC_OK && !grown)
    rcc_comm_abort(c->s->comm, 1, "out of memory for the checkpoint history");
  if (grown) history = grown;
  if (st == RCC_OK) st = rcc_comm_broadcast(c->s->comm, history, (size_t)len, RCC_DT_U8, 0);
  if (st == RCC_OK)
    st = rcc_run_checkpoint_save(c->job, stages_done, fingerprint, history, refs, n, &c->tensors);
  if (st == RCC_OK) RCC_INFO("checkpoint: %s/checkpoints/stage-%d.h5", c->job->output, stages_done);
  free(refs);
  free(history);
  return st;
}

/* Restores the layers, the changed biases and LayerNorms and the history of the newest
 * valid checkpoint; returns how many job stages it covers in *start (0 when there is none). */
static rcc_status_t resume(cascade_t *c, const char *fingerprint, int *start) {
  bool found;
  rcc_ckpt_t ck;
  *start = 0;
  RCC_TRY(rcc_run_checkpoint_find(c->job, fingerprint, &found, &ck));
  if (!found) return RCC_OK;
  int n;
  rcc_layer_ref_t *refs = layer_refs(c, &n);
  rcc_status_t st =
      refs ? rcc_run_checkpoint_restore(&ck, refs, n) : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) st = rcc_run_checkpoint_restore_tensors(&ck, &c->tensors);
  if (st == RCC_OK && ck.meta.history) st = rcc_report_history_load(&c->report, ck.meta.history);
  if (st == RCC_OK) st = restore_model(c);
  if (st == RCC_OK) {
    *start = ck.meta.stage_index;
    c->report.resumed_after = *start;
    for (int k = 0; k < c->report.n_stages; k++) {
      const rcc_report_stage_t *rs = &c->report.stages[k];
      const rcc_report_attempt_t *last = &rs->attempts[rs->n_attempts - 1];
      if (last->decision && !strncmp(last->decision, "commit", 6)) {
        c->last_committed = (int)rs->stage->kind;
        c->report.final_metric = last->metric;
      }
    }
    RCC_INFO("resuming after stage %d of %d from %s/checkpoints/stage-%d.h5", *start,
             c->job->num_stages, c->job->output, *start);
  }
  free(refs);
  rcc_ckpt_free(&ck);
  return st;
}

rcc_status_t rcc_cascade_run(const rcc_job_t *job, rcc_session_t *s, bool fresh) {
  double t0 = rcc_now_seconds();
  cascade_t c = {.job = job, .s = s, .rank = rcc_comm_rank(s->comm), .last_committed = -1};
  c.report = (rcc_report_t){.job = job,
                            .ranks = rcc_comm_size(s->comm),
                            .metric_name = "zero_shot_top1",
                            .outcome = "completed"};
  snprintf(c.report.backend, sizeof c.report.backend, "%s", rcc_backend_describe(s->backend));
  rcc_status_t st = prepare(&c);
  if (st == RCC_OK) st = validate(&c, &c.report.baseline);
  if (st == RCC_OK) {
    RCC_INFO("baseline: zero-shot top-1 %.2f%% on %d validation images", c.report.baseline,
             c.report.validation_samples);
    if (!(c.report.baseline > 0.0))
      st = rcc_fail(RCC_ERR_NUMERIC, "the dense model scores 0 on the validation data: "
                                     "retention is undefined");
  }
  bool need_calib = false;
  for (int i = 0; i < job->num_stages; i++)
    need_calib |= job->stages[i].enabled && rcc_stage_needs_calibration(&job->stages[i]);
  if (st == RCC_OK && need_calib) st = calibrate(&c);
  if (st == RCC_OK && !(c.report.stages = calloc((size_t)(job->num_stages ? job->num_stages : 1),
                                                 sizeof *c.report.stages)))
    st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
  c.report.final_metric = c.report.baseline;
  char fingerprint[65] = "";
  int start = 0;
  if (st == RCC_OK) st = rcc_run_fingerprint(job, s->comm, fingerprint);
  if (st == RCC_OK && c.rank == 0) st = make_run_dirs(job);
  if (st == RCC_OK && fresh && c.rank == 0) st = rcc_run_checkpoint_clear(job);
  if (st == RCC_OK) st = rcc_shard_agree(s->comm, st);
  if (st == RCC_OK && !fresh) st = rcc_shard_agree(s->comm, resume(&c, fingerprint, &start));
  rcc_status_t stage_st = RCC_OK;
  for (int i = start; i < job->num_stages && st == RCC_OK && stage_st == RCC_OK; i++) {
    if (job->stages[i].enabled) {
      rcc_report_stage_t *rs = &c.report.stages[c.report.n_stages++];
      stage_st = run_stage(&c, i + 1, &job->stages[i], rs);
      if (stage_st != RCC_OK && stage_st != RCC_ERR_NUMERIC) st = stage_st;
      for (int a = rs->n_attempts - 1; a >= 0; a--)
        if (rs->attempts[a].decision && !strncmp(rs->attempts[a].decision, "commit", 6)) {
          c.report.final_metric = rs->attempts[a].metric;
          break;
        }
    }
    const int f = job->checkpoint_frequency;
    if (st == RCC_OK && stage_st == RCC_OK && f > 0 && (i + 1) % f == 0) {
      double t1 = rcc_now_seconds();
      st = save_checkpoint(&c, i + 1, fingerprint);
      c.report.phase_seconds[RCC_PHASE_CHECKPOINT] += rcc_now_seconds() - t1;
    }
  }
  if (stage_st == RCC_ERR_NUMERIC) c.report.outcome = "aborted";
  char keep_error[2048] = "";
  if (stage_st != RCC_OK) snprintf(keep_error, sizeof keep_error, "%s", rcc_last_error());
  if (st == RCC_OK) {
    c.report.final_params_stored = stored_params(&c);
    fill_layers(&c);
    double t1 = rcc_now_seconds();
    if (c.rank == 0) st = write_outputs(&c);
    c.report.phase_seconds[RCC_PHASE_OUTPUTS] += rcc_now_seconds() - t1;
    c.report.seconds_total = rcc_now_seconds() - t0;
    if (st == RCC_OK && c.rank == 0) st = rcc_report_write(&c.report, job->output);
    if (st == RCC_OK && c.rank == 0) rcc_report_print_summary(&c.report, stdout);
  }
  cascade_free(&c);
  if (st == RCC_OK && stage_st != RCC_OK) return rcc_fail(stage_st, "%s", keep_error);
  return st;
}
