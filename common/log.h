/* Logging: progress from rank 0 only, errors from any rank with its rank number. */
#pragma once
#include <stdio.h>

typedef enum { RCC_LOG_DEBUG, RCC_LOG_INFO, RCC_LOG_WARN, RCC_LOG_ERROR } rcc_log_level_t;

/* Set once by the runner after the communicator is up; defaults to rank 0 of 1. */
void rcc_log_set_rank(int rank, int size);
void rcc_log_set_level(rcc_log_level_t level);
/* Also appends every message this rank prints to `file` (the run directory's log.txt);
 * NULL stops that. The caller keeps ownership of the FILE. */
void rcc_log_set_file(FILE *file);
/* INFO and DEBUG print on rank 0 only; WARN and ERROR print on every rank, prefixed. */
void rcc_log(rcc_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define RCC_INFO(...) rcc_log(RCC_LOG_INFO, __VA_ARGS__)
#define RCC_WARN(...) rcc_log(RCC_LOG_WARN, __VA_ARGS__)
#define RCC_ERROR(...) rcc_log(RCC_LOG_ERROR, __VA_ARGS__)
#define RCC_DEBUG(...) rcc_log(RCC_LOG_DEBUG, __VA_ARGS__)
