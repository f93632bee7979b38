/* Rank-aware logging to stderr (progress on rank 0, problems from every rank). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>

static int log_rank = 0, log_size = 1;
static rcc_log_level_t log_level = RCC_LOG_INFO;
static FILE *log_file = NULL;

void rcc_log_set_file(FILE *file) { log_file = file; }

void rcc_log_set_rank(int rank, int size) {
  log_rank = rank;
  log_size = size;
}

void rcc_log_set_level(rcc_log_level_t level) { log_level = level; }

void rcc_log(rcc_log_level_t level, const char *fmt, ...) {
  if (level < log_level) return;
  if (level <= RCC_LOG_INFO && log_rank != 0) return;
  static const char *tags[] = {"debug: ", "", "warning: ", "error: "};
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (log_size > 1 && level >= RCC_LOG_WARN)
    fprintf(stderr, "rcc-dist[rank %d]: %s%s\n", log_rank, tags[level], line);
  else
    fprintf(stderr, "rcc-dist: %s%s\n", tags[level], line);
  if (log_file) {
    fprintf(log_file, "%s%s\n", tags[level], line);
    fflush(log_file);
  }
}
