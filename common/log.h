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

/* A transient progress line from rank 0 ("stage 2/3 nullu/svd: layer 5 of 18 on rank 0").
 * On a terminal it rewrites one line in place and the next message starts on a clean
 * line; elsewhere (a Slurm output file, a pipe) it prints a plain line at most every
 * 10 s, so that long phases show life without flooding the log. Never goes to the log
 * file: log.txt keeps the permanent lines only. */
void rcc_log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Erases the progress line from the terminal (before output on stdout follows). */
void rcc_log_progress_done(void);

#define RCC_INFO(...) rcc_log(RCC_LOG_INFO, __VA_ARGS__)
#define RCC_WARN(...) rcc_log(RCC_LOG_WARN, __VA_ARGS__)
#define RCC_ERROR(...) rcc_log(RCC_LOG_ERROR, __VA_ARGS__)
#define RCC_DEBUG(...) rcc_log(RCC_LOG_DEBUG, __VA_ARGS__)
