/* Helpers shared by the fuzz targets of tests/fuzz: most readers take a path, not bytes,
 * so each target writes its input to a file in a private scratch folder in /tmp (made on
 * first use, emptied and removed at exit), never in the source tree. A failure of the
 * harness itself (disk full, no /tmp) aborts: it must not pass for a clean run. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FUZZ_MAX_FILES = 8 };

static char fuzz_dir_[64];
static char *fuzz_files_[FUZZ_MAX_FILES];
static int fuzz_n_files_;

static void fuzz_cleanup_(void) {
  for (int i = 0; i < fuzz_n_files_; i++) {
    unlink(fuzz_files_[i]);
    free(fuzz_files_[i]);
  }
  rmdir(fuzz_dir_);
}

static inline void fuzz_die(const char *what) {
  perror(what);
  abort();
}

/* The scratch folder, made on first use. */
static inline const char *fuzz_dir(void) {
  if (!fuzz_dir_[0]) {
    strcpy(fuzz_dir_, "/tmp/rcc-fuzz-XXXXXX");
    if (!mkdtemp(fuzz_dir_)) fuzz_die("fuzz: mkdtemp in /tmp");
    atexit(fuzz_cleanup_);
  }
  return fuzz_dir_;
}

/* The path of `name` in the scratch folder; the same pointer for the same name. */
static inline const char *fuzz_path(const char *name) {
  const char *dir = fuzz_dir();
  size_t n = strlen(dir) + strlen(name) + 2;
  for (int i = 0; i < fuzz_n_files_; i++)
    if (strcmp(fuzz_files_[i] + strlen(dir) + 1, name) == 0) return fuzz_files_[i];
  if (fuzz_n_files_ == FUZZ_MAX_FILES) fuzz_die("fuzz: too many scratch files");
  char *p = malloc(n);
  if (!p) fuzz_die("fuzz: malloc");
  snprintf(p, n, "%s/%s", dir, name);
  fuzz_files_[fuzz_n_files_++] = p;
  return p;
}

static inline void fuzz_write(const char *path, const void *data, size_t size) {
  FILE *f = fopen(path, "wb");
  if (!f) fuzz_die(path);
  if ((size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) fuzz_die(path);
}

/* A whole file into a malloc'ed buffer (*size bytes, plus a NUL not counted). */
static inline uint8_t *fuzz_read(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) fuzz_die(path);
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap + 1);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) buf = realloc(buf, (cap *= 2) + 1);
  }
  if (!buf || ferror(f)) fuzz_die(path);
  fclose(f);
  buf[n] = 0;
  *size = n;
  return buf;
}

/* Reads every byte of p[0..n), so that AddressSanitizer checks the whole range. */
static volatile uint8_t fuzz_sink_;
static inline void fuzz_touch(const void *p, size_t n) {
  const uint8_t *b = p;
  uint8_t x = 0;
  for (size_t i = 0; i < n; i++)
    x ^= b[i];
  fuzz_sink_ ^= x;
}

/* A NUL-terminated copy of the input, for parsers that take C strings. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) fuzz_die("fuzz: malloc");
  if (size > 0) memcpy(s, data, size);
  s[size] = '\0';
  return s;
}
