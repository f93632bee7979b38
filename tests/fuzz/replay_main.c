/* Replays files through a fuzz target's LLVMFuzzerTestOneInput without libFuzzer, so the
 * committed crash inputs (tests/fuzz/regressions/TARGET/) and seed corpora run as plain
 * CTest tests in every build, gcc included. Arguments: files or folders (every regular
 * file in them, in name order); a folder that does not exist is skipped, since a target
 * without regressions has no folder in git. A crash (or a sanitizer report) fails the
 * test; so does finding no input at all, which would test nothing. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int replay_file(const char *path) {
  size_t size = 0;
  uint8_t *data = fuzz_read(path, &size);
  /* An exact-size copy, so that AddressSanitizer sees reads past the input's end. */
  uint8_t *exact = malloc(size ? size : 1);
  if (!exact) fuzz_die("replay: malloc");
  memcpy(exact, data, size);
  free(data);
  printf("replay %s (%zu bytes)\n", path, size);
  fflush(stdout);
  LLVMFuzzerTestOneInput(exact, size);
  free(exact);
  return 1;
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file of `dir`; returns how many. */
static int replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) fuzz_die(dir);
  char **names = NULL;
  int n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    if (n == cap && !(names = realloc(names, (size_t)(cap = cap ? 2 * cap : 64) * sizeof *names)))
      fuzz_die("replay: realloc");
    if (!(names[n++] = strdup(e->d_name))) fuzz_die("replay: strdup");
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp_names);
  int done = 0;
  for (int i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) done += replay_file(path);
    free(names[i]);
  }
  free(names);
  return done;
}

int main(int argc, char **argv) {
  int done = 0;
  for (int i = 1; i < argc; i++) {
    struct stat sb;
    if (stat(argv[i], &sb) != 0) {
      printf("replay: %s does not exist, skipped\n", argv[i]);
      continue;
    }
    done += S_ISDIR(sb.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
  }
  printf("replay: %d inputs, no crash\n", done);
  if (done == 0) {
    fprintf(stderr, "replay: no input found: nothing was tested\n");
    return 1;
  }
  return 0;
}
