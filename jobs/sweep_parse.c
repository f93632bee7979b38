/* Sweep file parser: libyaml's document tree -> rcc_sweep_t. Like job_parse.c it records
 * every problem with its file:line:col and goes on, then tries each parameter's bounds (or
 * choices) on the base job through rcc_job_override + rcc_job_parse, so that a key path
 * the job lacks or a range the job refuses is reported at the parameter's key. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "jobs/job_override.h"
#include "jobs/sweep.h"
#include "jobs/yaml_diag.h"

enum { SWEEP_MAX_BYTES = 1 << 20, SWEEP_MAX_ERRORS = 20, SWEEP_MAX_PARAMS = 64 };

const char *const rcc_sampler_names[] = {"grid", "random", "optuna", NULL};
const char *const rcc_metric_names[] = {"retention", "compression", "metric", NULL};

typedef struct {
  yaml_document_t *doc;
  rcc_yaml_diag_t diag;
  rcc_sweep_t *s;
  bool nomem;
} ctx_t;

static void error_at(ctx_t *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void error_at(ctx_t *c, const yaml_node_t *n, const char *fmt, ...) {
  char msg[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rcc_yaml_diag_node_error(&c->diag, n, msg);
}

static yaml_node_t *get(ctx_t *c, int id) { return yaml_document_get_node(c->doc, id); }

static const char *text_of(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static char *dup(ctx_t *c, const char *s) {
  char *d = strdup(s);
  if (!d) c->nomem = true;
  return d;
}

static bool want_string(ctx_t *c, const yaml_node_t *v, const char *key, const char **out) {
  const char *t = text_of(v);
  if (!t || !*t) {
    error_at(c, v, "%s expects a text value", key);
    return false;
  }
  *out = t;
  return true;
}

static bool want_number(ctx_t *c, const yaml_node_t *v, const char *key, double *out) {
  const char *t = text_of(v);
  char *end = NULL;
  errno = 0;
  double x = t ? strtod(t, &end) : 0;
  if (!t || !*t || *end || errno || !isfinite(x)) {
    error_at(c, v, "%s expects a number, got %s", key, t ? t : "a mapping or list");
    return false;
  }
  *out = x;
  return true;
}

static bool want_int(ctx_t *c, const yaml_node_t *v, const char *key, long lo, long *out) {
  const char *t = text_of(v);
  char *end = NULL;
  errno = 0;
  long x = t ? strtol(t, &end, 10) : 0;
  if (!t || !*t || *end || errno || x < lo || x > INT_MAX) {
    error_at(c, v, "%s expects an integer >= %ld, got %s", key, lo, t ? t : "a mapping or list");
    return false;
  }
  *out = x;
  return true;
}

static bool want_bool(ctx_t *c, const yaml_node_t *v, const char *key, bool *out) {
  const char *t = text_of(v);
  if (t && (!strcmp(t, "true") || !strcmp(t, "yes") || !strcmp(t, "on"))) return *out = true;
  if (t && (!strcmp(t, "false") || !strcmp(t, "no") || !strcmp(t, "off"))) return !(*out = false);
  error_at(c, v, "%s expects true or false, got %s", key, t ? t : "a mapping or list");
  return false;
}

static int want_enum(ctx_t *c, const yaml_node_t *v, const char *key, const char *const *names) {
  const char *t = text_of(v);
  size_t n = 0;
  while (names[n])
    n++;
  for (size_t i = 0; t && i < n; i++)
    if (!strcmp(t, names[i])) return (int)i;
  char list[256] = "";
  for (size_t i = 0; i < n; i++) {
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", names[i]);
  }
  const char *guess = t ? rcc_did_you_mean(t, names, n) : NULL;
  if (guess)
    error_at(c, v, "%s: unknown value '%s' (did you mean '%s'?)", key, t, guess);
  else
    error_at(c, v, "%s expects one of: %s", key, list);
  return -1;
}

static void unknown_key(ctx_t *c, const yaml_node_t *k, const char *where,
                        const char *const *known) {
  size_t n = 0;
  while (known[n])
    n++;
  const char *t = text_of(k);
  const char *guess = t ? rcc_did_you_mean(t, known, n) : NULL;
  if (guess)
    error_at(c, k, "unknown key '%s' in %s (did you mean '%s'?)", t ? t : "?", where, guess);
  else
    error_at(c, k, "unknown key '%s' in %s", t ? t : "?", where);
}

/* Whether the key of pair q of mapping v was given before in v: an error, as in job files
 * (the later value would win silently, and what the first one allocated would leak). */
static bool duplicate_key(ctx_t *c, const yaml_node_t *v, const yaml_node_pair_t *q) {
  const yaml_node_t *k = get(c, q->key);
  const char *t = text_of(k);
  for (const yaml_node_pair_t *r = v->data.mapping.pairs.start; t && r < q; r++) {
    const yaml_node_t *first = get(c, r->key);
    if (text_of(first) && !strcmp(t, text_of(first))) {
      error_at(c, k, "duplicate key '%s' (first given at line %d)", t,
               (int)first->start_mark.line + 1);
      return true;
    }
  }
  return false;
}

static bool is_mapping(ctx_t *c, const yaml_node_t *v, const char *what) {
  if (v->type == YAML_MAPPING_NODE) return true;
  error_at(c, v, "%s must be a mapping", what);
  return false;
}

/* A choice's text: the scalar, or "[a, b]" for a list of scalars. */
static char *choice_text(ctx_t *c, const yaml_node_t *v) {
  if (v->type == YAML_SCALAR_NODE) return dup(c, text_of(v));
  if (v->type != YAML_SEQUENCE_NODE) {
    error_at(c, v, "a choice is a value or a list of values, not a mapping");
    return NULL;
  }
  char buf[1024] = "[";
  for (yaml_node_item_t *i = v->data.sequence.items.start; i < v->data.sequence.items.top; i++) {
    const yaml_node_t *item = get(c, *i);
    const char *t = text_of(item);
    if (!t || !*t || strpbrk(t, ",[]")) {
      error_at(c, item, "items of a list choice are plain values without ',', '[' or ']'");
      return NULL;
    }
    size_t used = strlen(buf);
    snprintf(buf + used, sizeof buf - used, "%s%s", i > v->data.sequence.items.start ? ", " : "",
             t);
  }
  size_t used = strlen(buf);
  snprintf(buf + used, sizeof buf - used, "]");
  return dup(c, buf);
}

static void parse_param(ctx_t *c, const yaml_node_t *k, const yaml_node_t *v,
                        rcc_sweep_param_t *p) {
  static const char *const keys[] = {"low", "high", "log", "type", "steps", "choices", NULL};
  static const char *const types[] = {"float", "int", NULL};
  const char *path = text_of(k);
  p->path = dup(c, path ? path : "");
  p->pos = (rcc_job_pos_t){(int)k->start_mark.line + 1, (int)k->start_mark.column + 1};
  p->kind = RCC_PARAM_FLOAT;
  p->steps = 3;
  if (!path || !rcc_job_path_valid(path)) {
    error_at(c, k, "'%s' is not a job key path like cascade.stages[0].config.target_sparsity",
             path ? path : "?");
    return;
  }
  if (!is_mapping(c, v, path)) return;
  const yaml_node_t *low = NULL, *high = NULL, *choices = NULL, *log = NULL;
  for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
    const yaml_node_t *key = get(c, q->key), *val = get(c, q->value);
    const char *name = text_of(key);
    long n;
    if (duplicate_key(c, v, q)) continue;
    if (!name)
      unknown_key(c, key, path, keys);
    else if (!strcmp(name, "low") && want_number(c, val, "low", &p->low))
      low = val;
    else if (!strcmp(name, "high") && want_number(c, val, "high", &p->high))
      high = val;
    else if (!strcmp(name, "log") && want_bool(c, val, "log", &p->log))
      log = val;
    else if (!strcmp(name, "type")) {
      int t = want_enum(c, val, "type", types);
      if (t == 1) p->kind = RCC_PARAM_INT;
    } else if (!strcmp(name, "steps")) {
      if (want_int(c, val, "steps", 1, &n)) p->steps = (int)n;
    } else if (!strcmp(name, "choices")) {
      choices = val;
      if (val->type != YAML_SEQUENCE_NODE) {
        error_at(c, val, "choices must be a list");
        continue;
      }
      int n_items = (int)(val->data.sequence.items.top - val->data.sequence.items.start);
      if (n_items == 0) {
        error_at(c, val, "choices is empty: give at least one value");
        continue;
      }
      p->choices = calloc((size_t)n_items, sizeof *p->choices);
      if (!p->choices) {
        c->nomem = true;
        return;
      }
      for (int i = 0; i < n_items; i++) {
        char *t = choice_text(c, get(c, val->data.sequence.items.start[i]));
        if (!t) continue;
        p->choices[p->num_choices++] = t;
      }
    } else if (strcmp(name, "low") && strcmp(name, "high") && strcmp(name, "log"))
      unknown_key(c, key, path, keys);
  }
  if (choices) {
    if (low || high) error_at(c, low ? low : high, "%s: give either low/high or choices", path);
    p->kind = RCC_PARAM_CHOICE;
    return;
  }
  if (!strcmp(path, RCC_JOB_ORDER_PATH)) {
    error_at(c, k, "%s takes choices (lists of stage names), not a range", path);
    return;
  }
  if (!low || !high) {
    error_at(c, v, "%s needs low and high (or choices)", path);
    return;
  }
  if (p->low > p->high) error_at(c, low, "low (%g) is above high (%g)", p->low, p->high);
  if (p->log && p->low <= 0) error_at(c, log, "log: true needs low > 0 (low is %g)", p->low);
  if (p->kind == RCC_PARAM_INT && (p->low != floor(p->low) || p->high != floor(p->high)))
    error_at(c, low, "type int needs integer low and high");
}

static void parse_space(ctx_t *c, const yaml_node_t *v) {
  if (!is_mapping(c, v, "space")) return;
  int n = (int)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
  if (n == 0 || n > SWEEP_MAX_PARAMS) {
    error_at(c, v, "space needs 1 to %d key paths, has %d", SWEEP_MAX_PARAMS, n);
    return;
  }
  c->s->params = calloc((size_t)n, sizeof *c->s->params);
  if (!c->s->params) {
    c->nomem = true;
    return;
  }
  for (int i = 0; i < n; i++) {
    yaml_node_pair_t *q = &v->data.mapping.pairs.start[i];
    rcc_sweep_param_t *p = &c->s->params[c->s->num_params++];
    parse_param(c, get(c, q->key), get(c, q->value), p);
    for (int j = 0; j < i; j++)
      if (p->path && c->s->params[j].path && !strcmp(p->path, c->s->params[j].path))
        error_at(c, get(c, q->key), "%s is in the space twice", p->path);
  }
}

static void parse_metric_map(ctx_t *c, const yaml_node_t *v, const char *what, double *out,
                             bool constraint) {
  if (!is_mapping(c, v, what)) return;
  for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
    if (duplicate_key(c, v, q)) continue;
    const yaml_node_t *key = get(c, q->key), *val = get(c, q->value);
    int m = want_enum(c, key, what, rcc_metric_names);
    if (m < 0) continue;
    if (!constraint) {
      want_number(c, val, rcc_metric_names[m], &out[m]);
      continue;
    }
    /* constraints: {compression: {min: 0.3}} */
    if (!is_mapping(c, val, rcc_metric_names[m])) continue;
    for (yaml_node_pair_t *r = val->data.mapping.pairs.start; r < val->data.mapping.pairs.top;
         r++) {
      static const char *const bounds[] = {"min", NULL};
      if (duplicate_key(c, val, r)) continue;
      const char *b = text_of(get(c, r->key));
      if (b && !strcmp(b, "min"))
        want_number(c, get(c, r->value), "min", &out[m]);
      else
        unknown_key(c, get(c, r->key), rcc_metric_names[m], bounds);
    }
  }
}

static void parse_objective(ctx_t *c, const yaml_node_t *v) {
  static const char *const keys[] = {"maximize", "weighted_product", "constraints", NULL};
  rcc_objective_t *o = &c->s->objective;
  if (!is_mapping(c, v, "objective")) return;
  int kinds = 0;
  for (yaml_node_pair_t *q = v->data.mapping.pairs.start; q < v->data.mapping.pairs.top; q++) {
    if (duplicate_key(c, v, q)) continue;
    const yaml_node_t *key = get(c, q->key), *val = get(c, q->value);
    const char *name = text_of(key);
    if (name && !strcmp(name, "maximize")) {
      int m = want_enum(c, val, "maximize", rcc_metric_names);
      if (m >= 0) o->metric = (rcc_metric_t)m;
      o->kind = RCC_OBJECTIVE_MAXIMIZE;
      kinds++;
    } else if (name && !strcmp(name, "weighted_product")) {
      o->kind = RCC_OBJECTIVE_WEIGHTED_PRODUCT;
      parse_metric_map(c, val, "weighted_product", o->weight, false);
      kinds++;
    } else if (name && !strcmp(name, "constraints")) {
      parse_metric_map(c, val, "constraints", o->min, true);
    } else {
      unknown_key(c, key, "objective", keys);
    }
  }
  if (kinds != 1) error_at(c, v, "objective needs exactly one of maximize, weighted_product");
}

/* The value a range bound takes in a job ("0.3", "4"). */
static void bound_text(const rcc_sweep_param_t *p, double x, char *buf, size_t size) {
  rcc_param_value_t v = {.x = p->kind == RCC_PARAM_INT ? round(x) : x};
  rcc_param_value_text(p, &v, buf, size);
}

/* First line of a job parser message without its "name:line:col: error: " prefix. */
static void first_message(const char *errors, char *buf, size_t size) {
  const char *m = strstr(errors, "error: ");
  m = m ? m + 7 : errors;
  size_t n = strcspn(m, "\n");
  snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), m);
}

/* Each parameter alone at its extremes (or each choice) on the base job. */
static void check_on_base(ctx_t *c) {
  rcc_sweep_t *s = c->s;
  for (int i = 0; i < s->num_params; i++) {
    rcc_sweep_param_t *p = &s->params[i];
    if (!p->path || (p->kind == RCC_PARAM_CHOICE && p->num_choices == 0)) continue;
    int tries = p->kind == RCC_PARAM_CHOICE ? p->num_choices : 2;
    for (int t = 0; t < tries; t++) {
      char value[1024];
      if (p->kind == RCC_PARAM_CHOICE)
        snprintf(value, sizeof value, "%s", p->choices[t]);
      else
        bound_text(p, t ? p->high : p->low, value, sizeof value);
      rcc_job_setting_t set = {p->path, value};
      char *yaml = NULL;
      int bad;
      int width = (int)strlen(p->path);
      if (rcc_job_override(s->base, s->base_text, s->base_len, &set, 1, &yaml, &bad) != RCC_OK) {
        rcc_yaml_diag_error(&c->diag, p->pos.line, p->pos.col, width, "%s", rcc_last_error());
        break;
      }
      rcc_job_t *job = NULL;
      if (rcc_job_parse(s->base, yaml, strlen(yaml), &job) != RCC_OK) {
        char msg[1024];
        first_message(rcc_job_errors(), msg, sizeof msg);
        rcc_yaml_diag_error(&c->diag, p->pos.line, p->pos.col, width,
                            "%s = %s: the base job refuses it: %s", p->path, value, msg);
        free(yaml);
        break;
      }
      rcc_job_free(job);
      free(yaml);
    }
  }
}

/* Reads the base job into s->base_text; errors point at `base`'s value. */
static void read_base(ctx_t *c, const yaml_node_t *v, const char *sweep_path) {
  rcc_sweep_t *s = c->s;
  const char *slash = strrchr(sweep_path, '/');
  const char *rel = text_of(v);
  char path[4096];
  if (rel[0] == '/' || !slash)
    snprintf(path, sizeof path, "%s", rel);
  else
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash - sweep_path), sweep_path, rel);
  s->base = dup(c, path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    error_at(c, v, "cannot open base job '%s' (relative to the sweep file's folder): %s", path,
             strerror(errno));
    return;
  }
  s->base_text = malloc(SWEEP_MAX_BYTES + 1);
  if (!s->base_text)
    c->nomem = true;
  else
    s->base_len = fread(s->base_text, 1, SWEEP_MAX_BYTES, f), s->base_text[s->base_len] = 0;
  fclose(f);
  if (!s->base_text) return;
  rcc_job_t *job = NULL;
  if (rcc_job_parse(path, s->base_text, s->base_len, &job) != RCC_OK) {
    char msg[1024];
    first_message(rcc_job_errors(), msg, sizeof msg);
    error_at(c, v, "the base job '%s' is not valid (`rcc-dist validate %s`): %s", path, path, msg);
  }
  rcc_job_free(job);
}

static void parse_root(ctx_t *c, const yaml_node_t *root, const rcc_sweep_overrides_t *ov) {
  static const char *const keys[] = {"base",        "output",  "space", "objective", "trials",
                                     "parallelism", "sampler", "seed",  "repeats",   NULL};
  rcc_sweep_t *s = c->s;
  const yaml_node_t *base = NULL, *space = NULL, *sampler = NULL;
  const char *t;
  long n;
  for (yaml_node_pair_t *q = root->data.mapping.pairs.start; q < root->data.mapping.pairs.top;
       q++) {
    if (duplicate_key(c, root, q)) continue;
    const yaml_node_t *key = get(c, q->key), *val = get(c, q->value);
    const char *name = text_of(key);
    if (!name)
      unknown_key(c, key, "the sweep", keys);
    else if (!strcmp(name, "base"))
      base = want_string(c, val, "base", &t) ? val : NULL;
    else if (!strcmp(name, "output")) {
      if (want_string(c, val, "output", &t)) s->output = dup(c, t);
    } else if (!strcmp(name, "space"))
      space = val;
    else if (!strcmp(name, "objective"))
      parse_objective(c, val);
    else if (!strcmp(name, "trials")) {
      if (want_int(c, val, "trials", 1, &n)) s->trials = (int)n;
    } else if (!strcmp(name, "parallelism")) {
      if (want_int(c, val, "parallelism", 1, &n)) s->parallelism = (int)n;
    } else if (!strcmp(name, "repeats")) {
      if (want_int(c, val, "repeats", 1, &n)) s->repeats = (int)n;
    } else if (!strcmp(name, "seed")) {
      if (want_int(c, val, "seed", 0, &n)) s->seed = n;
    } else if (!strcmp(name, "sampler")) {
      int k = want_enum(c, val, "sampler", rcc_sampler_names);
      if (k >= 0) s->sampler = (rcc_sampler_kind_t)k;
      sampler = val;
    } else
      unknown_key(c, key, "the sweep", keys);
  }
  if (!base) rcc_yaml_diag_error(&c->diag, 1, 1, 1, "missing key 'base' (the job file to sweep)");
  if (!space) rcc_yaml_diag_error(&c->diag, 1, 1, 1, "missing key 'space' (what to vary)");
  if (ov && ov->output) {
    free(s->output);
    s->output = dup(c, ov->output);
  }
  if (!s->output)
    rcc_yaml_diag_error(&c->diag, 1, 1, 1, "missing key 'output' (the sweep directory)");
  if (ov && ov->trials > 0) s->trials = ov->trials;
  if (space) parse_space(c, space);
  for (int i = 0; i < s->num_params; i++)
    if (s->repeats > 1 && s->params[i].path && !strcmp(s->params[i].path, "seed"))
      rcc_yaml_diag_error(&c->diag, s->params[i].pos.line, s->params[i].pos.col, 4,
                          "seed is in the space and repeats is %d: give one or the other",
                          s->repeats);
  if (s->repeats > 1 && s->sampler == RCC_SAMPLER_OPTUNA && !(ov && ov->sampler))
    error_at(c, sampler ? sampler : root,
             "repeats needs the grid or random sampler (optuna asks anew for every trial)");
  if (base && c->diag.errors == 0) read_base(c, base, s->path);
  if (c->diag.errors == 0 && s->base_text) check_on_base(c);
}

static _Thread_local char *sweep_errors;

const char *rcc_sweep_errors(void) { return sweep_errors ? sweep_errors : ""; }

rcc_status_t rcc_sweep_parse(const char *name, const char *text, size_t len,
                             const rcc_sweep_overrides_t *ov, rcc_sweep_t **out) {
  *out = NULL;
  free(sweep_errors);
  sweep_errors = NULL;
  ctx_t c = {0};
  rcc_yaml_diag_init(&c.diag, name, text, len, SWEEP_MAX_ERRORS);
  c.s = calloc(1, sizeof *c.s);
  if (!c.s || !(c.s->path = strdup(name))) {
    free(c.s);
    rcc_yaml_diag_free(&c.diag);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", name);
  }
  rcc_sweep_t *s = c.s;
  s->trials = 10;
  s->parallelism = 1;
  s->repeats = 1;
  s->sampler = RCC_SAMPLER_RANDOM;
  s->objective.kind = RCC_OBJECTIVE_MAXIMIZE;
  s->objective.metric = RCC_METRIC_RETENTION;
  for (int m = 0; m < RCC_NUM_METRICS; m++)
    s->objective.min[m] = -INFINITY;

  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) c.nomem = true;
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  if (!c.nomem && !yaml_parser_load(&parser, &doc)) {
    rcc_yaml_diag_error(&c.diag, (int)parser.problem_mark.line + 1,
                        (int)parser.problem_mark.column + 1, 1, "%s",
                        parser.problem ? parser.problem : "not YAML");
  } else if (!c.nomem) {
    c.doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root || root->type != YAML_MAPPING_NODE)
      rcc_yaml_diag_error(&c.diag, 1, 1, 1, "a sweep file is a mapping (base:, space:, ...)");
    else
      parse_root(&c, root, ov);
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  if (ov && ov->sampler) {
    int k = -1;
    for (int i = 0; rcc_sampler_names[i]; i++)
      if (!strcmp(ov->sampler, rcc_sampler_names[i])) k = i;
    if (k < 0)
      rcc_yaml_diag_error(&c.diag, 0, 0, 0, "--sampler %s: use grid, random or optuna",
                          ov->sampler);
    else
      s->sampler = (rcc_sampler_kind_t)k;
    if (s->repeats > 1 && s->sampler == RCC_SAMPLER_OPTUNA)
      rcc_yaml_diag_error(&c.diag, 0, 0, 0, "repeats needs the grid or random sampler");
  }
  rcc_status_t st = RCC_OK;
  if (c.nomem)
    st = rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", name);
  else if (c.diag.errors || c.diag.dropped) {
    const char *all = rcc_yaml_diag_text(&c.diag);
    sweep_errors = strdup(all);
    size_t n = strlen(all);
    while (n > 0 && all[n - 1] == '\n')
      n--;
    st = rcc_fail(RCC_ERR_ARG, "%.*s", (int)(n < 1900 ? n : 1900), all);
  }
  rcc_yaml_diag_free(&c.diag);
  if (st != RCC_OK)
    rcc_sweep_free(s);
  else
    *out = s;
  return st;
}

rcc_status_t rcc_sweep_load(const char *path, const rcc_sweep_overrides_t *ov, rcc_sweep_t **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open sweep file: %s", path, strerror(errno));
  char *text = malloc(SWEEP_MAX_BYTES + 1);
  if (!text) {
    fclose(f);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  }
  size_t len = fread(text, 1, SWEEP_MAX_BYTES + 1, f);
  int err = ferror(f);
  fclose(f);
  rcc_status_t st;
  if (err)
    st = rcc_fail(RCC_ERR_IO, "%s: cannot read sweep file", path);
  else if (len > SWEEP_MAX_BYTES)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: too big for a sweep file", path);
  else
    st = rcc_sweep_parse(path, text, len, ov, out);
  free(text);
  return st;
}

void rcc_sweep_free(rcc_sweep_t *s) {
  if (!s) return;
  for (int i = 0; i < s->num_params; i++) {
    for (int j = 0; j < s->params[i].num_choices; j++)
      free(s->params[i].choices[j]);
    free(s->params[i].choices);
    free(s->params[i].path);
  }
  free(s->params);
  free(s->path);
  free(s->base);
  free(s->base_text);
  free(s->output);
  free(s);
}
