/* Running other programs for sweeps (the trial's job, optuna, gnuplot, sbatch) without a
 * shell: fork + execvp with the standard streams where the caller wants them. */
#pragma once
#include <stddef.h>

typedef struct {
  const char *out_path;     /* stdout appended to this file (NULL: capture or inherit) */
  const char *err_path;     /* stderr appended to this file (NULL: inherit) */
  char **capture;           /* non-NULL: *capture = stdout, malloc'ed and NUL-terminated */
  const char *const *unset; /* environment variables removed in the child, NULL-ended */
} rcc_spawn_opts_t;

/* Runs argv[0] (looked up in PATH) to its end. Returns its exit status, 128 + N when
 * signal N ended it, 127 when it could not be started, -1 when fork failed. */
int rcc_spawn(char *const argv[], const rcc_spawn_opts_t *opts);

/* True when `name` is an executable file in a PATH directory. */
int rcc_have_program(const char *name);

/* This program's own absolute path (/proc/self/exe), for running rcc-dist again. */
const char *rcc_self_exe(void);
