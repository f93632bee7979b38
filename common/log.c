/* Rank-aware logging to stderr (progress on rank 0, problems from every rank). */
#include "common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "common/clock.h"

static int log_rank = 0, log_size = 1;
static rcc_log_level_t log_level = RCC_LOG_INFO;
static FILE *log_file = NULL;
static bool progress_open = false; /* a progress line sits on the terminal unfinished */
static double progress_last = -1e30;

static bool stderr_is_terminal(void) {
  static int cached = -1;
  if (cached < 0) cached = isatty(STDERR_FILENO);
  return cached == 1;
}

void rcc_log_progress_done(void) {
  if (!progress_open) return;
  fputs("\r\033[K", stderr);
  fflush(stderr);
  progress_open = false;
}

void rcc_log_progress(const char *fmt, ...) {
  if (log_rank != 0 || log_level > RCC_LOG_INFO) return;
  const bool tty = stderr_is_terminal();
  const double now = rcc_now_seconds();
  if (!tty && now - progress_last < 10.0) return;
  progress_last = now;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (tty) {
    fprintf(stderr, "\rrcc-dist: %s\033[K", line); /* carriage return, erase to the end */
    fflush(stderr);
    progress_open = true;
  } else {
    fprintf(stderr, "rcc-dist: %s\n", line);
  }
}

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
  rcc_log_progress_done(); /* the message replaces the progress line */
  if (log_size > 1 && level >= RCC_LOG_WARN)
    fprintf(stderr, "rcc-dist[rank %d]: %s%s\n", log_rank, tags[level], line);
  else
    fprintf(stderr, "rcc-dist: %s%s\n", tags[level], line);
  if (log_file) {
    fprintf(log_file, "%s%s\n", tags[level], line);
    fflush(log_file);
  }
}
