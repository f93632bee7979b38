/* Status codes and the last-error message shared by every library in rcc-dist.
 * Library code never exits: it records a message with rcc_fail() and returns the
 * status up the stack; only runner/ decides to print and exit (or MPI_Abort). */
#pragma once
#include <stdarg.h>

typedef enum {
  RCC_OK = 0,
  RCC_ERR_ARG,         /* bad argument or bad user input (flags, job file) */
  RCC_ERR_IO,          /* a file could not be opened, read or written */
  RCC_ERR_FORMAT,      /* a file is malformed (safetensors, JSON, image, IDX, HDF5) */
  RCC_ERR_NOMEM,       /* an allocation failed or a size is past our limits */
  RCC_ERR_UNSUPPORTED, /* valid input that this build cannot handle */
  RCC_ERR_MPI,
  RCC_ERR_CUDA,
  RCC_ERR_NUMERIC, /* NaN/Inf, a failed factorization */
} rcc_status_t;

/* Records a printf-style message (thread-local) and returns `st`, so that callers write
 * `return rcc_fail(RCC_ERR_FORMAT, "%s: header length %llu past end of file", path, n);` */
rcc_status_t rcc_fail(rcc_status_t st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefixes the current message with more context ("loading model: ..."), keeps `st`. */
rcc_status_t rcc_fail_context(rcc_status_t st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *rcc_last_error(void);
void rcc_clear_error(void);
const char *rcc_status_str(rcc_status_t st);

#define RCC_TRY(expr)                                                                              \
  do {                                                                                             \
    rcc_status_t rcc_try_st_ = (expr);                                                             \
    if (rcc_try_st_ != RCC_OK) return rcc_try_st_;                                                 \
  } while (0)
