/* Job key paths -> values in a job's YAML document (see job_override.h). The document
 * keeps nodes in one array addressed by 1-based ids; adding a node may move that array,
 * so this file holds ids, never node pointers, across yaml_document_add_* calls. */
#include "jobs/job_override.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "jobs/yaml_diag.h"

enum { MAX_SEGMENT = 128, MAX_LIST = 64 };

int rcc_job_path_valid(const char *path) {
  const char *p = path;
  for (;;) {
    size_t n = 0;
    while (isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '-')
      n++;
    if (n == 0 || n >= MAX_SEGMENT) return 0;
    p += n;
    while (*p == '[') {
      p++;
      if (!isdigit((unsigned char)*p)) return 0;
      while (isdigit((unsigned char)*p))
        p++;
      if (*p++ != ']') return 0;
    }
    if (*p == '\0') return 1;
    if (*p++ != '.') return 0;
  }
}

static yaml_node_t *node(yaml_document_t *d, int id) { return yaml_document_get_node(d, id); }

static const char *scalar(yaml_document_t *d, int id) {
  yaml_node_t *n = node(d, id);
  return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* The value id of `key` in mapping `map`, 0 when absent. */
static int map_get(yaml_document_t *d, int map, const char *key) {
  yaml_node_t *m = node(d, map);
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
    const char *k = scalar(d, p->key);
    if (k && !strcmp(k, key)) return p->value;
  }
  return 0;
}

/* Fails with the keys the mapping has, and the likely one when `key` looks like a typo. */
static rcc_status_t no_key(yaml_document_t *d, int map, const char *path, const char *prefix,
                           const char *key) {
  yaml_node_t *m = node(d, map);
  const char *keys[64];
  size_t n = 0;
  char list[512] = "";
  for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top && n < 64;
       p++) {
    const char *k = scalar(d, p->key);
    if (!k) continue;
    keys[n++] = k;
    size_t used = strlen(list);
    snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", k);
  }
  const char *guess = rcc_did_you_mean(key, keys, n);
  if (guess)
    return rcc_fail(RCC_ERR_ARG, "%s: no key '%s' in %s (did you mean '%s'?)", path, key,
                    prefix[0] ? prefix : "the base job", guess);
  return rcc_fail(RCC_ERR_ARG, "%s: no key '%s' in %s (it has: %s)", path, key,
                  prefix[0] ? prefix : "the base job", list);
}

/* Splits "[a, b, c]" into its items (copied into `store`, pointers in `items`). */
static int split_list(const char *value, char *store, size_t size, const char **items) {
  snprintf(store, size, "%s", value + 1);
  char *end = strrchr(store, ']');
  if (!end || end[1]) return -1;
  *end = '\0';
  int n = 0;
  for (char *save = NULL, *t = strtok_r(store, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (isspace((unsigned char)*t))
      t++;
    char *e = t + strlen(t);
    while (e > t && isspace((unsigned char)e[-1]))
      *--e = '\0';
    if (!*t || n == MAX_LIST) return -1;
    items[n++] = t;
  }
  return n;
}

/* *id = a new node holding `value`: a plain scalar, or a flow sequence of plain scalars. */
static rcc_status_t add_value(yaml_document_t *d, const char *path, const char *value, int *id) {
  if (value[0] != '[') {
    *id = yaml_document_add_scalar(d, NULL, (yaml_char_t *)value, (int)strlen(value),
                                   YAML_ANY_SCALAR_STYLE);
    return *id ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
  }
  char store[1024];
  const char *items[MAX_LIST];
  int n = split_list(value, store, sizeof store, items);
  if (n < 0)
    return rcc_fail(RCC_ERR_ARG, "%s: '%s' is not a list of plain values like [a, b]", path, value);
  int seq = yaml_document_add_sequence(d, NULL, YAML_FLOW_SEQUENCE_STYLE);
  for (int i = 0; seq && i < n; i++) {
    int item = yaml_document_add_scalar(d, NULL, (yaml_char_t *)items[i], (int)strlen(items[i]),
                                        YAML_ANY_SCALAR_STYLE);
    if (!item || !yaml_document_append_sequence_item(d, seq, item)) seq = 0;
  }
  *id = seq;
  return seq ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
}

/* cascade.order: the stages list becomes the named base stages in the given order. */
static rcc_status_t set_order(yaml_document_t *d, const char *value) {
  const char *path = RCC_JOB_ORDER_PATH;
  int root = 1, cascade = map_get(d, root, "cascade");
  int stages =
      cascade && node(d, cascade)->type == YAML_MAPPING_NODE ? map_get(d, cascade, "stages") : 0;
  if (!stages || node(d, stages)->type != YAML_SEQUENCE_NODE)
    return rcc_fail(RCC_ERR_ARG, "%s: the base job has no cascade.stages list", path);
  char store[1024];
  const char *names[MAX_LIST];
  int n = value[0] == '[' ? split_list(value, store, sizeof store, names) : -1;
  if (n < 1)
    return rcc_fail(RCC_ERR_ARG, "%s: '%s' is not a list of stage names like [dare, nullu]", path,
                    value);
  yaml_node_t *seq = node(d, stages);
  int have = (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
  if (n > have)
    return rcc_fail(RCC_ERR_ARG, "%s: %d stages named, the base job has %d", path, n, have);
  int old[MAX_LIST], pick[MAX_LIST];
  for (int i = 0; i < have && i < MAX_LIST; i++)
    old[i] = seq->data.sequence.items.start[i];
  for (int i = 0; i < n; i++) {
    pick[i] = 0;
    for (int j = 0; j < have && !pick[i]; j++) {
      const char *nm =
          node(d, old[j])->type == YAML_MAPPING_NODE ? scalar(d, map_get(d, old[j], "name")) : NULL;
      if (nm && !strcmp(nm, names[i])) pick[i] = old[j];
    }
    if (!pick[i])
      return rcc_fail(RCC_ERR_ARG, "%s: the base job has no stage named '%s'", path, names[i]);
    for (int k = 0; k < i; k++)
      if (pick[k] == pick[i])
        return rcc_fail(RCC_ERR_ARG, "%s: stage '%s' named twice", path, names[i]);
  }
  /* Shrinking in place: the sequence's item stack has room for `have` >= n ids. */
  for (int i = 0; i < n; i++)
    seq->data.sequence.items.start[i] = pick[i];
  seq->data.sequence.items.top = seq->data.sequence.items.start + n;
  return RCC_OK;
}

static rcc_status_t set_one(yaml_document_t *d, const char *path, const char *value) {
  if (!rcc_job_path_valid(path))
    return rcc_fail(RCC_ERR_ARG, "'%s' is not a key path like cascade.stages[0].config.x", path);
  if (!strcmp(path, RCC_JOB_ORDER_PATH)) return set_order(d, value);
  int val;
  rcc_status_t st = add_value(d, path, value, &val);
  if (st != RCC_OK) return st;
  char prefix[1024] = "";
  int cur = 1;
  const char *p = path;
  while (*p) {
    char key[MAX_SEGMENT];
    size_t n = strcspn(p, ".[");
    memcpy(key, p, n);
    key[n] = '\0';
    p += n;
    if (node(d, cur)->type != YAML_MAPPING_NODE)
      return rcc_fail(RCC_ERR_ARG, "%s: %s is not a mapping", path, prefix);
    int next = map_get(d, cur, key);
    if (!next && *p) return no_key(d, cur, path, prefix, key);
    size_t used = strlen(prefix);
    snprintf(prefix + used, sizeof prefix - used, "%s%s", used ? "." : "", key);
    if (!next) {
      /* Only the last key may be new: the job parser then checks that it is a real key. */
      int k = yaml_document_add_scalar(d, NULL, (yaml_char_t *)key, (int)n, YAML_ANY_SCALAR_STYLE);
      if (!k || !yaml_document_append_mapping_pair(d, cur, k, val))
        return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", path);
      return RCC_OK;
    }
    int *slot = NULL;
    yaml_node_t *m = node(d, cur);
    for (yaml_node_pair_t *q = m->data.mapping.pairs.start; q < m->data.mapping.pairs.top; q++)
      if (q->value == next) slot = &q->value;
    cur = next;
    while (*p == '[') {
      long i = strtol(p + 1, (char **)&p, 10);
      p++; /* ']' */
      yaml_node_t *s = node(d, cur);
      if (s->type != YAML_SEQUENCE_NODE)
        return rcc_fail(RCC_ERR_ARG, "%s: %s is not a list", path, prefix);
      long have = s->data.sequence.items.top - s->data.sequence.items.start;
      if (i >= have)
        return rcc_fail(RCC_ERR_ARG, "%s: index %ld is past the end of %s (%ld item%s)", path, i,
                        prefix, have, have == 1 ? "" : "s");
      slot = &s->data.sequence.items.start[i];
      cur = *slot;
      used = strlen(prefix);
      snprintf(prefix + used, sizeof prefix - used, "[%ld]", i);
    }
    if (*p == '.') {
      p++;
      continue;
    }
    yaml_node_type_t t = node(d, cur)->type;
    if (t == YAML_MAPPING_NODE)
      return rcc_fail(RCC_ERR_ARG, "%s: is a mapping in the base job, not a value", path);
    if ((t == YAML_SEQUENCE_NODE) != (value[0] == '['))
      return rcc_fail(RCC_ERR_ARG, "%s: the base job has a %s here, the sweep gives '%s'", path,
                      t == YAML_SEQUENCE_NODE ? "list" : "single value", value);
    *slot = val;
  }
  return RCC_OK;
}

typedef struct {
  char *buf;
  size_t len, cap;
} sink_t;

static int sink_write(void *data, unsigned char *bytes, size_t size) {
  sink_t *s = data;
  if (s->len + size + 1 > s->cap) {
    size_t cap = (s->len + size + 1) * 2;
    char *b = realloc(s->buf, cap);
    if (!b) return 0;
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, bytes, size);
  s->len += size;
  s->buf[s->len] = '\0';
  return 1;
}

rcc_status_t rcc_job_override(const char *name, const char *text, size_t len,
                              const rcc_job_setting_t *settings, int n, char **out, int *bad) {
  *out = NULL;
  *bad = -1;
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", name);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  int loaded = yaml_parser_load(&parser, &doc);
  if (!loaded || !yaml_document_get_root_node(&doc) ||
      yaml_document_get_root_node(&doc)->type != YAML_MAPPING_NODE) {
    rcc_status_t st = rcc_fail(RCC_ERR_FORMAT, "%s:%zu:%zu: not a job file: %s", name,
                               parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                               parser.problem ? parser.problem : "not a YAML mapping");
    if (loaded) yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return st;
  }
  yaml_parser_delete(&parser);
  for (int i = 0; i < n; i++) {
    rcc_status_t st = set_one(&doc, settings[i].path, settings[i].value);
    if (st != RCC_OK) {
      *bad = i;
      yaml_document_delete(&doc);
      return st;
    }
  }
  yaml_emitter_t em;
  sink_t sink = {0};
  if (!yaml_emitter_initialize(&em)) {
    yaml_document_delete(&doc);
    return rcc_fail(RCC_ERR_NOMEM, "%s: out of memory", name);
  }
  yaml_emitter_set_output(&em, sink_write, &sink);
  yaml_emitter_set_unicode(&em, 1);
  yaml_emitter_set_width(&em, 100);
  /* yaml_emitter_dump takes the document and deletes it, whatever happens. */
  int ok = yaml_emitter_open(&em);
  if (!ok) yaml_document_delete(&doc);
  ok = ok && yaml_emitter_dump(&em, &doc) && yaml_emitter_close(&em) && yaml_emitter_flush(&em);
  rcc_status_t st = RCC_OK;
  if (!ok || !sink.buf) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: cannot write the job back as YAML: %s", name,
                  em.problem ? em.problem : "out of memory");
    free(sink.buf);
  } else {
    *out = sink.buf;
  }
  yaml_emitter_delete(&em);
  return st;
}
