/* File helpers of runner/sweep_util.h. */
#include "runner/sweep_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

rcc_status_t rcc_mkdirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1;; p++) {
    if (*p && *p != '/') continue;
    char was = *p;
    *p = '\0';
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
      return rcc_fail(RCC_ERR_IO, "%s: cannot create directory: %s", buf, strerror(errno));
    if (!was) return RCC_OK;
    *p = was;
  }
}

void rcc_abs_path(const char *path, char *buf, size_t size) {
  char cwd[4096];
  if (path[0] == '/' || !getcwd(cwd, sizeof cwd)) {
    snprintf(buf, size, "%s", path);
    return;
  }
  while (path[0] == '.' && path[1] == '/')
    path += 2;
  if (!strcmp(path, "."))
    snprintf(buf, size, "%s", cwd);
  else
    snprintf(buf, size, "%s/%s", cwd, path);
}

rcc_status_t rcc_write_text(const char *path, const char *text) {
  char tmp[4200];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", tmp, strerror(errno));
  int ok = fputs(text, f) >= 0;
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp, path) != 0)
    return rcc_fail(RCC_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return RCC_OK;
}

char *rcc_read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      char *b = realloc(buf, cap = cap * 2 + 8192);
      if (!b) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = b;
    }
    size_t n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0) break;
  }
  fclose(f);
  buf[len] = '\0';
  return buf;
}
