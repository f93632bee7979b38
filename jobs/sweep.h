/* Sweep files: a base job file, a search space over any of its keys, an objective, and how
 * many trials to run how many at a time (docs/SWEEPS.md). rcc_sweep_load parses and checks
 * a sweep file like rcc_job_load does a job file (every problem as `file:line:col: error:`
 * with the source line and a caret), and also tries every parameter on the base job, so
 * that a key path the job does not have is reported at its place in the sweep file before
 * any trial is submitted.
 *
 * Paths: `base` is relative to the sweep file's folder (a sweep ships next to its job);
 * `output` is relative to the current directory, like a job file's `output`. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "jobs/job.h"

typedef enum { RCC_PARAM_FLOAT, RCC_PARAM_INT, RCC_PARAM_CHOICE } rcc_param_kind_t;

/* One dimension of the search space: a job key path and its range or choices. */
typedef struct {
  char *path;        /* "cascade.stages[0].config.target_sparsity", "seed", "cascade.order" */
  rcc_job_pos_t pos; /* of the key in the sweep file */
  rcc_param_kind_t kind;
  double low, high; /* FLOAT and INT: inclusive bounds */
  bool log;         /* sample log(x) uniformly (low > 0) */
  int steps;        /* grid points of a FLOAT/INT range (>= 1) */
  /* CHOICE: each value as text: a scalar as written ("0.5", "wanda"), a list of scalars
   * in flow style ("[dare, nullu]"). The text is the choice's name everywhere (optuna,
   * params.json, the report). */
  char **choices;
  int num_choices;
} rcc_sweep_param_t;

typedef enum { RCC_SAMPLER_GRID, RCC_SAMPLER_RANDOM, RCC_SAMPLER_OPTUNA } rcc_sampler_kind_t;

/* What a trial yields: the fields of its report.json's "final" section. */
typedef enum { RCC_METRIC_RETENTION, RCC_METRIC_COMPRESSION, RCC_METRIC_TOP1 } rcc_metric_t;
enum { RCC_NUM_METRICS = 3 };

typedef enum { RCC_OBJECTIVE_MAXIMIZE, RCC_OBJECTIVE_WEIGHTED_PRODUCT } rcc_objective_kind_t;

/* maximize: the score is the metric itself; weighted_product: prod metric_i ^ weight_i.
 * A trial that breaks a constraint scores -1 - (how far it is off, summed), below every
 * trial that keeps them (scores of kept constraints are >= 0). */
typedef struct {
  rcc_objective_kind_t kind;
  rcc_metric_t metric;            /* maximize */
  double weight[RCC_NUM_METRICS]; /* weighted_product; 0 = not in the product */
  double min[RCC_NUM_METRICS];    /* constraints: -INFINITY when none */
} rcc_objective_t;

typedef struct {
  char *path;      /* the sweep file as given */
  char *base;      /* the base job file: `base` joined to the sweep file's folder */
  char *base_text; /* its bytes (NUL-terminated) */
  size_t base_len;
  char *output; /* sweep directory, as written or overridden */
  rcc_sweep_param_t *params;
  int num_params;
  rcc_objective_t objective;
  int trials;      /* >= 1 */
  int parallelism; /* >= 1 */
  int repeats;     /* >= 1: each configuration runs this many times, with seeds seed + r */
  rcc_sampler_kind_t sampler;
  int64_t seed;
} rcc_sweep_t;

/* Overrides from the command line (NULL / 0 = keep the file's). */
typedef struct {
  const char *sampler;
  int trials;
  const char *output;
} rcc_sweep_overrides_t;

/* Reads and checks a sweep file and its base job. RCC_ERR_ARG with every message in
 * rcc_last_error() (the first 2 KB) and rcc_sweep_errors() (all of them); RCC_ERR_IO when
 * a file cannot be read. */
rcc_status_t rcc_sweep_load(const char *path, const rcc_sweep_overrides_t *ov, rcc_sweep_t **out);
/* The same for text in memory; `name` stands for the file (its folder anchors `base`). */
rcc_status_t rcc_sweep_parse(const char *name, const char *text, size_t len,
                             const rcc_sweep_overrides_t *ov, rcc_sweep_t **out);
void rcc_sweep_free(rcc_sweep_t *s);
const char *rcc_sweep_errors(void);

extern const char *const rcc_sampler_names[]; /* by rcc_sampler_kind_t, NULL-ended */
extern const char *const rcc_metric_names[];  /* "retention", "compression", "metric" */

/* A trial's parameter values, one per rcc_sweep_param_t: x for FLOAT/INT (INT holds an
 * integer), choice for CHOICE. */
typedef struct {
  double x;
  int choice;
} rcc_param_value_t;

/* The text a value takes in the job file and in params.json ("0.45", "3", "wanda",
 * "[dare, nullu]"); %.6g for floats. */
void rcc_param_value_text(const rcc_sweep_param_t *p, const rcc_param_value_t *v, char *buf,
                          size_t size);

/* The objective's score of a trial's metrics (indexed by rcc_metric_t); *feasible says
 * whether every constraint holds. */
double rcc_objective_score(const rcc_objective_t *o, const double metrics[RCC_NUM_METRICS],
                           bool *feasible);
