/* Job file parser: libyaml's document tree -> rcc_job_t, one table per mapping
 * ({key, kind, offsetof(field), range or names or handler}), defaults first. Every
 * problem is recorded with its file:line:col and the parse goes on, so that one run lists
 * all of them (up to RCC_JOB_MAX_ERRORS); the job is returned only when there are none. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <yaml.h>

#include "jobs/job.h"
#include "jobs/sha256.h"
#include "jobs/yaml_diag.h"
#include "slurm/values.h"

/* Job files are a few KB; a bigger input is almost surely the wrong file (a model). */
enum { JOB_MAX_BYTES = 4 << 20 };
/* Most keys in one mapping (the dare config has the most). */
enum { MAX_FIELDS = 32 }; /* the largest table below must fit (checked after the tables) */

typedef struct ctx ctx_t;
typedef struct field field_t;
typedef struct section section_t;

/* A custom value parser: `base` is the struct the mapping fills, `key` names the value. */
typedef void (*handler_fn)(ctx_t *c, const yaml_node_t *key, const yaml_node_t *value, void *base,
                           const field_t *f);

typedef enum {
  K_STRING,  /* char *, owned */
  K_INT,     /* int >= lo */
  K_INT64,   /* int64_t >= lo */
  K_NUMBER,  /* double within lo/hi (open or closed ends) */
  K_BOOL,    /* bool: true/false/yes/no/on/off */
  K_ENUM,    /* an enum, value = index in names */
  K_SECTION, /* a nested mapping filling the struct at offset */
  K_CUSTOM,  /* handler */
} kind_t;

struct field {
  const char *key;
  kind_t kind;
  size_t offset; /* of the value in the base struct */
  double lo, hi; /* K_NUMBER range; K_INT/K_INT64 use lo only */
  bool lo_open, hi_open;
  const char *const *names; /* K_ENUM, NULL-terminated */
  const section_t *section; /* K_SECTION */
  handler_fn handler;       /* K_CUSTOM */
  const char *required;     /* non-NULL: the key must be there; says what it is */
};

/* Called for a key that is not in the table, before the generic "unknown key" message;
 * returns true when it reported something more helpful. */
typedef bool (*unknown_fn)(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base);

struct section {
  const char *what; /* "a mapping of job settings", for type errors */
  const field_t *fields;
  int num_fields;
  unknown_fn unknown;
  int stage_kind; /* for stage configs: the rcc_stage_kind_t; -1 otherwise */
};

/* Where a key and its value were found in one mapping. */
typedef struct {
  const yaml_node_t *key, *value;
} seen_t;

/* A stage while it is parsed: the struct plus what the checks after the parse need.
 * The stage's table fills `st`; its handlers get &st and convert it back (first member). */
typedef struct {
  rcc_stage_t st;
  bool kind_known;                 /* `name` was valid: config can be checked */
  const yaml_node_t *method_value; /* dare `method`, for the base_model check */
} stage_parse_t;

struct ctx {
  yaml_document_t *doc;
  rcc_yaml_diag_t diag;
  rcc_job_t *job;
  stage_parse_t *stages;
  int num_stages;
  const yaml_node_t *checkpoint_key; /* first checkpoint_frequency, wherever it was */
  bool nomem;
};

/* ---- nodes and messages ------------------------------------------------------------- */

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

static bool is_plain(const yaml_node_t *n) {
  return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* YAML's null: an empty plain value, `~` or `null`. */
static bool is_null(const yaml_node_t *n) {
  if (!is_plain(n)) return false;
  const char *s = scalar(n);
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static rcc_job_pos_t pos_of(const yaml_node_t *n) {
  return (rcc_job_pos_t){(int)n->start_mark.line + 1, (int)n->start_mark.column + 1};
}

static void error_at(ctx_t *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void error_at(ctx_t *c, const yaml_node_t *n, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  rcc_yaml_diag_node_error(&c->diag, n, msg);
}

/* How a value reads in a message: 'abc', the quoted string "0.5", a list, ... */
static const char *describe(const yaml_node_t *n, char *buf, size_t size) {
  switch (n->type) {
  case YAML_MAPPING_NODE: return "a mapping";
  case YAML_SEQUENCE_NODE: return "a list";
  case YAML_SCALAR_NODE:
    if (is_null(n)) return "nothing";
    if (is_plain(n))
      snprintf(buf, size, "'%.60s'", scalar(n));
    else
      snprintf(buf, size, "the quoted string \"%.60s\"", scalar(n));
    return buf;
  default: return "nothing";
  }
}

static void type_error(ctx_t *c, const yaml_node_t *key, const yaml_node_t *value,
                       const char *expected) {
  char buf[128];
  error_at(c, value, "'%s' must be %s, got %s", scalar(key), expected,
           describe(value, buf, sizeof buf));
}

/* "a, b, c" for messages. */
static const char *join_names(const char *const *names, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (int i = 0; names[i]; i++) {
    int n = snprintf(buf + used, size - used, "%s%s", i ? ", " : "", names[i]);
    if (n < 0 || (size_t)n >= size - used) break;
    used += (size_t)n;
  }
  return buf;
}

static size_t count_names(const char *const *names) {
  size_t n = 0;
  while (names[n])
    n++;
  return n;
}

static char *dup(ctx_t *c, const char *s) {
  char *p = strdup(s);
  if (!p) c->nomem = true;
  return p;
}

/* ---- scalar values ------------------------------------------------------------------ */

/* A non-empty string (any quoting style). */
static bool get_string(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, const char **out) {
  if (v->type != YAML_SCALAR_NODE || is_null(v)) {
    type_error(c, key, v, "a string");
    return false;
  }
  if (strlen(scalar(v)) != v->data.scalar.length) {
    error_at(c, v, "'%s' contains a NUL character", scalar(key));
    return false;
  }
  if (!*scalar(v)) {
    error_at(c, v, "'%s' must not be empty", scalar(key));
    return false;
  }
  *out = scalar(v);
  return true;
}

static void set_string(ctx_t *c, char **slot, const char *s) {
  char *p = dup(c, s);
  if (!p) return;
  free(*slot);
  *slot = p;
}

/* Numbers are plain scalars: a quoted "0.5" is a string, and says so. */
static bool numeric_error(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v,
                          const char *expected) {
  if (v->type == YAML_SCALAR_NODE && !is_plain(v)) {
    char *end;
    strtod(scalar(v), &end);
    if (*scalar(v) && !*end) {
      error_at(c, v, "'%s' must be %s, got the quoted string \"%s\" (write numbers without quotes)",
               scalar(key), expected, scalar(v));
      return false;
    }
  }
  type_error(c, key, v, expected);
  return false;
}

static bool get_integer(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, long long lo,
                        long long hi, long long *out) {
  if (!is_plain(v) || is_null(v)) return numeric_error(c, key, v, "an integer");
  const char *s = scalar(v);
  const char *digits = s + (*s == '+' || *s == '-');
  if (!*digits || strspn(digits, "0123456789") != strlen(digits))
    return numeric_error(c, key, v, "an integer");
  errno = 0;
  long long x = strtoll(s, NULL, 10);
  if (errno == ERANGE || x > hi) {
    error_at(c, v, "'%s' is too large: at most %lld, got %s", scalar(key), hi, s);
    return false;
  }
  if (x < lo) {
    error_at(c, v, "'%s' must be an integer >= %lld, got %s", scalar(key), lo, s);
    return false;
  }
  *out = x;
  return true;
}

static bool get_number(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, const field_t *f,
                       double *out) {
  if (!is_plain(v) || is_null(v)) return numeric_error(c, key, v, "a number");
  const char *s = scalar(v);
  /* strtod also reads hex floats, "inf" and "nan": none of them is a YAML number here. */
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (*end || !strchr("+-.0123456789", *s) || strpbrk(s, "xXnN") || !isfinite(x) || errno == ERANGE)
    return numeric_error(c, key, v, "a number");
  bool below = f->lo_open ? x <= f->lo : x < f->lo;
  bool above = f->hi_open ? x >= f->hi : x > f->hi;
  if (below || above) {
    if (isinf(f->hi))
      error_at(c, v, "'%s' must be %s %g, got %s", scalar(key), f->lo_open ? ">" : ">=", f->lo, s);
    else
      error_at(c, v, "'%s' must be in %c%g, %g%c, got %s", scalar(key), f->lo_open ? '(' : '[',
               f->lo, f->hi, f->hi_open ? ')' : ']', s);
    return false;
  }
  *out = x;
  return true;
}

static bool get_bool(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, bool *out) {
  static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};
  if (is_plain(v))
    for (int i = 0; i < 3; i++) {
      if (!strcasecmp(scalar(v), yes[i]) || !strcasecmp(scalar(v), no[i])) {
        *out = !strcasecmp(scalar(v), yes[i]);
        return true;
      }
    }
  type_error(c, key, v, "true or false");
  return false;
}

/* One of `names` (quoted or not); returns its index or -1 after reporting. */
static int get_enum(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v,
                    const char *const *names) {
  char list[256];
  if (v->type != YAML_SCALAR_NODE || is_null(v)) {
    char what[300];
    snprintf(what, sizeof what, "one of %s", join_names(names, list, sizeof list));
    type_error(c, key, v, what);
    return -1;
  }
  for (int i = 0; names[i]; i++)
    if (!strcmp(scalar(v), names[i])) return i;
  const char *guess = rcc_did_you_mean(scalar(v), names, count_names(names));
  char hint[128] = "";
  if (guess) snprintf(hint, sizeof hint, " (did you mean '%s'?)", guess);
  error_at(c, v, "'%s' must be one of %s; got '%s'%s", scalar(key),
           join_names(names, list, sizeof list), scalar(v), hint);
  return -1;
}

/* Stores an enum index into an enum-typed field (enums here are int-sized, values >= 0). */
static void store_enum(void *slot, int value) {
  _Static_assert(sizeof(rcc_schedule_t) == sizeof(int), "enum fields are int-sized");
  memcpy(slot, &value, sizeof value);
}

/* ---- mappings ----------------------------------------------------------------------- */

static void parse_mapping(ctx_t *c, const yaml_node_t *key, const yaml_node_t *node,
                          const section_t *s, void *base, seen_t *seen_out);

static void parse_value(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                        const field_t *f) {
  void *slot = (char *)base + f->offset;
  const char *str = NULL;
  long long i = 0;
  double d = 0;
  bool b = false;
  int e;
  switch (f->kind) {
  case K_STRING:
    if (get_string(c, key, v, &str)) set_string(c, slot, str);
    break;
  case K_INT:
    if (get_integer(c, key, v, (long long)f->lo, INT_MAX, &i)) *(int *)slot = (int)i;
    break;
  case K_INT64:
    if (get_integer(c, key, v, (long long)f->lo, INT64_MAX, &i)) *(int64_t *)slot = i;
    break;
  case K_NUMBER:
    if (get_number(c, key, v, f, &d)) *(double *)slot = d;
    break;
  case K_BOOL:
    if (get_bool(c, key, v, &b)) *(bool *)slot = b;
    break;
  case K_ENUM:
    if ((e = get_enum(c, key, v, f->names)) >= 0) store_enum(slot, e);
    break;
  case K_SECTION: parse_mapping(c, key, v, f->section, slot, NULL); break;
  case K_CUSTOM: f->handler(c, key, v, base, f); break;
  }
}

static int field_index(const section_t *s, const char *key) {
  for (int i = 0; i < s->num_fields; i++)
    if (!strcmp(s->fields[i].key, key)) return i;
  return -1;
}

static void unknown_key(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base) {
  if (s->unknown && s->unknown(c, s, key, base)) return;
  const char *names[MAX_FIELDS];
  for (int i = 0; i < s->num_fields; i++)
    names[i] = s->fields[i].key;
  const char *guess = rcc_did_you_mean(scalar(key), names, (size_t)s->num_fields);
  if (guess)
    error_at(c, key, "unknown key '%s' (did you mean '%s'?)", scalar(key), guess);
  else
    error_at(c, key, "unknown key '%s'", scalar(key));
}

/* Walks one mapping: duplicate and unknown keys are errors, each known key's value is
 * parsed into base, and missing required keys are reported at the mapping. `key` names
 * the mapping in messages (NULL for the document's root). seen_out, when given, receives
 * for each field where it was found (NULLs for keys not written). */
static void parse_mapping(ctx_t *c, const yaml_node_t *key, const yaml_node_t *node,
                          const section_t *s, void *base, seen_t *seen_out) {
  seen_t seen[MAX_FIELDS] = {{0}};
  if (node->type != YAML_MAPPING_NODE) {
    char buf[128];
    if (key)
      type_error(c, key, node, s->what);
    else
      error_at(c, node, "a job file must be %s, got %s", s->what, describe(node, buf, sizeof buf));
    if (seen_out) memcpy(seen_out, seen, sizeof seen);
    return;
  }
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top;
       p++) {
    const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
    const yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
    if (k->type != YAML_SCALAR_NODE) {
      char buf[128];
      error_at(c, k, "keys must be names, got %s", describe(k, buf, sizeof buf));
      continue;
    }
    /* Duplicates are compared with every earlier key, known or not. */
    const yaml_node_t *first = NULL;
    for (yaml_node_pair_t *q = node->data.mapping.pairs.start; q < p && !first; q++) {
      const yaml_node_t *k2 = yaml_document_get_node(c->doc, q->key);
      if (k2->type == YAML_SCALAR_NODE && !strcmp(scalar(k2), scalar(k))) first = k2;
    }
    if (first) {
      error_at(c, k, "duplicate key '%s' (first given at line %d)", scalar(k), pos_of(first).line);
      continue;
    }
    int i = field_index(s, scalar(k));
    if (i < 0) {
      unknown_key(c, s, k, base);
      continue;
    }
    seen[i] = (seen_t){k, v};
    parse_value(c, k, v, base, &s->fields[i]);
  }
  for (int i = 0; i < s->num_fields; i++)
    if (s->fields[i].required && !seen[i].key)
      error_at(c, node, "missing required key '%s' (%s)", s->fields[i].key, s->fields[i].required);
  if (seen_out) memcpy(seen_out, seen, sizeof seen);
}

/* The later of two keys in the file, for "given twice" errors. */
static const yaml_node_t *later(const yaml_node_t *a, const yaml_node_t *b) {
  return a->start_mark.index > b->start_mark.index ? a : b;
}

/* ---- custom values ------------------------------------------------------------------ */

static void parse_backend(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                          const field_t *f) {
  static const char *const names[] = {"auto", "cpu", "cuda", NULL};
  const char *s;
  if (!get_string(c, key, v, &s)) return;
  bool ok = !strcmp(s, "auto") || !strcmp(s, "cpu") || !strcmp(s, "cuda");
  if (!strncmp(s, "cuda:", 5)) {
    const char *d = s + 5;
    ok = *d && strlen(d) <= 4 && strspn(d, "0123456789") == strlen(d);
  }
  if (!ok) {
    const char *guess = rcc_did_you_mean(s, names, 3);
    char hint[64] = "";
    if (guess) snprintf(hint, sizeof hint, " (did you mean '%s'?)", guess);
    error_at(c, v, "'%s' must be auto, cpu, cuda or cuda:N; got '%s'%s", scalar(key), s, hint);
    return;
  }
  set_string(c, (char **)((char *)base + f->offset), s);
}

/* A dataset spec as io/dataset.h reads it; only its form is checked here. */
static void parse_dataset(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                          const field_t *f) {
  const char *s;
  if (!get_string(c, key, v, &s)) return;
  bool ok = !strcmp(s, "fmnist:test") || !strcmp(s, "fmnist:train") ||
            (!strncmp(s, "folder:", 7) && s[7]) || (!strncmp(s, "csv:", 4) && s[4]);
  if (!ok) {
    error_at(c, v,
             "'%s' must be a dataset: fmnist:test, fmnist:train, folder:DIR or csv:FILE; got '%s'",
             scalar(key), s);
    return;
  }
  set_string(c, (char **)((char *)base + f->offset), s);
}

static void parse_string_list(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, char ***list,
                              int *count) {
  if (v->type != YAML_SEQUENCE_NODE) {
    type_error(c, key, v, "a list of glob patterns, like [\"*.mlp.*\"]");
    return;
  }
  size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  char **out = calloc(n ? n : 1, sizeof *out);
  if (!out) {
    c->nomem = true;
    return;
  }
  int kept = 0;
  bool ok = true;
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    const char *s;
    if (!get_string(c, key, yaml_document_get_node(c->doc, *it), &s)) {
      ok = false;
      continue;
    }
    if ((out[kept] = dup(c, s))) kept++;
  }
  if (!ok || c->nomem) {
    for (int i = 0; i < kept; i++)
      free(out[i]);
    free(out);
    return;
  }
  for (int i = 0; i < *count; i++)
    free((*list)[i]);
  free(*list);
  *list = out;
  *count = kept;
}

static void parse_include(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                          const field_t *f) {
  rcc_job_t *job = c->job;
  if (v->type == YAML_SEQUENCE_NODE && v->data.sequence.items.top == v->data.sequence.items.start) {
    error_at(c, v,
             "'include' is empty: no layer would be compressed (leave the key out to "
             "include every layer)");
    return;
  }
  parse_string_list(c, key, v, &job->include, &job->num_include);
}

static void parse_exclude(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                          const field_t *f) {
  parse_string_list(c, key, v, &c->job->exclude, &c->job->num_exclude);
}

/* checkpoint_frequency may sit in cascade (DESIGN.md) or in cascade.validation (the seed);
 * it is one setting, so writing both is an error at the later one. */
static void parse_checkpoint(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                             const field_t *f) {
  if (c->checkpoint_key) {
    const yaml_node_t *first = c->checkpoint_key, *second = later(first, key);
    if (second == first) first = key;
    error_at(c, second,
             "checkpoint_frequency given twice (also at line %d): write it once, in 'cascade' or "
             "in 'cascade.validation'",
             pos_of(first).line);
    return;
  }
  c->checkpoint_key = key;
  long long i;
  if (get_integer(c, key, v, 0, INT_MAX, &i)) c->job->checkpoint_frequency = (int)i;
}

/* pattern: "unstructured" or "N:M" (N kept of every M consecutive inputs, 0 < N <= M). */
static void parse_pattern(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                          const field_t *f) {
  rcc_dare_config_t *cfg = base;
  const char *s;
  if (!get_string(c, key, v, &s)) return;
  if (!strcmp(s, "unstructured")) {
    cfg->pattern_n = cfg->pattern_m = 0;
    return;
  }
  char *colon, *end = NULL;
  long n = -1, m = -1;
  if (isdigit((unsigned char)s[0])) {
    n = strtol(s, &colon, 10);
    if (*colon == ':' && isdigit((unsigned char)colon[1])) m = strtol(colon + 1, &end, 10);
  }
  if (m < 0 || *end) {
    error_at(c, v, "'%s' must be 'unstructured' or 'N:M' (like \"2:4\"), got '%s'", scalar(key), s);
    return;
  }
  if (n <= 0 || n > m || m > INT_MAX) {
    error_at(c, v, "'%s' N:M needs 0 < N <= M, got '%s'", scalar(key), s);
    return;
  }
  cfg->pattern_n = (int)n;
  cfg->pattern_m = (int)m;
}

/* trainable: [alpha, bias, layernorm, lowrank, sparse_values]: what alphaedit distill
 * trains; alpha always does (the stage is a per-channel scale), so a list without it still
 * trains it. */
static void parse_trainable(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                            const field_t *f) {
  rcc_alphaedit_config_t *cfg = base;
  if (v->type != YAML_SEQUENCE_NODE) {
    type_error(c, key, v, "a list like [alpha, bias, layernorm, lowrank, sparse_values]");
    return;
  }
  cfg->trainable = RCC_TRAIN_ALPHA;
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
    const char *s;
    if (!get_string(c, key, item, &s)) continue;
    int b = 0;
    while (rcc_trainable_names[b] && strcmp(rcc_trainable_names[b], s))
      b++;
    if (rcc_trainable_names[b]) {
      cfg->trainable |= 1u << b;
      continue;
    }
    const char *guess = rcc_did_you_mean(s, rcc_trainable_names, count_names(rcc_trainable_names));
    char list[256], hint[128] = "";
    if (guess) snprintf(hint, sizeof hint, " (did you mean '%s'?)", guess);
    error_at(c, item, "'%s' items must be %s; got '%s'%s", scalar(key),
             join_names(rcc_trainable_names, list, sizeof list), s, hint);
  }
}

/* `name` is read before the rest of the stage (its config depends on it): nothing to do
 * when the mapping walk meets it again. */
static void parse_stage_name(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                             const field_t *f) {}

/* A `slurm:` text value, held in place (RCC_JOB_SLURM_TEXT bytes) in the form sbatch reads:
 * `problem` (slurm/values.h) says what a bad one should look like. */
static void parse_slurm_text(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                             const field_t *f, const char *(*problem)(const char *)) {
  const char *s, *why;
  if (!get_string(c, key, v, &s)) return;
  if (strlen(s) >= RCC_JOB_SLURM_TEXT)
    error_at(c, v, "'%s' is too long: at most %d characters", scalar(key), RCC_JOB_SLURM_TEXT - 1);
  else if ((why = problem(s)))
    error_at(c, v, "'%s' must be %s, got '%s'", scalar(key), why, s);
  else
    memcpy((char *)base + f->offset, s, strlen(s) + 1);
}

static void parse_slurm_word(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                             const field_t *f) {
  parse_slurm_text(c, key, v, base, f, rcc_slurm_word_problem);
}

static void parse_slurm_time(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                             const field_t *f) {
  parse_slurm_text(c, key, v, base, f, rcc_slurm_time_problem);
}

static void parse_slurm_mem(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                            const field_t *f) {
  parse_slurm_text(c, key, v, base, f, rcc_slurm_mem_problem);
}

/* sbatch_args: a list of extra #SBATCH options, like ["--qos=high", "--exclusive"]. */
static void parse_sbatch_args(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                              const field_t *f) {
  rcc_job_slurm_t *sl = base;
  if (v->type != YAML_SEQUENCE_NODE) {
    type_error(c, key, v, "a list of sbatch options, like [\"--qos=high\"]");
    return;
  }
  sl->num_sbatch_args = 0;
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    const yaml_node_t *item = yaml_document_get_node(c->doc, *it);
    const char *s, *why;
    if (!get_string(c, key, item, &s)) continue;
    if (sl->num_sbatch_args == RCC_JOB_SLURM_MAX_ARGS)
      error_at(c, item, "'%s' holds at most %d options", scalar(key), RCC_JOB_SLURM_MAX_ARGS);
    else if (strlen(s) >= sizeof sl->sbatch_args[0])
      error_at(c, item, "'%s' option is too long: at most %zu characters", scalar(key),
               sizeof sl->sbatch_args[0] - 1);
    else if ((why = rcc_slurm_option_problem(s)))
      error_at(c, item, "'%s' items must be %s, got '%s'", scalar(key), why, s);
    else
      memcpy(sl->sbatch_args[sl->num_sbatch_args++], s, strlen(s) + 1);
  }
}

/* ---- tables ------------------------------------------------------------------------- */

#define F_NUM(T, k, lo_, lo_open_, hi_, hi_open_)                                                  \
  {                                                                                                \
    .key = #k, .kind = K_NUMBER, .offset = offsetof(T, k), .lo = (lo_), .lo_open = (lo_open_),     \
    .hi = (hi_), .hi_open = (hi_open_)                                                             \
  }
#define F_INT(T, k, lo_)                                                                           \
  { .key = #k, .kind = K_INT, .offset = offsetof(T, k), .lo = (lo_) }
#define F_BOOL(T, k)                                                                               \
  { .key = #k, .kind = K_BOOL, .offset = offsetof(T, k) }
#define F_ENUM(T, k, names_)                                                                       \
  { .key = #k, .kind = K_ENUM, .offset = offsetof(T, k), .names = names_ }
#define F_CUSTOM(k, fn)                                                                            \
  { .key = k, .kind = K_CUSTOM, .handler = fn }
#define NFIELDS(a) ((int)(sizeof a / sizeof a[0]))

static const field_t dare_fields[] = {
    F_ENUM(rcc_dare_config_t, method, rcc_dare_method_names),
    F_NUM(rcc_dare_config_t, target_sparsity, 0, false, 1, true),
    F_INT(rcc_dare_config_t, num_iterations, 1),
    F_ENUM(rcc_dare_config_t, schedule, rcc_schedule_names),
    F_CUSTOM("pattern", parse_pattern),
    F_ENUM(rcc_dare_config_t, scope, rcc_scope_names),
    F_BOOL(rcc_dare_config_t, rescale),
    F_INT(rcc_dare_config_t, block_size, 1),
    F_NUM(rcc_dare_config_t, damp_percent, 0, false, INFINITY, false),
    F_INT(rcc_dare_config_t, fine_tune_epochs, 0),
};

static const field_t nullu_fields[] = {
    F_ENUM(rcc_nullu_config_t, method, rcc_nullu_method_names),
    {.key = "decomposition_method",
     .kind = K_ENUM,
     .offset = offsetof(rcc_nullu_config_t, method),
     .names = rcc_nullu_method_names},
    F_NUM(rcc_nullu_config_t, energy_threshold, 0, true, 1, false),
    F_NUM(rcc_nullu_config_t, rank_reduction_ratio, 0, true, 1, false),
    F_INT(rcc_nullu_config_t, min_rank, 1),
    F_NUM(rcc_nullu_config_t, damp_percent, 0, false, INFINITY, false),
};

static const field_t alphaedit_fields[] = {
    F_ENUM(rcc_alphaedit_config_t, method, rcc_alphaedit_method_names),
    F_NUM(rcc_alphaedit_config_t, regularization, 0, false, INFINITY, false),
    F_BOOL(rcc_alphaedit_config_t, null_space),
    F_NUM(rcc_alphaedit_config_t, null_space_energy, 0, true, 1, false),
    F_ENUM(rcc_alphaedit_config_t, importance_metric, rcc_importance_names),
    F_NUM(rcc_alphaedit_config_t, learning_rate, 0, true, INFINITY, false),
    F_INT(rcc_alphaedit_config_t, num_epochs, 1),
    F_INT(rcc_alphaedit_config_t, batch_size, 1),
    F_NUM(rcc_alphaedit_config_t, kd_temperature, 0, true, INFINITY, false),
    F_NUM(rcc_alphaedit_config_t, kd_weight, 0, false, 1, false),
    F_NUM(rcc_alphaedit_config_t, weight_decay, 0, false, INFINITY, false),
    F_NUM(rcc_alphaedit_config_t, warmup_ratio, 0, false, 1, true),
    F_NUM(rcc_alphaedit_config_t, clip_norm, 0, false, INFINITY, false),
    F_INT(rcc_alphaedit_config_t, gradient_accumulation, 1),
    F_CUSTOM("trainable", parse_trainable),
    F_ENUM(rcc_alphaedit_config_t, embedding_loss, rcc_embedding_loss_names),
    F_INT(rcc_alphaedit_config_t, patience, 0),
    F_INT(rcc_alphaedit_config_t, train_samples, 0),
};

_Static_assert(NFIELDS(dare_fields) <= MAX_FIELDS && NFIELDS(nullu_fields) <= MAX_FIELDS &&
                   NFIELDS(alphaedit_fields) <= MAX_FIELDS,
               "a field table outgrew MAX_FIELDS");

static bool unknown_config_key(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base);

/* Indexed by rcc_stage_kind_t. */
static const section_t config_sections[] = {
    {"a mapping of dare settings", dare_fields, NFIELDS(dare_fields), unknown_config_key,
     RCC_STAGE_DARE},
    {"a mapping of nullu settings", nullu_fields, NFIELDS(nullu_fields), unknown_config_key,
     RCC_STAGE_NULLU},
    {"a mapping of alphaedit settings", alphaedit_fields, NFIELDS(alphaedit_fields),
     unknown_config_key, RCC_STAGE_ALPHAEDIT},
};

/* A key of another stage kind says whose it is: "'energy_threshold' is a nullu setting". */
static bool unknown_config_key(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base) {
  for (int k = 0; k < NFIELDS(config_sections); k++)
    if (k != s->stage_kind && field_index(&config_sections[k], scalar(key)) >= 0) {
      error_at(c, key, "key '%s' belongs to %s stages, not to this %s stage", scalar(key),
               rcc_stage_kind_names[k], rcc_stage_kind_names[s->stage_kind]);
      return true;
    }
  return false;
}

/* A stage's config: the table of its kind, then the checks across keys. */
static void parse_stage_config(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                               const field_t *f) {
  stage_parse_t *sp = base;
  if (!sp->kind_known) return; /* the bad name is reported; its keys would mislead */
  const section_t *s = &config_sections[sp->st.kind];
  seen_t seen[MAX_FIELDS];
  parse_mapping(c, key, v, s, &sp->st.config, seen);
  if (sp->st.kind == RCC_STAGE_DARE) {
    sp->method_value = seen[field_index(s, "method")].value;
    const yaml_node_t *scope = seen[field_index(s, "scope")].value;
    const rcc_dare_config_t *cfg = &sp->st.config.dare;
    if (scope && cfg->scope == RCC_SCOPE_GLOBAL && cfg->method != RCC_DARE_METHOD_MAGNITUDE)
      error_at(c, scope, "scope 'global' works only with method 'magnitude' (this stage uses '%s')",
               rcc_dare_method_name(cfg->method));
  }
  if (sp->st.kind == RCC_STAGE_NULLU) {
    const yaml_node_t *a = seen[field_index(s, "method")].key;
    const yaml_node_t *b = seen[field_index(s, "decomposition_method")].key;
    if (a && b)
      error_at(c, later(a, b),
               "both 'method' and 'decomposition_method' given (the seed's name for the same "
               "setting): keep one");
  }
}

static bool unknown_stage_key(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base);

static const field_t stage_fields[] = {
    F_CUSTOM("name", parse_stage_name),
    F_BOOL(rcc_stage_t, enabled),
    F_CUSTOM("config", parse_stage_config),
};
static const section_t stage_section = {"a mapping like {name: dare, config: {...}}", stage_fields,
                                        NFIELDS(stage_fields), unknown_stage_key, -1};

/* A setting written next to `name` instead of under `config:`. */
static bool unknown_stage_key(ctx_t *c, const section_t *s, const yaml_node_t *key, void *base) {
  const stage_parse_t *sp = base;
  if (!sp->kind_known || field_index(&config_sections[sp->st.kind], scalar(key)) < 0) return false;
  error_at(c, key, "unknown key '%s' (%s settings go under 'config:')", scalar(key),
           rcc_stage_kind_name(sp->st.kind));
  return true;
}

static void set_stage_defaults(rcc_stage_t *st) {
  switch (st->kind) {
  case RCC_STAGE_DARE: rcc_dare_config_default(&st->config.dare); break;
  case RCC_STAGE_NULLU: rcc_nullu_config_default(&st->config.nullu); break;
  case RCC_STAGE_ALPHAEDIT: rcc_alphaedit_config_default(&st->config.alphaedit); break;
  }
}

static void parse_stage(ctx_t *c, const yaml_node_t *item, stage_parse_t *sp) {
  sp->st.enabled = true;
  sp->st.pos = pos_of(item);
  if (item->type != YAML_MAPPING_NODE) {
    char buf[128];
    error_at(c, item, "a stage must be a mapping like {name: dare, config: {...}}, got %s",
             describe(item, buf, sizeof buf));
    return;
  }
  /* The kind first: it decides which config keys exist. */
  const yaml_node_t *name_key = NULL, *name = NULL;
  for (yaml_node_pair_t *p = item->data.mapping.pairs.start;
       p < item->data.mapping.pairs.top && !name; p++) {
    const yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
    if (k->type == YAML_SCALAR_NODE && !strcmp(scalar(k), "name")) {
      name_key = k;
      name = yaml_document_get_node(c->doc, p->value);
    }
  }
  if (!name) {
    error_at(c, item, "stage has no 'name' (one of dare, nullu, alphaedit)");
  } else {
    int kind = get_enum(c, name_key, name, rcc_stage_kind_names);
    if (kind >= 0) {
      sp->st.kind = (rcc_stage_kind_t)kind;
      sp->kind_known = true;
      set_stage_defaults(&sp->st);
    }
  }
  parse_mapping(c, NULL, item, &stage_section, &sp->st, NULL);
}

static void parse_stages(ctx_t *c, const yaml_node_t *key, const yaml_node_t *v, void *base,
                         const field_t *f) {
  if (v->type != YAML_SEQUENCE_NODE) {
    type_error(c, key, v,
               "a list of stages (- name: dare|nullu|alphaedit), or [] to only evaluate");
    return;
  }
  size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
  c->stages = calloc(n ? n : 1, sizeof *c->stages);
  if (!c->stages) {
    c->nomem = true;
    return;
  }
  c->num_stages = (int)n;
  for (size_t i = 0; i < n; i++)
    parse_stage(c, yaml_document_get_node(c->doc, v->data.sequence.items.start[i]), &c->stages[i]);
}

static const field_t validation_fields[] = {
    F_NUM(rcc_validation_config_t, performance_threshold, 0, true, 1, false),
    F_BOOL(rcc_validation_config_t, rollback_enabled),
    F_ENUM(rcc_validation_config_t, on_fail, rcc_on_fail_names),
    F_INT(rcc_validation_config_t, max_retries, 0),
    F_CUSTOM("checkpoint_frequency", parse_checkpoint),
};
static const section_t validation_section = {"a mapping of validation settings", validation_fields,
                                             NFIELDS(validation_fields), NULL, -1};

static const field_t cascade_fields[] = {
    F_CUSTOM("stages", parse_stages),
    {.key = "validation",
     .kind = K_SECTION,
     .offset = offsetof(rcc_job_t, validation),
     .section = &validation_section},
    F_CUSTOM("checkpoint_frequency", parse_checkpoint),
};
static const section_t cascade_section = {"a mapping with stages: and validation:", cascade_fields,
                                          NFIELDS(cascade_fields), NULL, -1};

static const field_t data_fields[] = {
    {.key = "calibration",
     .kind = K_CUSTOM,
     .offset = offsetof(rcc_job_data_t, calibration),
     .handler = parse_dataset},
    F_INT(rcc_job_data_t, calibration_samples, 1),
    {.key = "validation",
     .kind = K_CUSTOM,
     .offset = offsetof(rcc_job_data_t, validation),
     .handler = parse_dataset},
    F_INT(rcc_job_data_t, validation_samples, 1),
    F_INT(rcc_job_data_t, batch_size, 1),
};
static const section_t data_section = {"a mapping of dataset settings", data_fields,
                                       NFIELDS(data_fields), NULL, -1};

static const field_t layers_fields[] = {
    F_CUSTOM("include", parse_include),
    F_CUSTOM("exclude", parse_exclude),
};
static const section_t layers_section = {"a mapping with include: and exclude:", layers_fields,
                                         NFIELDS(layers_fields), NULL, -1};

#define F_SLURM(k, fn)                                                                             \
  { .key = #k, .kind = K_CUSTOM, .offset = offsetof(rcc_job_slurm_t, k), .handler = fn }
static const field_t slurm_fields[] = {
    F_SLURM(partition, parse_slurm_word),
    F_SLURM(time, parse_slurm_time),
    F_SLURM(account, parse_slurm_word),
    F_SLURM(constraint, parse_slurm_word),
    F_SLURM(mem, parse_slurm_mem),
    F_INT(rcc_job_slurm_t, nodes, 1),
    F_INT(rcc_job_slurm_t, gpus_per_node, 0),
    F_INT(rcc_job_slurm_t, ntasks_per_node, 1),
    F_INT(rcc_job_slurm_t, cpus_per_task, 0),
    F_CUSTOM("sbatch_args", parse_sbatch_args),
    F_BOOL(rcc_job_slurm_t, requeue),
};
static const section_t slurm_section = {"a mapping of Slurm settings (nodes:, gpus_per_node:, ...)",
                                        slurm_fields, NFIELDS(slurm_fields), NULL, -1};

static const field_t job_fields[] = {
    {.key = "model",
     .kind = K_STRING,
     .offset = offsetof(rcc_job_t, model),
     .required = "the Hugging Face CLIPModel directory to compress"},
    {.key = "output",
     .kind = K_STRING,
     .offset = offsetof(rcc_job_t, output),
     .required = "the run directory for the report, checkpoints and compressed model"},
    {.key = "backend",
     .kind = K_CUSTOM,
     .offset = offsetof(rcc_job_t, backend),
     .handler = parse_backend},
    F_INT(rcc_job_t, threads, 0),
    {.key = "seed", .kind = K_INT64, .offset = offsetof(rcc_job_t, seed)},
    {.key = "base_model", .kind = K_STRING, .offset = offsetof(rcc_job_t, base_model)},
    {.key = "data",
     .kind = K_SECTION,
     .offset = offsetof(rcc_job_t, data),
     .section = &data_section},
    {.key = "layers", .kind = K_SECTION, .section = &layers_section},
    {.key = "cascade", .kind = K_SECTION, .section = &cascade_section},
    {.key = "slurm",
     .kind = K_SECTION,
     .offset = offsetof(rcc_job_t, slurm),
     .section = &slurm_section},
};
static const section_t job_section = {"a mapping of job settings (model:, output:, cascade:, ...)",
                                      job_fields, NFIELDS(job_fields), NULL, -1};

/* ---- the whole file ----------------------------------------------------------------- */

static rcc_status_t set_defaults(rcc_job_t *job) {
  job->backend = strdup("auto");
  job->data.calibration = strdup("fmnist:train");
  job->data.calibration_samples = 256;
  job->data.validation = strdup("fmnist:test");
  job->data.validation_samples = 1000;
  job->data.batch_size = 64;
  job->include = calloc(1, sizeof *job->include);
  if (job->include && (job->include[0] = strdup("*"))) job->num_include = 1;
  rcc_validation_config_default(&job->validation);
  job->checkpoint_frequency = 1;
  job->slurm.nodes = 1;
  job->slurm.ntasks_per_node = 1;
  bool ok = job->backend && job->data.calibration && job->data.validation && job->num_include;
  return ok ? RCC_OK : RCC_ERR_NOMEM;
}

/* Byte offset of (line, column) given as libyaml counts them: from 0, column in characters. */
static size_t byte_offset(const char *text, size_t len, size_t line, size_t column) {
  size_t i = 0;
  for (size_t l = 0; l < line && i < len; i++)
    if (text[i] == '\n') l++;
  for (size_t col = 0; i < len && text[i] != '\n'; i++) {
    if (((unsigned char)text[i] & 0xC0) == 0x80) continue;
    if (col++ == column) break;
  }
  return i;
}

/* libyaml's own message at its mark; a tab gets a word on YAML's indentation rule. */
static rcc_status_t report_syntax(ctx_t *c, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) {
    c->nomem = true;
    return RCC_ERR_NOMEM;
  }
  const char *text = c->diag.text;
  size_t len = c->diag.len;
  if (p->error == YAML_READER_ERROR) {
    /* The reader reports a byte offset, not a mark. */
    size_t off = p->problem_offset < len ? p->problem_offset : len;
    int line = 1, col = 1;
    for (size_t i = 0; i < off; i++) {
      if (text[i] == '\n')
        line++, col = 1;
      else if (((unsigned char)text[i] & 0xC0) != 0x80)
        col++;
    }
    rcc_yaml_diag_error(&c->diag, line, col, 1, "not a YAML text file: %s (byte 0x%02x)",
                        p->problem ? p->problem : "unreadable bytes",
                        off < len ? (unsigned char)text[off] : 0);
    return RCC_ERR_FORMAT;
  }
  size_t at = byte_offset(text, len, p->problem_mark.line, p->problem_mark.column);
  char context[160] = "";
  if (p->context)
    snprintf(context, sizeof context, " (%s at line %zu)", p->context, p->context_mark.line + 1);
  rcc_yaml_diag_error(&c->diag, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1, 1,
                      "YAML syntax: %s%s%s", p->problem ? p->problem : "malformed YAML", context,
                      at < len && text[at] == '\t' ? "; YAML indents with spaces, not tabs" : "");
  return RCC_ERR_ARG;
}

/* Checks that need the whole file: a `dare` method needs base_model. */
static void check_across(ctx_t *c) {
  for (int i = 0; i < c->num_stages; i++) {
    const stage_parse_t *sp = &c->stages[i];
    if (sp->kind_known && sp->st.kind == RCC_STAGE_DARE &&
        sp->st.config.dare.method == RCC_DARE_METHOD_DARE && !c->job->base_model &&
        sp->method_value)
      error_at(c, sp->method_value,
               "method 'dare' drops the delta from a base model: it needs top-level "
               "'base_model:' (the model this one was fine-tuned from)");
  }
}

/* Parses the document; returns RCC_OK with c->job filled, or the status of the errors. */
static rcc_status_t parse_document(ctx_t *c) {
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) return RCC_ERR_NOMEM;
  yaml_parser_set_input_string(&parser, (const unsigned char *)c->diag.text, c->diag.len);
  rcc_status_t st = RCC_OK;
  if (!yaml_parser_load(&parser, &doc)) {
    st = report_syntax(c, &parser);
    yaml_parser_delete(&parser);
    return st;
  }
  c->doc = &doc;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (!root) {
    rcc_yaml_diag_error(&c->diag, 1, 1, 1,
                        "the job file is empty: it needs at least 'model:' and 'output:'");
  } else {
    seen_t seen[MAX_FIELDS];
    parse_mapping(c, NULL, root, &job_section, c->job, seen);
    /* Where the paths were written, for rcc_job_check_paths' messages. */
    const yaml_node_t *model = seen[field_index(&job_section, "model")].value;
    const yaml_node_t *base_model = seen[field_index(&job_section, "base_model")].value;
    if (model) c->job->model_pos = pos_of(model);
    if (base_model) c->job->base_model_pos = pos_of(base_model);
    check_across(c);
    /* A second document would be ignored silently: say so instead. */
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next)) {
      st = report_syntax(c, &parser);
    } else {
      if (yaml_document_get_root_node(&next))
        rcc_yaml_diag_error(&c->diag, (int)next.start_mark.line + 1,
                            (int)next.start_mark.column + 1, 1,
                            "a job file holds one YAML document; a second one starts here");
      yaml_document_delete(&next);
    }
  }
  c->doc = NULL;
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  if (c->nomem) return RCC_ERR_NOMEM;
  if (st != RCC_OK) return st;
  return c->diag.errors || c->diag.dropped ? RCC_ERR_ARG : RCC_OK;
}

/* ---- errors kept for the caller ----------------------------------------------------- */

static _Thread_local char *job_errors;
static _Thread_local bool job_failed;

/* Falls back to the short message when the full text could not be kept (out of memory). */
const char *rcc_job_errors(void) {
  return job_errors ? job_errors : job_failed ? rcc_last_error() : "";
}

/* Keeps the full text for rcc_job_errors() and as much as fits for rcc_last_error(),
 * cut after a whole error rather than in the middle of one. */
static rcc_status_t record_errors(rcc_status_t st, rcc_yaml_diag_t *d) {
  free(job_errors);
  job_errors = NULL;
  job_failed = st != RCC_OK;
  if (st == RCC_OK) return RCC_OK;
  if (st == RCC_ERR_NOMEM)
    return rcc_fail(st, "%s: out of memory while reading the job file", d->path);
  const char *text = rcc_yaml_diag_text(d);
  job_errors = strdup(text);
  size_t n = strlen(text);
  while (n > 0 && text[n - 1] == '\n')
    n--;
  enum { ROOM = 1800 }; /* rcc_fail keeps 2 KB; leave space for the last line */
  if (n <= ROOM) return rcc_fail(st, "%.*s", (int)n, text);
  size_t cut = 0, plen = strlen(d->path);
  for (size_t i = 1; i < ROOM; i++)
    if (text[i - 1] == '\n' && !strncmp(text + i, d->path, plen) && text[i + plen] == ':') cut = i;
  if (cut == 0) cut = ROOM;
  return rcc_fail(st, "%.*s... and more (%d errors in all: `rcc-dist validate %s` lists them)",
                  (int)cut, text, d->errors + d->dropped, d->path);
}

/* ---- public ------------------------------------------------------------------------- */

static rcc_status_t parse_text(const char *name, const char *text, size_t len, rcc_yaml_diag_t *d,
                               rcc_job_t **out) {
  *out = NULL;
  ctx_t c = {.diag = *d};
  rcc_status_t st = RCC_ERR_NOMEM;
  c.job = calloc(1, sizeof *c.job);
  if (c.job && set_defaults(c.job) == RCC_OK && (c.job->path = strdup(name))) {
    rcc_sha256(c.job->sha256, text, len);
    rcc_sha256_hex(c.job->sha256_hex, c.job->sha256);
    st = parse_document(&c);
  }
  /* Stages move into the job whether or not it is kept: rcc_job_free then frees them. */
  if (c.job && c.stages) {
    c.job->stages = malloc((size_t)(c.num_stages ? c.num_stages : 1) * sizeof *c.job->stages);
    if (c.job->stages) {
      for (int i = 0; i < c.num_stages; i++)
        c.job->stages[i] = c.stages[i].st;
      c.job->num_stages = c.num_stages;
    } else if (st == RCC_OK) {
      st = RCC_ERR_NOMEM;
    }
  }
  free(c.stages);
  *d = c.diag;
  if (st == RCC_OK) {
    *out = c.job;
  } else {
    rcc_job_free(c.job);
  }
  return st;
}

rcc_status_t rcc_job_parse(const char *name, const char *text, size_t len, rcc_job_t **out) {
  rcc_yaml_diag_t d;
  rcc_yaml_diag_init(&d, name, text, len, RCC_JOB_MAX_ERRORS);
  rcc_status_t st = parse_text(name, text, len, &d, out);
  st = record_errors(st, &d);
  rcc_yaml_diag_free(&d);
  return st;
}

/* Reads a whole file (at most JOB_MAX_BYTES); errors go to the diagnostics (none when d
 * is NULL). */
static rcc_status_t read_file(const char *path, rcc_yaml_diag_t *d, char **text, size_t *len) {
  *text = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (d) rcc_yaml_diag_error(d, 0, 0, 0, "cannot open job file: %s", strerror(errno));
    return RCC_ERR_IO;
  }
  char *buf = malloc(JOB_MAX_BYTES + 1);
  if (!buf) {
    fclose(f);
    return RCC_ERR_NOMEM;
  }
  size_t n = fread(buf, 1, JOB_MAX_BYTES + 1, f);
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    if (d) rcc_yaml_diag_error(d, 0, 0, 0, "cannot read job file: %s", strerror(errno));
    return RCC_ERR_IO;
  }
  if (n > JOB_MAX_BYTES) {
    free(buf);
    if (d)
      rcc_yaml_diag_error(d, 0, 0, 0, "larger than %d MiB: not a job file", JOB_MAX_BYTES >> 20);
    return RCC_ERR_FORMAT;
  }
  *text = buf;
  *len = n;
  return RCC_OK;
}

rcc_status_t rcc_job_load(const char *path, rcc_job_t **out) {
  *out = NULL;
  rcc_yaml_diag_t d;
  rcc_yaml_diag_init(&d, path, "", 0, RCC_JOB_MAX_ERRORS);
  char *text;
  size_t len = 0;
  rcc_status_t st = read_file(path, &d, &text, &len);
  if (st == RCC_OK) {
    d.text = text;
    d.len = len;
    st = parse_text(path, text, len, &d, out);
  }
  st = record_errors(st, &d);
  rcc_yaml_diag_free(&d);
  free(text);
  return st;
}

/* A directory holding config.json, or one error at the key's place. */
static void check_model_dir(rcc_yaml_diag_t *d, const char *key, const char *dir,
                            rcc_job_pos_t pos) {
  struct stat sb;
  char cfg[4096];
  if (stat(dir, &sb) != 0)
    rcc_yaml_diag_error(d, pos.line, pos.col, 1, "%s directory '%s' does not exist", key, dir);
  else if (!S_ISDIR(sb.st_mode))
    rcc_yaml_diag_error(d, pos.line, pos.col, 1, "%s '%s' is not a directory", key, dir);
  else if (snprintf(cfg, sizeof cfg, "%s/config.json", dir) >= (int)sizeof cfg ||
           stat(cfg, &sb) != 0 || !S_ISREG(sb.st_mode))
    rcc_yaml_diag_error(d, pos.line, pos.col, 1,
                        "%s directory '%s' has no config.json (expected a Hugging Face model "
                        "directory)",
                        key, dir);
}

rcc_status_t rcc_job_check_paths(const rcc_job_t *job) {
  const char *name = job->path ? job->path : "job";
  rcc_yaml_diag_t d;
  rcc_yaml_diag_init(&d, name, "", 0, RCC_JOB_MAX_ERRORS);
  /* The source text only serves to quote lines; without it messages keep their place. */
  char *text = NULL;
  size_t len = 0;
  if (job->path && read_file(job->path, NULL, &text, &len) == RCC_OK) {
    d.text = text;
    d.len = len;
  }
  check_model_dir(&d, "model", job->model, job->model_pos);
  if (job->base_model) check_model_dir(&d, "base_model", job->base_model, job->base_model_pos);
  rcc_status_t st = record_errors(d.errors ? RCC_ERR_ARG : RCC_OK, &d);
  rcc_yaml_diag_free(&d);
  free(text);
  return st;
}
