/* Compiler-style diagnostics for YAML input files: every message starts with
 * `file:line:col: error:`, then shows the source line with a caret under the offending
 * node, like gcc does. Messages collect in one buffer so that a user sees every problem
 * of a file in one pass; "did you mean" suggestions come from an edit distance. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

typedef struct {
  const char *path; /* the file's name as the user wrote it */
  const char *text; /* the file's bytes, for quoting source lines */
  size_t len;
  char *out; /* the collected messages, NUL-terminated (NULL until the first one) */
  size_t out_len, out_cap;
  int errors;     /* errors recorded, at most max_errors */
  int dropped;    /* errors past max_errors, counted but not shown */
  int max_errors; /* past this many, messages are dropped and one note says so */
  bool nomem;     /* an allocation failed: some text is missing */
} rcc_yaml_diag_t;

void rcc_yaml_diag_init(rcc_yaml_diag_t *d, const char *path, const char *text, size_t len,
                        int max_errors);
void rcc_yaml_diag_free(rcc_yaml_diag_t *d);

/* Records "path:line:col: error: MESSAGE", the source line and a caret followed by
 * width-1 tildes. line and col count from 1 (col in characters, as libyaml counts);
 * line 0 means the file as a whole (no position, no source line). */
void rcc_yaml_diag_error(rcc_yaml_diag_t *d, int line, int col, int width, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* The same at a libyaml node: its start position, a scalar on one line underlined whole,
 * a caret alone for anything bigger. `message` is the finished text. */
void rcc_yaml_diag_node_error(rcc_yaml_diag_t *d, const yaml_node_t *n, const char *message);
/* Collected text ("" when there is none); ends with a note when errors were dropped. */
const char *rcc_yaml_diag_text(rcc_yaml_diag_t *d);

/* Optimal string alignment distance: insertions, deletions, substitutions and swaps of
 * two neighbouring characters each cost 1 ("target_sparsty" -> "target_sparsity": 1). */
int rcc_edit_distance(const char *a, const char *b);

/* The candidate closest to `word`, if it is close enough to be a likely typo (distance at
 * most max(2, strlen(word) / 3) and below strlen(word)); NULL otherwise. Ties go to the
 * earlier candidate. */
const char *rcc_did_you_mean(const char *word, const char *const *candidates, size_t n);
