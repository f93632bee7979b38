/* Job files: the YAML that tells rcc-dist what to compress, how, and how good the result
 * must stay (DESIGN.md section 6 fixes the keys; examples/README.md lists them all).
 * rcc_job_load parses and checks a whole file in one pass, fills every default, and
 * reports every problem it finds like a compiler (`job.yaml:12:7: error: ...` with the
 * source line and a caret). Paths in a job (model, output, base_model, dataset specs)
 * are used as written: relative paths are relative to the current working directory,
 * as for any command-line tool, not to the job file's folder. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

typedef enum { RCC_STAGE_DARE, RCC_STAGE_NULLU, RCC_STAGE_ALPHAEDIT } rcc_stage_kind_t;

typedef enum {
  RCC_DARE_METHOD_MAGNITUDE, /* smallest |W| */
  RCC_DARE_METHOD_DARE,      /* random drop of W - W_base, needs base_model */
  RCC_DARE_METHOD_WANDA,     /* |W_ij| * ||X_j|| */
  RCC_DARE_METHOD_SPARSEGPT, /* OBS with H = X X^T */
} rcc_dare_method_t;

#include "compress/schedule.h" /* rcc_schedule_t */

typedef enum { RCC_SCOPE_LAYER, RCC_SCOPE_GLOBAL } rcc_scope_t;

typedef enum {
  RCC_NULLU_METHOD_SVD,      /* truncated SVD of W */
  RCC_NULLU_METHOD_WHITENED, /* SVD of W L, L = chol(H) (SVD-LLM) */
  RCC_NULLU_METHOD_RESIDUAL, /* low rank fit to what pruning removed */
} rcc_nullu_method_t;

typedef enum {
  RCC_ALPHAEDIT_METHOD_CLOSED_FORM, /* per-channel least squares from H */
  RCC_ALPHAEDIT_METHOD_DISTILL,     /* knowledge distillation with AdamW */
} rcc_alphaedit_method_t;

typedef enum { RCC_IMPORTANCE_ACTIVATION, RCC_IMPORTANCE_GRADIENT } rcc_importance_t;

/* What alphaedit `distill` trains (bits of rcc_alphaedit_config_t.trainable). */
enum {
  RCC_TRAIN_ALPHA = 1u << 0,         /* per-output-channel scale of every compressed layer */
  RCC_TRAIN_LOWRANK = 1u << 1,       /* U and V of low-rank layers */
  RCC_TRAIN_SPARSE_VALUES = 1u << 2, /* the kept entries of S (mask frozen) */
  RCC_TRAIN_BIAS = 1u << 3,          /* biases of every linear layer, dense ones included */
  RCC_TRAIN_LAYERNORM = 1u << 4,     /* weights and biases of every LayerNorm */
};

typedef enum { RCC_EMBEDDING_LOSS_COSINE, RCC_EMBEDDING_LOSS_MSE } rcc_embedding_loss_t;

typedef enum { RCC_ON_FAIL_RETRY, RCC_ON_FAIL_ROLLBACK, RCC_ON_FAIL_ABORT } rcc_on_fail_t;

/* A place in the job file, 1-based (0, 0 when the key was not written). */
typedef struct {
  int line, col;
} rcc_job_pos_t;

typedef struct {
  rcc_dare_method_t method;
  double target_sparsity; /* [0, 1) */
  int num_iterations;     /* >= 1: sparsity reached in this many steps */
  rcc_schedule_t schedule;
  int pattern_n, pattern_m; /* N:M (0 < N <= M); both 0 for unstructured */
  rcc_scope_t scope;        /* global only with magnitude */
  bool rescale;             /* keep each row's L1 mass after pruning */
  int block_size;           /* > 0: sparsegpt column block */
  double damp_percent;      /* >= 0: lambda = damp_percent * mean(diag H) */
  /* The seed's fine-tuning after pruning. Accepted and stored so that seed job files load;
   * no stage uses it yet (alphaedit distill is where fine-tuning happens). */
  int fine_tune_epochs; /* >= 0 */
} rcc_dare_config_t;

typedef struct {
  rcc_nullu_method_t method;   /* also written `decomposition_method` (the seed's name) */
  double energy_threshold;     /* (0, 1]: keep this fraction of spectral energy */
  double rank_reduction_ratio; /* (0, 1]: rank at most this fraction of min(m, n) */
  int min_rank;                /* >= 1 */
  double damp_percent;         /* >= 0 */
} rcc_nullu_config_t;

typedef struct {
  rcc_alphaedit_method_t method;
  double regularization;    /* >= 0: lambda of the closed form */
  bool null_space;          /* restrict the update to the null space of K0 */
  double null_space_energy; /* (0, 1]: energy of K0 K0^T the preserved subspace keeps */
  rcc_importance_t importance_metric; /* the seed's key: accepted and recorded, not used */
  double learning_rate;  /* > 0 (distill) */
  int num_epochs;        /* >= 1 (distill) */
  int batch_size;        /* > 0 (distill) */
  double kd_temperature; /* > 0 */
  double kd_weight;      /* [0, 1]: weight of the distillation loss */
  /* distill only: AdamW and its schedule, what trains, when to stop */
  double weight_decay;             /* >= 0, on U, V and S values (alpha is pulled to its start) */
  double warmup_ratio;             /* [0, 1): share of the steps with a linear warm-up */
  double clip_norm;                /* >= 0: global gradient-norm cap; 0 = none */
  int gradient_accumulation;       /* >= 1: batches per optimizer step */
  unsigned trainable;              /* RCC_TRAIN_* bits; alpha always */
  rcc_embedding_loss_t embedding_loss;
  int patience;                    /* >= 0: epochs without a better validation metric; 0 = none */
  int train_samples;               /* >= 0: images of data.calibration; 0 = calibration_samples */
} rcc_alphaedit_config_t;

typedef struct {
  rcc_stage_kind_t kind;
  bool enabled;
  rcc_job_pos_t pos; /* where the stage's list item starts: the runner reports there */
  union {            /* the member named by kind */
    rcc_dare_config_t dare;
    rcc_nullu_config_t nullu;
    rcc_alphaedit_config_t alphaedit;
  } config;
} rcc_stage_t;

typedef struct {
  double performance_threshold; /* (0, 1]: least retention a stage may leave */
  bool rollback_enabled;
  rcc_on_fail_t on_fail;
  int max_retries; /* >= 0 */
} rcc_validation_config_t;

/* Samples for calibration statistics (H = X X^T, column norms) and for the accuracy gate. */
typedef struct {
  char *calibration; /* dataset spec as io/dataset.h reads it: fmnist:train, folder:DIR, ... */
  int calibration_samples; /* > 0 */
  char *validation;        /* dataset spec */
  int validation_samples;  /* > 0 */
  int batch_size;          /* > 0: images per forward pass */
} rcc_job_data_t;

/* The optional `slurm:` section: defaults of `rcc-dist slurm` (slurm/sbatch.h), which its
 * flags override. Held in place (no allocation) and checked as sbatch reads them
 * (slurm/values.h); an empty string is a value not given. */
enum { RCC_JOB_SLURM_TEXT = 128, RCC_JOB_SLURM_MAX_ARGS = 16 };
typedef struct {
  char partition[RCC_JOB_SLURM_TEXT];
  char time[RCC_JOB_SLURM_TEXT];    /* MINUTES, HH:MM:SS, D-HH:MM:SS, UNLIMITED */
  char account[RCC_JOB_SLURM_TEXT];
  char constraint[RCC_JOB_SLURM_TEXT];
  char mem[RCC_JOB_SLURM_TEXT];     /* per node: 64G */
  int nodes;           /* >= 1 (default 1) */
  int gpus_per_node;   /* >= 0; 0: a CPU job (default) */
  int ntasks_per_node; /* >= 1 (default 1); CPU jobs only, a GPU job runs a task per GPU */
  int cpus_per_task;   /* >= 0; 0: Slurm's default */
  char sbatch_args[RCC_JOB_SLURM_MAX_ARGS][2 * RCC_JOB_SLURM_TEXT]; /* more #SBATCH options */
  int num_sbatch_args;
  bool requeue; /* Slurm may requeue the job; it resumes from its checkpoints */
} rcc_job_slurm_t;

typedef struct {
  char *path;         /* the job file as given to rcc_job_load */
  uint8_t sha256[32]; /* of the file's raw bytes */
  char sha256_hex[65];

  char *model; /* HF CLIPModel directory */
  rcc_job_pos_t model_pos;
  char *output;     /* run directory */
  char *backend;    /* "auto", "cpu", "cuda" or "cuda:N" (rcc_backend_init's names) */
  int threads;      /* >= 0; 0 = the backend's default */
  int64_t seed;     /* >= 0 */
  char *base_model; /* NULL when not given */
  rcc_job_pos_t base_model_pos;

  rcc_job_data_t data;

  /* fnmatch(3) patterns on HF parameter prefixes ("vision_model.encoder.layers.3.mlp.fc1"):
   * a layer is compressed when it matches an include and no exclude. */
  char **include;
  int num_include;
  char **exclude;
  int num_exclude;

  rcc_stage_t *stages; /* in order; may be empty (evaluate only) */
  int num_stages;
  rcc_validation_config_t validation;
  int checkpoint_frequency; /* >= 0: checkpoint every this many committed stages; 0 = never */

  rcc_job_slurm_t slurm;
} rcc_job_t;

/* Most errors one load reports before it stops listing them. */
enum { RCC_JOB_MAX_ERRORS = 20 };

/* Reads, parses and checks a job file. On success *out owns everything (free with
 * rcc_job_free). On failure *out is NULL and the status says what kind of failure:
 *   RCC_ERR_IO      the file cannot be opened or read;
 *   RCC_ERR_FORMAT  the bytes are not YAML text (bad UTF-8, control characters, too big);
 *   RCC_ERR_ARG     YAML syntax errors and every schema error (unknown keys, types, ranges);
 *   RCC_ERR_NOMEM   out of memory.
 * rcc_last_error() holds the messages (the first ones when they pass its 2 KB), and
 * rcc_job_errors() holds all of them. Whether the model directories exist is not
 * checked here (tests and tools load jobs for models elsewhere): rcc_job_check_paths. */
rcc_status_t rcc_job_load(const char *path, rcc_job_t **out);
/* The same for a job held in memory; `name` stands for the file in messages and in
 * job->path (rcc_job_check_paths re-reads it to quote source lines, when it exists). */
rcc_status_t rcc_job_parse(const char *name, const char *text, size_t len, rcc_job_t **out);
void rcc_job_free(rcc_job_t *job);

/* The complete error text of this thread's last failed rcc_job_load (every error, each
 * with its source line and caret), "" after a successful load. Valid until the next load
 * on this thread. */
const char *rcc_job_errors(void);

/* Checks that `model` (and `base_model`, when given) is a directory holding config.json;
 * errors point at the key's value in the job file, with the source line (re-read from
 * job->path). Returns RCC_ERR_ARG with the messages in rcc_last_error()/rcc_job_errors(). */
rcc_status_t rcc_job_check_paths(const rcc_job_t *job);

/* Writes the effective configuration (every default filled in) as YAML that rcc_job_load
 * accepts and that loads into an equal job. */
rcc_status_t rcc_job_to_yaml(const rcc_job_t *job, FILE *out);

/* Names as written in job files ("dare", "sparsegpt", "closed_form", ...), indexed by
 * enum value and ended by NULL. */
extern const char *const rcc_stage_kind_names[];
extern const char *const rcc_dare_method_names[];
extern const char *const rcc_schedule_names[];
extern const char *const rcc_scope_names[];
extern const char *const rcc_nullu_method_names[];
extern const char *const rcc_alphaedit_method_names[];
extern const char *const rcc_importance_names[];
extern const char *const rcc_on_fail_names[];
extern const char *const rcc_embedding_loss_names[];
/* `trainable:` list items, indexed by bit: "alpha", "lowrank", "sparse_values", "bias",
 * "layernorm". */
extern const char *const rcc_trainable_names[];
/* The same, one value at a time ("?" outside the enum). */
const char *rcc_stage_kind_name(rcc_stage_kind_t k);
const char *rcc_dare_method_name(rcc_dare_method_t m);
const char *rcc_schedule_name(rcc_schedule_t s);
const char *rcc_scope_name(rcc_scope_t s);
const char *rcc_nullu_method_name(rcc_nullu_method_t m);
const char *rcc_alphaedit_method_name(rcc_alphaedit_method_t m);
const char *rcc_importance_name(rcc_importance_t i);
const char *rcc_on_fail_name(rcc_on_fail_t f);
const char *rcc_embedding_loss_name(rcc_embedding_loss_t l);
/* The method name of any stage ("sparsegpt", "whitened", "closed_form"). */
const char *rcc_stage_method_name(const rcc_stage_t *stage);

/* Defaults, as a job file that leaves every optional key out gets them. */
void rcc_dare_config_default(rcc_dare_config_t *c);
void rcc_nullu_config_default(rcc_nullu_config_t *c);
void rcc_alphaedit_config_default(rcc_alphaedit_config_t *c);
void rcc_validation_config_default(rcc_validation_config_t *c);
