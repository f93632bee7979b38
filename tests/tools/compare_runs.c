/* compare_runs RUN_A RUN_B [--exact]: checks that two run directories of the same job agree:
 * the same decision for every attempt of every stage, the same rank per layer, bit masks of
 * packed.safetensors identical on >= 99.9% of entries, final metric within 0.2 points.
 * --exact: the final metric equal and packed.safetensors byte-identical (a resumed run
 * against an uninterrupted one on the same ranks). Exit 0 when they agree, 1 otherwise. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

static int failures = 0;
#define CHECK(cond, ...)                                                                           \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      fprintf(stderr, "compare_runs: " __VA_ARGS__);                                               \
      fputc('\n', stderr);                                                                         \
      failures++;                                                                                  \
    }                                                                                              \
  } while (0)

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if (buf) buf[n] = '\0';
  if (len) *len = (size_t)n;
  return buf;
}

static cJSON *report(const char *run) {
  char path[4200];
  snprintf(path, sizeof path, "%s/report.json", run);
  char *text = slurp(path, NULL);
  cJSON *o = text ? cJSON_Parse(text) : NULL;
  free(text);
  if (!o) {
    fprintf(stderr, "compare_runs: cannot read %s\n", path);
    exit(1);
  }
  return o;
}

static double num(const cJSON *o, const char *a, const char *b) {
  const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, a), b);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void compare_decisions(cJSON *ra, cJSON *rb) {
  cJSON *sa = cJSON_GetObjectItem(ra, "stages"), *sb = cJSON_GetObjectItem(rb, "stages");
  CHECK(cJSON_GetArraySize(sa) == cJSON_GetArraySize(sb), "stage counts differ");
  for (int i = 0; i < cJSON_GetArraySize(sa) && i < cJSON_GetArraySize(sb); i++) {
    cJSON *aa = cJSON_GetObjectItem(cJSON_GetArrayItem(sa, i), "attempts");
    cJSON *ab = cJSON_GetObjectItem(cJSON_GetArrayItem(sb, i), "attempts");
    CHECK(cJSON_GetArraySize(aa) == cJSON_GetArraySize(ab), "stage %d: attempt counts differ", i);
    for (int k = 0; k < cJSON_GetArraySize(aa) && k < cJSON_GetArraySize(ab); k++) {
      const char *da = cJSON_GetObjectItem(cJSON_GetArrayItem(aa, k), "decision")->valuestring;
      const char *db = cJSON_GetObjectItem(cJSON_GetArrayItem(ab, k), "decision")->valuestring;
      CHECK(!strcmp(da, db), "stage %d attempt %d: decision %s vs %s", i, k, da, db);
    }
  }
  cJSON *la = cJSON_GetObjectItem(ra, "layers"), *lb = cJSON_GetObjectItem(rb, "layers");
  CHECK(cJSON_GetArraySize(la) == cJSON_GetArraySize(lb), "layer counts differ");
  for (int i = 0; i < cJSON_GetArraySize(la) && i < cJSON_GetArraySize(lb); i++) {
    int a = cJSON_GetObjectItem(cJSON_GetArrayItem(la, i), "rank")->valueint;
    int b = cJSON_GetObjectItem(cJSON_GetArrayItem(lb, i), "rank")->valueint;
    CHECK(a == b, "layer %d: rank %d vs %d", i, a, b);
  }
}

static void compare_masks(const char *run_a, const char *run_b) {
  char pa[4200], pb[4200];
  snprintf(pa, sizeof pa, "%s/packed.safetensors", run_a);
  snprintf(pb, sizeof pb, "%s/packed.safetensors", run_b);
  rcc_safetensors_t *a, *b;
  if (rcc_st_open(pa, &a) != RCC_OK || rcc_st_open(pb, &b) != RCC_OK) {
    fprintf(stderr, "compare_runs: %s\n", rcc_last_error());
    exit(1);
  }
  int64_t bits = 0, differ = 0;
  for (int i = 0; i < rcc_st_count(a); i++) {
    const rcc_tensor_t *t = rcc_st_tensor(a, i);
    size_t n = strlen(t->name);
    if (n < 7 || strcmp(t->name + n - 7, ".S.mask")) continue;
    const rcc_tensor_t *u = rcc_st_find(b, t->name);
    CHECK(u && u->numel == t->numel, "%s: missing or of another size in %s", t->name, pb);
    if (!u || u->numel != t->numel) continue;
    const uint8_t *x = t->data, *y = u->data;
    for (int64_t k = 0; k < t->numel; k++) {
      bits += 8;
      differ += __builtin_popcount((unsigned)(x[k] ^ y[k]));
    }
  }
  double agree = bits ? 1.0 - (double)differ / (double)bits : 1.0;
  printf("compare_runs: masks agree on %.5f%% of %lld entries\n", 100.0 * agree, (long long)bits);
  CHECK(agree >= 0.999, "masks agree on only %.4f%% of entries", 100.0 * agree);
  rcc_st_close(a);
  rcc_st_close(b);
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--exact"))) {
    fprintf(stderr, "usage: compare_runs RUN_A RUN_B [--exact]\n");
    return 2;
  }
  const int exact = argc == 4;
  cJSON *ra = report(argv[1]), *rb = report(argv[2]);
  compare_decisions(ra, rb);
  double ma = num(ra, "final", "metric"), mb = num(rb, "final", "metric");
  printf("compare_runs: final metric %.2f vs %.2f\n", ma, mb);
  CHECK(exact ? ma == mb : fabs(ma - mb) <= 0.2, "final metric %.4f vs %.4f", ma, mb);
  CHECK(num(ra, "final", "params_stored") == num(rb, "final", "params_stored"),
        "params_stored %.0f vs %.0f", num(ra, "final", "params_stored"),
        num(rb, "final", "params_stored"));
  compare_masks(argv[1], argv[2]);
  if (exact) {
    char pa[4200], pb[4200];
    size_t na, nb;
    snprintf(pa, sizeof pa, "%s/packed.safetensors", argv[1]);
    snprintf(pb, sizeof pb, "%s/packed.safetensors", argv[2]);
    char *a = slurp(pa, &na), *b = slurp(pb, &nb);
    CHECK(a && b && na == nb && !memcmp(a, b, na), "packed.safetensors files differ");
    free(a);
    free(b);
  }
  cJSON_Delete(ra);
  cJSON_Delete(rb);
  if (failures) fprintf(stderr, "compare_runs: %d difference(s)\n", failures);
  return failures ? 1 : 0;
}
