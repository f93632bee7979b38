/* Compiler-style messages for YAML files: position, source line, caret; plus the edit
 * distance behind "did you mean". See yaml_diag.h. */
#include "jobs/yaml_diag.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rcc_yaml_diag_init(rcc_yaml_diag_t *d, const char *path, const char *text, size_t len,
                        int max_errors) {
  memset(d, 0, sizeof *d);
  d->path = path;
  d->text = text;
  d->len = len;
  d->max_errors = max_errors;
}

void rcc_yaml_diag_free(rcc_yaml_diag_t *d) {
  free(d->out);
  d->out = NULL;
  d->out_len = d->out_cap = 0;
}

const char *rcc_yaml_diag_text(rcc_yaml_diag_t *d) { return d->out ? d->out : ""; }

/* Appends formatted text to the buffer, growing it; sets nomem when it cannot. */
static void append_v(rcc_yaml_diag_t *d, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  size_t need = d->out_len + (size_t)n + 1;
  if (need > d->out_cap) {
    size_t cap = d->out_cap ? d->out_cap : 1024;
    while (cap < need)
      cap *= 2;
    char *p = realloc(d->out, cap);
    if (!p) {
      d->nomem = true;
      return;
    }
    d->out = p;
    d->out_cap = cap;
  }
  vsnprintf(d->out + d->out_len, (size_t)n + 1, fmt, ap);
  d->out_len += (size_t)n;
}

static void append(rcc_yaml_diag_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void append(rcc_yaml_diag_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  append_v(d, fmt, ap);
  va_end(ap);
}

/* Finds line `line` (1-based) of the source: its start and its length without the line
 * break. Returns false past the end of the file. */
static bool source_line(const rcc_yaml_diag_t *d, int line, const char **start, size_t *len) {
  const char *p = d->text, *end = d->text + d->len;
  for (int l = 1; l < line; l++) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) return false;
    p = nl + 1;
  }
  if (p >= end) return false;
  const char *nl = memchr(p, '\n', (size_t)(end - p));
  size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
  if (n > 0 && p[n - 1] == '\r') n--;
  *start = p;
  *len = n;
  return true;
}

/* Prints the source line with a gutter, then a caret under character column `col`.
 * Tabs before the column are copied so that the caret lines up in a terminal. */
static void quote_source(rcc_yaml_diag_t *d, int line, int col, int width) {
  const char *s;
  size_t n;
  if (!source_line(d, line, &s, &n)) return;
  append(d, " %4d | %.*s\n", line, (int)n, s);
  append(d, "      | ");
  int chars = 0;
  size_t i = 0;
  /* Column counts characters: UTF-8 continuation bytes (10xxxxxx) do not start one. */
  for (; i < n && chars < col - 1; i++) {
    if (((unsigned char)s[i] & 0xC0) == 0x80) continue;
    append(d, "%c", s[i] == '\t' ? '\t' : ' ');
    chars++;
  }
  append(d, "^");
  for (int k = 1; k < width; k++)
    append(d, "~");
  append(d, "\n");
}

void rcc_yaml_diag_error(rcc_yaml_diag_t *d, int line, int col, int width, const char *fmt, ...) {
  if (d->errors >= d->max_errors) {
    if (d->dropped++ == 0)
      append(d, "%s: note: stopped reporting after %d errors; fix these and run again\n", d->path,
             d->max_errors);
    return;
  }
  d->errors++;
  if (line > 0)
    append(d, "%s:%d:%d: error: ", d->path, line, col);
  else
    append(d, "%s: error: ", d->path);
  va_list ap;
  va_start(ap, fmt);
  append_v(d, fmt, ap);
  va_end(ap);
  append(d, "\n");
  if (line > 0) quote_source(d, line, col, width < 1 ? 1 : width);
}

int rcc_edit_distance(const char *a, const char *b) {
  size_t n = strlen(a), m = strlen(b);
  /* Three rows of the (n+1) x (m+1) table: the previous two and the current one. */
  int *rows = malloc(3 * (m + 1) * sizeof *rows);
  if (!rows) return (int)(n > m ? n : m);
  int *pp = rows, *prev = rows + (m + 1), *cur = rows + 2 * (m + 1);
  for (size_t j = 0; j <= m; j++)
    prev[j] = (int)j;
  for (size_t i = 1; i <= n; i++) {
    cur[0] = (int)i;
    for (size_t j = 1; j <= m; j++) {
      int cost = a[i - 1] != b[j - 1];
      int best = prev[j - 1] + cost;
      if (prev[j] + 1 < best) best = prev[j] + 1;
      if (cur[j - 1] + 1 < best) best = cur[j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < best)
        best = pp[j - 2] + 1;
      cur[j] = best;
    }
    int *t = pp;
    pp = prev;
    prev = cur;
    cur = t;
  }
  int dist = prev[m];
  free(rows);
  return dist;
}

const char *rcc_did_you_mean(const char *word, const char *const *candidates, size_t n) {
  int len = (int)strlen(word);
  int limit = len / 3 > 2 ? len / 3 : 2;
  if (limit >= len) limit = len - 1;
  const char *best = NULL;
  int best_d = limit + 1;
  for (size_t i = 0; i < n; i++) {
    int dist = rcc_edit_distance(word, candidates[i]);
    if (dist < best_d) {
      best_d = dist;
      best = candidates[i];
    }
  }
  return best;
}

void rcc_yaml_diag_node_error(rcc_yaml_diag_t *d, const yaml_node_t *n, const char *message) {
  int width = 1;
  if (n->type == YAML_SCALAR_NODE && n->end_mark.line == n->start_mark.line &&
      n->end_mark.column > n->start_mark.column)
    width = (int)(n->end_mark.column - n->start_mark.column);
  rcc_yaml_diag_error(d, (int)n->start_mark.line + 1, (int)n->start_mark.column + 1, width, "%s",
                      message);
}
