/* Thread-local last-error message behind rcc_fail(). */
#include "common/status.h"

#include <stdio.h>
#include <string.h>

enum { RCC_ERROR_MAX = 2048 };
static _Thread_local char last_error[RCC_ERROR_MAX];

rcc_status_t rcc_fail(rcc_status_t st, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(last_error, sizeof last_error, fmt, ap);
  va_end(ap);
  return st;
}

rcc_status_t rcc_fail_context(rcc_status_t st, const char *fmt, ...) {
  char prefix[RCC_ERROR_MAX], old[RCC_ERROR_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, last_error, sizeof old);
  /* Truncation is fine: the start of a long message says what went wrong. */
  size_t n = strnlen(prefix, sizeof prefix - 1);
  memcpy(last_error, prefix, n);
  size_t room = sizeof last_error - n;
  if (room > 2) {
    last_error[n] = ':';
    last_error[n + 1] = ' ';
    memcpy(last_error + n + 2, old, room - 2);
  }
  last_error[sizeof last_error - 1] = '\0';
  return st;
}

const char *rcc_last_error(void) { return last_error[0] ? last_error : "no error message"; }

void rcc_clear_error(void) { last_error[0] = '\0'; }

const char *rcc_status_str(rcc_status_t st) {
  switch (st) {
  case RCC_OK: return "ok";
  case RCC_ERR_ARG: return "invalid argument";
  case RCC_ERR_IO: return "I/O error";
  case RCC_ERR_FORMAT: return "malformed input";
  case RCC_ERR_NOMEM: return "out of memory";
  case RCC_ERR_UNSUPPORTED: return "unsupported";
  case RCC_ERR_MPI: return "MPI error";
  case RCC_ERR_CUDA: return "CUDA error";
  case RCC_ERR_NUMERIC: return "numerical error";
  }
  return "unknown status";
}
