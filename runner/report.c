/* report.json (the machine-readable record, fields fixed by DESIGN.md section 6) and
 * report.md (the same for people), written atomically. */
#include "runner/report.h"
#include "runner/stages.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const rcc_phase_names[RCC_PHASE_COUNT] = {
    "calibration", "compression", "exchange", "validation", "distillation", "checkpoint", "outputs"};

/* NaN is not JSON: such values are written as null. */
static void add_number(cJSON *o, const char *key, double v) {
  if (isfinite(v))
    cJSON_AddNumberToObject(o, key, v);
  else
    cJSON_AddNullToObject(o, key);
}

static double number_or_nan(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A count absent from a history written before it was recorded: 0. */
static int64_t count_or_zero(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* alphaedit distill's training summary, in report.json and in the checkpoint history. */
static void add_distill(cJSON *ao, const rcc_report_attempt_t *at) {
  if (!at->has_distill) return;
  const rcc_distill_summary_t *d = &at->distill;
  cJSON *o = cJSON_AddObjectToObject(ao, "distill");
  cJSON_AddNumberToObject(o, "epochs", d->epochs);
  cJSON_AddNumberToObject(o, "steps", d->steps);
  cJSON_AddNumberToObject(o, "best_epoch", d->best_epoch);
  add_number(o, "start_metric", d->start_metric);
  add_number(o, "best_metric", d->best_metric);
  add_number(o, "first_loss", d->first_loss);
  add_number(o, "last_loss", d->last_loss);
  add_number(o, "train_seconds", d->train_seconds);
  add_number(o, "samples_per_second", d->samples_per_second);
  cJSON_AddNumberToObject(o, "trained_params", (double)d->trained_params);
  cJSON_AddNumberToObject(o, "trained_bias_params", (double)d->trained_bias_params);
  cJSON_AddNumberToObject(o, "trained_layernorm_params", (double)d->trained_layernorm_params);
  cJSON_AddNumberToObject(o, "activation_bytes", (double)d->activation_bytes);
}

static void load_distill(const cJSON *ao, rcc_report_attempt_t *at) {
  const cJSON *o = cJSON_GetObjectItemCaseSensitive(ao, "distill");
  if (!cJSON_IsObject(o)) return;
  rcc_distill_summary_t *d = &at->distill;
  at->has_distill = 1;
  d->epochs = (int)number_or_nan(o, "epochs");
  d->steps = (int)number_or_nan(o, "steps");
  d->best_epoch = (int)number_or_nan(o, "best_epoch");
  d->start_metric = number_or_nan(o, "start_metric");
  d->best_metric = number_or_nan(o, "best_metric");
  d->first_loss = number_or_nan(o, "first_loss");
  d->last_loss = number_or_nan(o, "last_loss");
  d->train_seconds = number_or_nan(o, "train_seconds");
  d->samples_per_second = number_or_nan(o, "samples_per_second");
  d->trained_params = (int64_t)number_or_nan(o, "trained_params");
  d->trained_bias_params = count_or_zero(o, "trained_bias_params");
  d->trained_layernorm_params = count_or_zero(o, "trained_layernorm_params");
  d->activation_bytes = (size_t)number_or_nan(o, "activation_bytes");
}

static cJSON *stage_config_json(const rcc_stage_t *st) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "method", rcc_stage_method_name(st));
  switch (st->kind) {
  case RCC_STAGE_DARE: {
    const rcc_dare_config_t *c = &st->config.dare;
    add_number(o, "target_sparsity", c->target_sparsity);
    cJSON_AddNumberToObject(o, "num_iterations", c->num_iterations);
    cJSON_AddStringToObject(o, "schedule", rcc_schedule_name(c->schedule));
    if (c->pattern_m > 0) {
      char p[32];
      snprintf(p, sizeof p, "%d:%d", c->pattern_n, c->pattern_m);
      cJSON_AddStringToObject(o, "pattern", p);
    } else {
      cJSON_AddStringToObject(o, "pattern", "unstructured");
    }
    cJSON_AddStringToObject(o, "scope", rcc_scope_name(c->scope));
    cJSON_AddBoolToObject(o, "rescale", c->rescale);
    cJSON_AddNumberToObject(o, "block_size", c->block_size);
    add_number(o, "damp_percent", c->damp_percent);
    break;
  }
  case RCC_STAGE_NULLU: {
    const rcc_nullu_config_t *c = &st->config.nullu;
    add_number(o, "energy_threshold", c->energy_threshold);
    add_number(o, "rank_reduction_ratio", c->rank_reduction_ratio);
    cJSON_AddNumberToObject(o, "min_rank", c->min_rank);
    add_number(o, "damp_percent", c->damp_percent);
    break;
  }
  case RCC_STAGE_ALPHAEDIT: {
    const rcc_alphaedit_config_t *c = &st->config.alphaedit;
    add_number(o, "regularization", c->regularization);
    cJSON_AddBoolToObject(o, "null_space", c->null_space);
    if (c->null_space) add_number(o, "null_space_energy", c->null_space_energy);
    break;
  }
  }
  return o;
}

/* Where Slurm ran this process (its variables as rank 0 sees them), or JSON null outside
 * Slurm. Numbers stay numbers; a variable Slurm did not set is left out. */
static cJSON *slurm_json(void) {
  static const struct {
    const char *key, *var;
    bool number;
  } vars[] = {{"job_id", "SLURM_JOB_ID", true},
              {"array_job_id", "SLURM_ARRAY_JOB_ID", true},
              {"array_task_id", "SLURM_ARRAY_TASK_ID", true},
              {"procid", "SLURM_PROCID", true},
              {"ntasks", "SLURM_NTASKS", true},
              {"localid", "SLURM_LOCALID", true},
              {"restart_count", "SLURM_RESTART_COUNT", true},
              {"nodename", "SLURMD_NODENAME", false}};
  if (!getenv("SLURM_JOB_ID")) return cJSON_CreateNull();
  cJSON *o = cJSON_CreateObject();
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
    const char *v = getenv(vars[i].var);
    char *end;
    if (!v || !*v) continue;
    long long n = strtoll(v, &end, 10);
    if (vars[i].number && !*end)
      cJSON_AddNumberToObject(o, vars[i].key, (double)n);
    else
      cJSON_AddStringToObject(o, vars[i].key, v);
  }
  return o;
}

static cJSON *report_json(const rcc_report_t *r) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "job", r->job->path);
  cJSON_AddStringToObject(o, "job_sha256", r->job->sha256_hex);
  cJSON_AddStringToObject(o, "outcome", r->outcome);
  cJSON_AddNumberToObject(o, "ranks", r->ranks);
  cJSON_AddNumberToObject(o, "resumed_after_stage", r->resumed_after);
  cJSON_AddStringToObject(o, "backend", r->backend);
  cJSON_AddItemToObject(o, "slurm", slurm_json());
  cJSON *model = cJSON_AddObjectToObject(o, "model");
  cJSON_AddStringToObject(model, "path", r->job->model);
  cJSON_AddNumberToObject(model, "params_total", (double)r->params_total);
  cJSON_AddNumberToObject(model, "params_linear", (double)r->params_linear);
  cJSON_AddNumberToObject(model, "params_compressible", (double)r->params_compressible);
  cJSON_AddNumberToObject(model, "bytes", (double)r->bytes_original);
  cJSON *data = cJSON_AddObjectToObject(o, "data");
  cJSON_AddStringToObject(data, "calibration", r->job->data.calibration);
  cJSON_AddNumberToObject(data, "calibration_samples", r->calibration_samples);
  cJSON_AddStringToObject(data, "validation", r->job->data.validation);
  cJSON_AddNumberToObject(data, "validation_samples", r->validation_samples);
  cJSON *base = cJSON_AddObjectToObject(o, "baseline");
  cJSON_AddStringToObject(base, "metric", r->metric_name);
  add_number(base, "value", r->baseline);
  cJSON *stages = cJSON_AddArrayToObject(o, "stages");
  for (int i = 0; i < r->n_stages; i++) {
    const rcc_report_stage_t *s = &r->stages[i];
    cJSON *so = cJSON_CreateObject();
    cJSON_AddStringToObject(so, "name", rcc_stage_kind_name(s->stage->kind));
    cJSON_AddStringToObject(so, "method", rcc_stage_method_name(s->stage));
    cJSON *atts = cJSON_AddArrayToObject(so, "attempts");
    for (int a = 0; a < s->n_attempts; a++) {
      const rcc_report_attempt_t *at = &s->attempts[a];
      cJSON *ao = cJSON_CreateObject();
      cJSON_AddItemToObject(ao, "config", stage_config_json(&at->config));
      add_number(ao, "metric", at->metric);
      add_number(ao, "retention", at->retention);
      cJSON_AddStringToObject(ao, "decision", at->decision ? at->decision : "error");
      if (at->note[0]) cJSON_AddStringToObject(ao, "note", at->note);
      add_distill(ao, at);
      cJSON_AddItemToArray(atts, ao);
    }
    cJSON_AddNumberToObject(so, "params_stored", (double)s->params_stored);
    add_number(so, "seconds", s->seconds);
    cJSON_AddItemToArray(stages, so);
  }
  cJSON *fin = cJSON_AddObjectToObject(o, "final");
  cJSON_AddNumberToObject(fin, "params_stored", (double)r->final_params_stored);
  add_number(fin, "compression", 1.0 - (double)r->final_params_stored / (double)r->params_total);
  cJSON_AddNumberToObject(fin, "bytes_packed", (double)r->bytes_packed);
  add_number(fin, "metric", r->final_metric);
  add_number(fin, "retention", r->final_metric / r->baseline);
  add_number(fin, "seconds", r->seconds_total);
  cJSON *phases = cJSON_AddObjectToObject(o, "phases_seconds");
  for (int p = 0; p < RCC_PHASE_COUNT; p++)
    add_number(phases, rcc_phase_names[p], r->phase_seconds[p]);
  cJSON *layers = cJSON_AddArrayToObject(o, "layers");
  for (int i = 0; i < r->n_layers; i++) {
    const rcc_report_layer_t *l = &r->layers[i];
    cJSON *lo = cJSON_CreateObject();
    cJSON_AddStringToObject(lo, "name", l->name);
    cJSON *shape = cJSON_AddArrayToObject(lo, "shape");
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(l->m));
    cJSON_AddItemToArray(shape, cJSON_CreateNumber(l->n));
    cJSON_AddNumberToObject(lo, "nnz", (double)l->nnz);
    cJSON_AddNumberToObject(lo, "rank", l->rank);
    cJSON_AddBoolToObject(lo, "alpha", l->has_alpha);
    add_number(lo, "rel_error", l->rel_error);
    cJSON_AddNumberToObject(lo, "owner_rank", l->owner_rank);
    if (l->grassmann_dare_nullu >= 0) add_number(lo, "dare_to_nullu", l->grassmann_dare_nullu);
    cJSON_AddItemToArray(layers, lo);
  }
  return o;
}

void rcc_report_print_summary(const rcc_report_t *r, FILE *out) {
  fprintf(out, "| stage | method | attempts | decision | top-1 %% | retention | params stored | "
               "seconds |\n");
  fprintf(out, "|---|---|---|---|---|---|---|---|\n");
  fprintf(out, "| dense | - | - | - | %.2f | 1.0000 | %lld | - |\n", r->baseline,
          (long long)r->params_total);
  for (int i = 0; i < r->n_stages; i++) {
    const rcc_report_stage_t *s = &r->stages[i];
    const rcc_report_attempt_t *last = &s->attempts[s->n_attempts - 1];
    fprintf(out, "| %s | %s | %d | %s | %.2f | %.4f | %lld | %.1f |\n",
            rcc_stage_kind_name(s->stage->kind), rcc_stage_method_name(s->stage), s->n_attempts,
            last->decision ? last->decision : "error", last->metric, last->retention,
            (long long)s->params_stored, s->seconds);
  }
  fprintf(out,
          "\ncompression %.4f (params stored %lld of %lld, embeddings and every uncompressed "
          "tensor counted in full); packed file %lld bytes (original %lld); final top-1 %.2f%%, "
          "retention %.4f; %s in %.1f s\n",
          1.0 - (double)r->final_params_stored / (double)r->params_total,
          (long long)r->final_params_stored, (long long)r->params_total, (long long)r->bytes_packed,
          (long long)r->bytes_original, r->final_metric, r->final_metric / r->baseline, r->outcome,
          r->seconds_total);
}

char *rcc_report_history_json(const rcc_report_t *r) {
  cJSON *o = cJSON_CreateObject(), *stages = cJSON_AddArrayToObject(o, "stages");
  for (int i = 0; i < r->n_stages; i++) {
    const rcc_report_stage_t *s = &r->stages[i];
    cJSON *so = cJSON_CreateObject(), *atts = cJSON_AddArrayToObject(so, "attempts");
    cJSON_AddNumberToObject(so, "job_index", s->job_index);
    cJSON_AddNumberToObject(so, "params_stored", (double)s->params_stored);
    add_number(so, "seconds", s->seconds);
    for (int a = 0; a < s->n_attempts; a++) {
      const rcc_report_attempt_t *at = &s->attempts[a];
      cJSON *ao = cJSON_CreateObject();
      cJSON_AddNumberToObject(ao, "level", at->level);
      add_number(ao, "metric", at->metric);
      add_number(ao, "retention", at->retention);
      cJSON_AddStringToObject(ao, "decision", at->decision ? at->decision : "error");
      cJSON_AddStringToObject(ao, "note", at->note);
      add_distill(ao, at);
      cJSON_AddItemToArray(atts, ao);
    }
    cJSON_AddItemToArray(stages, so);
  }
  cJSON *g = cJSON_AddArrayToObject(o, "dare_to_nullu");
  for (int i = 0; i < r->n_linears; i++)
    cJSON_AddItemToArray(g, cJSON_CreateNumber(r->dare_to_nullu[i]));
  char *text = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return text;
}

/* The decision strings are static: map a stored one back to its constant. */
static const char *decision_constant(const char *d) {
  static const char *known[] = {"commit", "retry", "rollback", "abort", "commit-below-threshold"};
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
    if (d && !strcmp(d, known[i])) return known[i];
  return NULL;
}

rcc_status_t rcc_report_history_load(rcc_report_t *r, const char *json) {
  cJSON *o = cJSON_Parse(json);
  const cJSON *stages = cJSON_GetObjectItemCaseSensitive(o, "stages"), *so;
  rcc_status_t st =
      cJSON_IsArray(stages) ? RCC_OK : rcc_fail(RCC_ERR_FORMAT, "checkpoint history is not valid");
  cJSON_ArrayForEach(so, stages) {
    if (st != RCC_OK) break;
    int job_index = (int)number_or_nan(so, "job_index");
    const cJSON *atts = cJSON_GetObjectItemCaseSensitive(so, "attempts");
    int n_att = cJSON_GetArraySize(atts);
    if (job_index < 0 || job_index >= r->job->num_stages || n_att < 1 ||
        r->n_stages >= r->job->num_stages) {
      st = rcc_fail(RCC_ERR_FORMAT, "checkpoint history names a stage this job does not have");
      break;
    }
    rcc_report_stage_t *s = &r->stages[r->n_stages];
    *s = (rcc_report_stage_t){.stage = &r->job->stages[job_index],
                              .job_index = job_index,
                              .params_stored = (int64_t)number_or_nan(so, "params_stored"),
                              .seconds = number_or_nan(so, "seconds")};
    if (!(s->attempts = calloc((size_t)n_att, sizeof *s->attempts))) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    r->n_stages++;
    const cJSON *ao;
    cJSON_ArrayForEach(ao, atts) {
      rcc_report_attempt_t *a = &s->attempts[s->n_attempts++];
      a->level = (int)number_or_nan(ao, "level");
      rcc_stage_soften(s->stage, a->level, &a->config);
      a->metric = number_or_nan(ao, "metric");
      a->retention = number_or_nan(ao, "retention");
      const cJSON *d = cJSON_GetObjectItemCaseSensitive(ao, "decision");
      a->decision = decision_constant(cJSON_IsString(d) ? d->valuestring : NULL);
      const cJSON *note = cJSON_GetObjectItemCaseSensitive(ao, "note");
      if (cJSON_IsString(note)) snprintf(a->note, sizeof a->note, "%s", note->valuestring);
      load_distill(ao, a);
    }
  }
  const cJSON *g = cJSON_GetObjectItemCaseSensitive(o, "dare_to_nullu");
  if (st == RCC_OK && cJSON_IsArray(g) && cJSON_GetArraySize(g) == r->n_linears)
    for (int i = 0; i < r->n_linears; i++) {
      const cJSON *v = cJSON_GetArrayItem(g, i);
      r->dare_to_nullu[i] = cJSON_IsNumber(v) ? v->valuedouble : -1.0;
    }
  cJSON_Delete(o);
  return st;
}

/* Writes text to dir/name through a temporary file and a rename. */
static rcc_status_t write_atomic(const char *dir, const char *name, const char *text) {
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
  int ok = fputs(text, f) >= 0;
  ok &= fclose(f) == 0;
  if (!ok || rename(tmp, path) != 0) {
    unlink(tmp);
    return rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  }
  return RCC_OK;
}

rcc_status_t rcc_report_write(const rcc_report_t *r, const char *dir) {
  cJSON *o = report_json(r);
  char *json = o ? cJSON_Print(o) : NULL;
  cJSON_Delete(o);
  if (!json) return rcc_fail(RCC_ERR_NOMEM, "out of memory writing report.json");
  size_t n = strlen(json);
  char *with_nl = malloc(n + 2);
  rcc_status_t st = with_nl ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (st == RCC_OK) {
    memcpy(with_nl, json, n);
    memcpy(with_nl + n, "\n", 2);
    st = write_atomic(dir, "report.json", with_nl);
  }
  free(with_nl);
  free(json);
  RCC_TRY(st);
  /* report.md: the summary table, then one line per layer. */
  char *md = NULL;
  size_t md_len = 0;
  FILE *f = open_memstream(&md, &md_len);
  if (!f) return rcc_fail(RCC_ERR_NOMEM, "out of memory writing report.md");
  fprintf(f, "# rcc-dist report\n\njob `%s` (sha256 %.12s…), model `%s`, %d rank%s, %s\n\n",
          r->job->path, r->job->sha256_hex, r->job->model, r->ranks, r->ranks > 1 ? "s" : "",
          r->backend);
  fprintf(f, "validation: %s, %d images, zero-shot top-1\n\n", r->job->data.validation,
          r->validation_samples);
  rcc_report_print_summary(r, f);
  fprintf(f, "\n## Layers\n\n| layer | shape | nnz | rank | alpha | rel. error "
             "|\n|---|---|---|---|---|---|\n");
  for (int i = 0; i < r->n_layers; i++) {
    const rcc_report_layer_t *l = &r->layers[i];
    fprintf(f, "| %s | %dx%d | %lld | %d | %s | %.4f |\n", l->name, l->m, l->n, (long long)l->nnz,
            l->rank, l->has_alpha ? "yes" : "no", l->rel_error);
  }
  fclose(f);
  st = write_atomic(dir, "report.md", md);
  free(md);
  return st;
}
