/* File helpers of the sweep commands (sweep, trial, report). */
#pragma once
#include <stddef.h>

#include "common/status.h"

/* mkdir -p. */
rcc_status_t rcc_mkdirs(const char *path);
/* `path` made absolute against the current directory (not resolving links), in buf. */
void rcc_abs_path(const char *path, char *buf, size_t size);
/* Writes text to path through path.tmp + rename, so readers never see half a file. */
rcc_status_t rcc_write_text(const char *path, const char *text);
/* The whole file, malloc'ed and NUL-terminated; NULL when it cannot be read. */
char *rcc_read_text(const char *path);
