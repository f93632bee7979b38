/* Job configuration: defaults, names of enum values, freeing, and writing the effective
 * configuration back as YAML (the parser is in job_parse.c). */
#include "jobs/job.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void rcc_dare_config_default(rcc_dare_config_t *c) {
  *c = (rcc_dare_config_t){.method = RCC_DARE_METHOD_MAGNITUDE,
                           .target_sparsity = 0.5,
                           .num_iterations = 1,
                           .schedule = RCC_SCHEDULE_LINEAR,
                           .scope = RCC_SCOPE_LAYER,
                           .rescale = false,
                           .block_size = 128,
                           .damp_percent = 0.01,
                           .fine_tune_epochs = 0};
}

void rcc_nullu_config_default(rcc_nullu_config_t *c) {
  *c = (rcc_nullu_config_t){.method = RCC_NULLU_METHOD_SVD,
                            .energy_threshold = 0.95,
                            .rank_reduction_ratio = 0.5,
                            .min_rank = 1,
                            .damp_percent = 0.01};
}

void rcc_alphaedit_config_default(rcc_alphaedit_config_t *c) {
  *c = (rcc_alphaedit_config_t){.method = RCC_ALPHAEDIT_METHOD_CLOSED_FORM,
                                .regularization = 0.001,
                                .null_space = false,
                                .null_space_energy = 0.99,
                                .importance_metric = RCC_IMPORTANCE_ACTIVATION,
                                .learning_rate = 0.001,
                                .num_epochs = 1,
                                .batch_size = 32,
                                .kd_temperature = 2.0,
                                .kd_weight = 0.5,
                                .weight_decay = 0.01,
                                .warmup_ratio = 0.1,
                                .clip_norm = 1.0,
                                .gradient_accumulation = 1,
                                .trainable = RCC_TRAIN_ALPHA,
                                .embedding_loss = RCC_EMBEDDING_LOSS_COSINE,
                                .patience = 2,
                                .train_samples = 0};
}

void rcc_validation_config_default(rcc_validation_config_t *c) {
  *c = (rcc_validation_config_t){.performance_threshold = 0.95,
                                 .rollback_enabled = true,
                                 .on_fail = RCC_ON_FAIL_RETRY,
                                 .max_retries = 2};
}

const char *const rcc_stage_kind_names[] = {"dare", "nullu", "alphaedit", NULL};
const char *const rcc_dare_method_names[] = {"magnitude", "dare", "wanda", "sparsegpt", NULL};
const char *const rcc_schedule_names[] = {"linear", "cosine", "cubic", NULL};
const char *const rcc_scope_names[] = {"layer", "global", NULL};
const char *const rcc_nullu_method_names[] = {"svd", "whitened", "residual", NULL};
const char *const rcc_alphaedit_method_names[] = {"closed_form", "distill", NULL};
const char *const rcc_importance_names[] = {"activation", "gradient", NULL};
const char *const rcc_on_fail_names[] = {"retry", "rollback", "abort", NULL};
const char *const rcc_embedding_loss_names[] = {"cosine", "mse", NULL};
const char *const rcc_trainable_names[] = {"alpha", "lowrank",   "sparse_values",
                                           "bias",  "layernorm", NULL};

/* names[v], or "?" for a value outside the enum (a corrupted struct, never a job file). */
static const char *name_of(const char *const *names, int v) {
  for (int i = 0; names[i]; i++)
    if (i == v) return names[i];
  return "?";
}

const char *rcc_stage_kind_name(rcc_stage_kind_t k) {
  return name_of(rcc_stage_kind_names, (int)k);
}
const char *rcc_dare_method_name(rcc_dare_method_t m) {
  return name_of(rcc_dare_method_names, (int)m);
}
const char *rcc_schedule_name(rcc_schedule_t s) { return name_of(rcc_schedule_names, (int)s); }
const char *rcc_scope_name(rcc_scope_t s) { return name_of(rcc_scope_names, (int)s); }
const char *rcc_nullu_method_name(rcc_nullu_method_t m) {
  return name_of(rcc_nullu_method_names, (int)m);
}
const char *rcc_alphaedit_method_name(rcc_alphaedit_method_t m) {
  return name_of(rcc_alphaedit_method_names, (int)m);
}
const char *rcc_importance_name(rcc_importance_t i) {
  return name_of(rcc_importance_names, (int)i);
}
const char *rcc_on_fail_name(rcc_on_fail_t f) { return name_of(rcc_on_fail_names, (int)f); }
const char *rcc_embedding_loss_name(rcc_embedding_loss_t l) {
  return name_of(rcc_embedding_loss_names, (int)l);
}

const char *rcc_stage_method_name(const rcc_stage_t *stage) {
  switch (stage->kind) {
  case RCC_STAGE_DARE: return rcc_dare_method_name(stage->config.dare.method);
  case RCC_STAGE_NULLU: return rcc_nullu_method_name(stage->config.nullu.method);
  case RCC_STAGE_ALPHAEDIT: return rcc_alphaedit_method_name(stage->config.alphaedit.method);
  }
  return "?";
}

static void free_strings(char **v, int n) {
  for (int i = 0; i < n; i++)
    free(v[i]);
  free(v);
}

void rcc_job_free(rcc_job_t *job) {
  if (!job) return;
  free(job->path);
  free(job->model);
  free(job->output);
  free(job->backend);
  free(job->base_model);
  free(job->data.calibration);
  free(job->data.validation);
  free_strings(job->include, job->num_include);
  free_strings(job->exclude, job->num_exclude);
  free(job->stages);
  free(job);
}

/* ---- writing YAML ------------------------------------------------------------------- */

/* A double-quoted YAML string: always quoted so that paths like "1e3" or "yes" stay
 * strings, with the escapes YAML defines for quotes, backslashes and control bytes. */
static void put_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

/* The shortest "%.*g" that reads back as the same double, so that 0.001 stays "0.001"
 * and the round trip is exact. The parser accepts integers where numbers are expected. */
static void put_double(FILE *out, double v) {
  char buf[40];
  for (int prec = 6; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
}

static void put_key_double(FILE *out, const char *indent, const char *key, double v) {
  fprintf(out, "%s%s: ", indent, key);
  put_double(out, v);
  fputc('\n', out);
}

static const char *yes_no(bool b) { return b ? "true" : "false"; }

static void put_list(FILE *out, const char *indent, const char *key, char **v, int n) {
  fprintf(out, "%s%s: [", indent, key);
  for (int i = 0; i < n; i++) {
    if (i) fputs(", ", out);
    put_string(out, v[i]);
  }
  fputs("]\n", out);
}

static void put_stage(FILE *out, const rcc_stage_t *st) {
  const char *in = "        ";
  fprintf(out, "    - name: %s\n      enabled: %s\n      config:\n", rcc_stage_kind_name(st->kind),
          yes_no(st->enabled));
  fprintf(out, "%smethod: %s\n", in, rcc_stage_method_name(st));
  switch (st->kind) {
  case RCC_STAGE_DARE: {
    const rcc_dare_config_t *c = &st->config.dare;
    put_key_double(out, in, "target_sparsity", c->target_sparsity);
    fprintf(out, "%snum_iterations: %d\n", in, c->num_iterations);
    fprintf(out, "%sschedule: %s\n", in, rcc_schedule_name(c->schedule));
    if (c->pattern_m > 0)
      fprintf(out, "%spattern: \"%d:%d\"\n", in, c->pattern_n, c->pattern_m);
    else
      fprintf(out, "%spattern: unstructured\n", in);
    fprintf(out, "%sscope: %s\n", in, rcc_scope_name(c->scope));
    fprintf(out, "%srescale: %s\n", in, yes_no(c->rescale));
    fprintf(out, "%sblock_size: %d\n", in, c->block_size);
    put_key_double(out, in, "damp_percent", c->damp_percent);
    fprintf(out, "%sfine_tune_epochs: %d\n", in, c->fine_tune_epochs);
    break;
  }
  case RCC_STAGE_NULLU: {
    const rcc_nullu_config_t *c = &st->config.nullu;
    put_key_double(out, in, "energy_threshold", c->energy_threshold);
    put_key_double(out, in, "rank_reduction_ratio", c->rank_reduction_ratio);
    fprintf(out, "%smin_rank: %d\n", in, c->min_rank);
    put_key_double(out, in, "damp_percent", c->damp_percent);
    break;
  }
  case RCC_STAGE_ALPHAEDIT: {
    const rcc_alphaedit_config_t *c = &st->config.alphaedit;
    put_key_double(out, in, "regularization", c->regularization);
    fprintf(out, "%snull_space: %s\n", in, yes_no(c->null_space));
    put_key_double(out, in, "null_space_energy", c->null_space_energy);
    fprintf(out, "%simportance_metric: %s\n", in, rcc_importance_name(c->importance_metric));
    put_key_double(out, in, "learning_rate", c->learning_rate);
    fprintf(out, "%snum_epochs: %d\n", in, c->num_epochs);
    fprintf(out, "%sbatch_size: %d\n", in, c->batch_size);
    put_key_double(out, in, "kd_temperature", c->kd_temperature);
    put_key_double(out, in, "kd_weight", c->kd_weight);
    put_key_double(out, in, "weight_decay", c->weight_decay);
    put_key_double(out, in, "warmup_ratio", c->warmup_ratio);
    put_key_double(out, in, "clip_norm", c->clip_norm);
    fprintf(out, "%sgradient_accumulation: %d\n", in, c->gradient_accumulation);
    fprintf(out, "%strainable: [", in);
    for (int b = 0, first = 1; rcc_trainable_names[b]; b++)
      if (c->trainable & (1u << b)) {
        fprintf(out, "%s%s", first ? "" : ", ", rcc_trainable_names[b]);
        first = 0;
      }
    fputs("]\n", out);
    fprintf(out, "%sembedding_loss: %s\n", in, rcc_embedding_loss_name(c->embedding_loss));
    fprintf(out, "%spatience: %d\n", in, c->patience);
    fprintf(out, "%strain_samples: %d\n", in, c->train_samples);
    break;
  }
  }
}

rcc_status_t rcc_job_to_yaml(const rcc_job_t *job, FILE *out) {
  if (!job->model || !job->output || !job->backend || !job->data.calibration ||
      !job->data.validation)
    return rcc_fail(RCC_ERR_ARG, "%s: job has no model, output, backend or dataset to write",
                    job->path ? job->path : "job");
  fputs("# Effective configuration (every default filled in)", out);
  if (job->path) {
    fputs(" of ", out);
    /* The path goes into a comment: a line break in it would end the comment. */
    for (const char *p = job->path; *p; p++)
      fputc(*p == '\n' || *p == '\r' ? ' ' : *p, out);
  }
  fprintf(out, "\n# source sha256 %s\n", job->sha256_hex);
  fputs("model: ", out);
  put_string(out, job->model);
  fputs("\noutput: ", out);
  put_string(out, job->output);
  fputs("\nbackend: ", out);
  put_string(out, job->backend);
  fprintf(out, "\nthreads: %d\nseed: %lld\n", job->threads, (long long)job->seed);
  if (job->base_model) {
    fputs("base_model: ", out);
    put_string(out, job->base_model);
    fputc('\n', out);
  }
  fputs("data:\n  calibration: ", out);
  put_string(out, job->data.calibration);
  fprintf(out, "\n  calibration_samples: %d\n  validation: ", job->data.calibration_samples);
  put_string(out, job->data.validation);
  fprintf(out, "\n  validation_samples: %d\n  batch_size: %d\n", job->data.validation_samples,
          job->data.batch_size);
  fputs("layers:\n", out);
  put_list(out, "  ", "include", job->include, job->num_include);
  put_list(out, "  ", "exclude", job->exclude, job->num_exclude);
  fputs("cascade:\n", out);
  if (job->num_stages == 0)
    fputs("  stages: []\n", out);
  else
    fputs("  stages:\n", out);
  for (int i = 0; i < job->num_stages; i++)
    put_stage(out, &job->stages[i]);
  const rcc_validation_config_t *v = &job->validation;
  fputs("  validation:\n", out);
  put_key_double(out, "    ", "performance_threshold", v->performance_threshold);
  fprintf(out, "    rollback_enabled: %s\n    on_fail: %s\n    max_retries: %d\n",
          yes_no(v->rollback_enabled), rcc_on_fail_name(v->on_fail), v->max_retries);
  fprintf(out, "  checkpoint_frequency: %d\n", job->checkpoint_frequency);
  if (fflush(out) != 0 || ferror(out))
    return rcc_fail(RCC_ERR_IO, "writing the configuration of %s: %s",
                    job->path ? job->path : "job", strerror(errno));
  return RCC_OK;
}
