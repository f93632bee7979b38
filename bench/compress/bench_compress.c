/* bench_compress: wall time of each compression kernel of compress/ on the linear layers of
 * a CLIP ViT-B/32 vision tower, one method after another, through the library's C API.
 *
 * The weights come from the model's model.safetensors (bench/forward/make_model.py), the
 * calibration statistics H = X^T X (n, n) from the files torch_compress.py `prepare` writes
 * (one per input width: 768 for q, k, v, out, fc1 and 3072 for fc2). For every method of
 * the plan, the first layer is run once untimed (warm-up), then each layer of the first
 * `blocks` encoder blocks is run once; only the kernel call is timed (copies of W and the
 * writing of results are not). The CPU backend is created with T threads as rcc-dist's
 * session does (OpenMP T threads, OpenBLAS serial outside the kernels); the kernels widen
 * OpenBLAS to T threads around their own LAPACK and BLAS calls (compress/blas_threads.h).
 * Results go to --out for torch_compress.py to compare with its own; one JSON line per
 * method goes to stdout.
 *
 * Methods and their settings (torch_compress.py uses the same):
 *   magnitude  rcc_prune_magnitude, unstructured 50 %, per layer
 *   wanda      rcc_prune_wanda, 50 % per row, col_sq = diag(H)
 *   sparsegpt  rcc_prune_sparsegpt, unstructured 50 %, block 128, damp 0.01
 *   svd        rcc_lowrank_svd, energy 0.9, ratio 1.0 (path AUTO -> exact sgesdd, float)
 *   svd_rand   rcc_lowrank_svd, energy 0.9, ratio 0.1 (path AUTO -> randomized, float)
 *   whitened   rcc_lowrank_whitened, energy 0.95, ratio 0.25, damp 0.01 (AUTO -> randomized)
 *   alpha      rcc_alpha_closed_form, lambda 0.001, W_hat = W pruned by magnitude 50 %
 *
 * Result files, raw little-endian, named <method>-b<block>.<layer>.<ext> (layer q, k, v,
 * out, fc1, fc2): .mask = the kept mask packed 8 entries a byte, first entry in the high
 * bit (numpy.packbits); .w = float32 W (m, n) after SparseGPT; .lr = int32 rank, float32
 * U (m, rank), float32 V (rank, n); .alpha = float32 alpha (m). */
#include <cblas.h>
#include <getopt.h>
#include <limits.h>
#include <omp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_time.h"
#include "backend/backend.h"
#include "common/status.h"
#include "compress/alpha.h"
#include "compress/lowrank.h"
#include "compress/prune.h"
#include "io/safetensors.h"

static const char CALIB_MAGIC[8] = {'R', 'C', 'C', 'C', 'A', 'L', '1', '\0'};

enum { N_BLOCKS = 12, N_KINDS = 6, N_WIDTHS = 2 };

typedef enum { MAGNITUDE, WANDA, SPARSEGPT, SVD, SVD_RAND, WHITENED, ALPHA, N_METHODS } method_t;
static const char *const METHOD_NAMES[N_METHODS] = {"magnitude", "wanda",    "sparsegpt", "svd",
                                                    "svd_rand",  "whitened", "alpha"};

/* Encoder block b's linears, in this order: HF names and the short names of result files. */
static const char *const KIND_NAMES[N_KINDS] = {"self_attn.q_proj", "self_attn.k_proj",
                                                "self_attn.v_proj", "self_attn.out_proj",
                                                "mlp.fc1",          "mlp.fc2"};
static const char *const KIND_SHORT[N_KINDS] = {"q", "k", "v", "out", "fc1", "fc2"};

static const double SPARSITY = 0.5, DAMP = 0.01, ALPHA_LAMBDA = 0.001;
static const int SPARSEGPT_BLOCK = 128;
static const rcc_rank_rule_t RULE_SVD = {0.9, 1.0, 1}, RULE_SVD_RAND = {0.9, 0.1, 1},
                             RULE_WHITENED = {0.95, 0.25, 1};

/* H (n, n) and its diagonal, for one input width. */
typedef struct {
  int n, tokens;
  double *H, *col_sq;
} calib_t;

typedef struct {
  char id[32]; /* "b0.q" */
  const float *W;
  int m, n;
  const calib_t *calib;
} layer_t;

/* Reads <dir>/calib-<n>.bin: char magic[8], int32 n, int32 tokens, float64 H[n * n]. */
static rcc_status_t calib_read(const char *dir, int n, calib_t *c) {
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/calib-%d.bin", dir, n);
  *c = (calib_t){.n = n};
  FILE *f = fopen(path, "rb");
  if (!f)
    return rcc_fail(RCC_ERR_IO, "%s: cannot open (run torch_compress.py prepare first)", path);
  char magic[8];
  int32_t dims[2];
  rcc_status_t st = RCC_OK;
  size_t count = (size_t)n * n;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, CALIB_MAGIC, 8) != 0)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: not a calibration file (bad magic)", path);
  else if (fread(dims, sizeof dims[0], 2, f) != 2 || dims[0] != n || dims[1] < 1)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: header says n = %d, tokens = %d; %d expected", path,
                  (int)dims[0], (int)dims[1], n);
  else if (!(c->H = malloc(count * sizeof *c->H)) || !(c->col_sq = malloc(n * sizeof *c->col_sq)))
    st = rcc_fail(RCC_ERR_NOMEM, "%s: no memory for H (%d x %d)", path, n, n);
  else if (fread(c->H, sizeof *c->H, count, f) != count || fgetc(f) != EOF)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: H is not exactly %d x %d float64 values", path, n, n);
  fclose(f);
  if (st != RCC_OK) {
    free(c->H);
    free(c->col_sq);
    *c = (calib_t){0};
    return st;
  }
  c->tokens = dims[1];
  /* Wanda's statistic, as runner/stages.c derives it: col_sq[j] = sum_x x_j^2 = H_jj. */
  for (int j = 0; j < n; j++)
    c->col_sq[j] = c->H[(size_t)j * n + j];
  return RCC_OK;
}

/* Writes `count` chunks (pointer, bytes) to one file. */
static rcc_status_t write_chunks(const char *path, int count, const void *const *data,
                                 const size_t *bytes) {
  FILE *f = fopen(path, "wb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot create the result file", path);
  bool ok = true;
  for (int i = 0; i < count && ok; i++)
    ok = fwrite(data[i], 1, bytes[i], f) == bytes[i];
  ok = (fclose(f) == 0) && ok;
  return ok ? RCC_OK : rcc_fail(RCC_ERR_IO, "%s: write failed (disk full?)", path);
}

/* The kept mask (numel) packed as numpy.packbits does: first entry in the high bit. */
static rcc_status_t write_mask(const char *path, const uint8_t *mask, int64_t numel) {
  size_t bytes = (size_t)(numel + 7) / 8;
  uint8_t *packed = calloc(bytes, 1);
  if (!packed)
    return rcc_fail(RCC_ERR_NOMEM, "%s: packing %lld mask entries", path, (long long)numel);
  for (int64_t i = 0; i < numel; i++)
    if (mask[i]) packed[i / 8] |= (uint8_t)(0x80u >> (i % 8));
  const void *data[] = {packed};
  rcc_status_t st = write_chunks(path, 1, data, &bytes);
  free(packed);
  return st;
}

static rcc_status_t write_lowrank(const char *path, const rcc_lowrank_t *lr) {
  int32_t rank = lr->rank;
  const void *data[] = {&rank, lr->U, lr->V};
  size_t bytes[] = {sizeof rank, (size_t)lr->m * lr->rank * sizeof(float),
                    (size_t)lr->rank * lr->n * sizeof(float)};
  return write_chunks(path, 3, data, bytes);
}

/* Work buffers of one layer: W's copy and the mask for the pruning kernels, the dense
 * approximation for alpha, the factors for the low-rank ones. */
typedef struct {
  float *W, *W_hat, *alpha;
  uint8_t *mask;
  rcc_lowrank_t lr;
} work_t;

static void work_free(work_t *w) {
  free(w->W);
  free(w->W_hat);
  free(w->alpha);
  free(w->mask);
  rcc_lowrank_free(&w->lr);
}

/* Copies of W and an all-kept mask (untimed set-up of the pruning kernels). */
static rcc_status_t work_prune_init(work_t *w, const layer_t *L) {
  size_t mn = (size_t)L->m * L->n;
  w->W = malloc(mn * sizeof *w->W);
  w->mask = malloc(mn);
  if (!w->W || !w->mask) return rcc_fail(RCC_ERR_NOMEM, "bench_compress: %s: work arrays", L->id);
  memcpy(w->W, L->W, mn * sizeof *w->W);
  memset(w->mask, 1, mn);
  return RCC_OK;
}

/* Runs `meth` on layer L once; *seconds = the kernel call's wall time. out_stem (NULL for
 * the warm-up) is where the results go: out_stem + extension. */
static rcc_status_t run_layer(method_t meth, const layer_t *L, const char *out_stem,
                              double *seconds) {
  const int m = L->m, n = L->n;
  const size_t mn = (size_t)m * n;
  const rcc_nm_t unstructured = {0, 0};
  work_t w = {0};
  rcc_status_t st = RCC_OK;
  double t0 = 0.0, t1 = 0.0;
  switch (meth) {
  case MAGNITUDE:
  case WANDA:
  case SPARSEGPT:
    if ((st = work_prune_init(&w, L)) != RCC_OK) break;
    t0 = rcc_bench_now();
    if (meth == MAGNITUDE)
      st = rcc_prune_magnitude(w.W, w.mask, m, n, SPARSITY, unstructured, false);
    else if (meth == WANDA)
      st = rcc_prune_wanda(w.W, w.mask, m, n, L->calib->col_sq, SPARSITY, unstructured);
    else
      st = rcc_prune_sparsegpt(w.W, w.mask, m, n, L->calib->H, SPARSITY, unstructured,
                               SPARSEGPT_BLOCK, DAMP);
    t1 = rcc_bench_now();
    break;
  case SVD:
  case SVD_RAND:
    t0 = rcc_bench_now();
    st = rcc_lowrank_svd(L->W, m, n, meth == SVD ? &RULE_SVD : &RULE_SVD_RAND, &w.lr, NULL);
    t1 = rcc_bench_now();
    break;
  case WHITENED:
    t0 = rcc_bench_now();
    st = rcc_lowrank_whitened(L->W, m, n, L->calib->H, DAMP, &RULE_WHITENED, &w.lr);
    t1 = rcc_bench_now();
    break;
  case ALPHA:
    /* W_hat: what a dare stage would leave (magnitude 50 %), made untimed. */
    if ((st = work_prune_init(&w, L)) != RCC_OK) break;
    if ((st = rcc_prune_magnitude(w.W, w.mask, m, n, SPARSITY, unstructured, false)) != RCC_OK)
      break;
    w.W_hat = w.W;
    w.W = NULL;
    if (!(w.alpha = malloc((size_t)m * sizeof *w.alpha))) {
      st = rcc_fail(RCC_ERR_NOMEM, "bench_compress: %s: alpha", L->id);
      break;
    }
    t0 = rcc_bench_now();
    st = rcc_alpha_closed_form(L->W, w.W_hat, m, n, L->calib->H, ALPHA_LAMBDA, w.alpha);
    t1 = rcc_bench_now();
    break;
  case N_METHODS: st = rcc_fail(RCC_ERR_ARG, "bench_compress: no method %d", (int)meth); break;
  }
  *seconds = t1 - t0;
  if (st == RCC_OK && out_stem) {
    char path[PATH_MAX + 16];
    if (meth == MAGNITUDE || meth == WANDA || meth == SPARSEGPT) {
      snprintf(path, sizeof path, "%s.mask", out_stem);
      st = write_mask(path, w.mask, (int64_t)mn);
      if (st == RCC_OK && meth == SPARSEGPT) {
        snprintf(path, sizeof path, "%s.w", out_stem);
        const void *data[] = {w.W};
        size_t bytes = mn * sizeof(float);
        st = write_chunks(path, 1, data, &bytes);
      }
    } else if (meth == ALPHA) {
      snprintf(path, sizeof path, "%s.alpha", out_stem);
      const void *data[] = {w.alpha};
      size_t bytes = (size_t)m * sizeof(float);
      st = write_chunks(path, 1, data, &bytes);
    } else {
      snprintf(path, sizeof path, "%s.lr", out_stem);
      st = write_lowrank(path, &w.lr);
    }
  }
  work_free(&w);
  if (st != RCC_OK) return rcc_fail_context(st, "%s on %s", METHOD_NAMES[meth], L->id);
  return RCC_OK;
}

/* The plan: how many leading encoder blocks each method runs on (0 = not run). */
typedef struct {
  int blocks[N_METHODS];
} plan_t;

/* "magnitude:12,svd:1,...": method names with a block count in 1..12. */
static int parse_plan(const char *s, plan_t *p) {
  *p = (plan_t){{0}};
  char *copy = strdup(s);
  if (!copy) return -1;
  int rc = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && rc == 0;
       tok = strtok_r(NULL, ",", &save)) {
    char *colon = strchr(tok, ':');
    int meth = -1;
    if (colon) {
      *colon = '\0';
      for (int i = 0; i < N_METHODS; i++)
        if (!strcmp(tok, METHOD_NAMES[i])) meth = i;
    }
    char *end = NULL;
    long b = colon ? strtol(colon + 1, &end, 10) : 0;
    if (meth < 0 || !end || *end != '\0' || b < 1 || b > N_BLOCKS) {
      fprintf(stderr, "bench_compress: --plan: '%s' is not METHOD:BLOCKS (BLOCKS 1..%d)\n",
              colon ? tok : s, N_BLOCKS);
      rc = -1;
    } else {
      p->blocks[meth] = (int)b;
    }
  }
  free(copy);
  return rc;
}

static const char USAGE[] =
    "usage: bench_compress --model DIR --calib DIR --out DIR --plan PLAN [--threads T]\n"
    "  --model DIR   CLIPModel directory with model.safetensors (bench/forward/make_model.py)\n"
    "  --calib DIR   calib-768.bin and calib-3072.bin (torch_compress.py prepare)\n"
    "  --out DIR     where the result files go (must exist)\n"
    "  --plan PLAN   METHOD:BLOCKS,... e.g. magnitude:12,svd:1 (methods: magnitude, wanda,\n"
    "                sparsegpt, svd, svd_rand, whitened, alpha; BLOCKS: leading encoder\n"
    "                blocks of 6 linears each, 1..12)\n"
    "  --threads T   CPU backend threads (default 1)\n";

typedef struct {
  const char *model, *calib, *out, *plan_text;
  plan_t plan;
  int threads;
} options_t;

static int parse_threads(const char *flag, const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > 1024) {
    fprintf(stderr, "bench_compress: %s wants 1..1024, got '%s'\n", flag, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_options(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {{"model", required_argument, NULL, 'm'},
                                           {"calib", required_argument, NULL, 'c'},
                                           {"out", required_argument, NULL, 'o'},
                                           {"plan", required_argument, NULL, 'p'},
                                           {"threads", required_argument, NULL, 't'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  *o = (options_t){.threads = 1};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'm': o->model = optarg; break;
    case 'c': o->calib = optarg; break;
    case 'o': o->out = optarg; break;
    case 'p': o->plan_text = optarg; break;
    case 't':
      if (parse_threads("--threads", optarg, &o->threads)) return -1;
      break;
    case 'h': fputs(USAGE, stdout); exit(0);
    default: fputs(USAGE, stderr); return -1;
    }
  }
  if (optind != argc || !o->model || !o->calib || !o->out || !o->plan_text) {
    fputs(USAGE, stderr);
    return -1;
  }
  return parse_plan(o->plan_text, &o->plan);
}

/* Encoder block b's linear `kind` from the open model, checked to be float32 2-D. */
static rcc_status_t find_layer(rcc_safetensors_t *st, const calib_t *calib, int b, int kind,
                               layer_t *L) {
  char name[128];
  snprintf(name, sizeof name, "vision_model.encoder.layers.%d.%s.weight", b, KIND_NAMES[kind]);
  const rcc_tensor_t *t = rcc_st_find(st, name);
  if (!t) return rcc_fail(RCC_ERR_FORMAT, "bench_compress: model has no tensor %s", name);
  if (t->dtype != RCC_DTYPE_F32 || t->ndim != 2)
    return rcc_fail(RCC_ERR_FORMAT, "bench_compress: %s is not a float 2-D tensor", name);
  *L = (layer_t){.W = t->data, .m = (int)t->shape[0], .n = (int)t->shape[1], .calib = NULL};
  snprintf(L->id, sizeof L->id, "b%d.%s", b, KIND_SHORT[kind]);
  for (int i = 0; i < N_WIDTHS; i++)
    if (calib[i].n == L->n) L->calib = &calib[i];
  if (!L->calib)
    return rcc_fail(RCC_ERR_FORMAT,
                    "bench_compress: %s has %d inputs, no calibration file for that", name, L->n);
  return RCC_OK;
}

/* Times one method over its planned blocks and prints its JSON line. */
static rcc_status_t run_method(method_t meth, int blocks, rcc_safetensors_t *st,
                               const calib_t *calib, const options_t *o) {
  layer_t L;
  double warm_s, total = 0.0;
  RCC_TRY(find_layer(st, calib, 0, 0, &L));
  RCC_TRY(run_layer(meth, &L, NULL, &warm_s));
  printf("{\"impl\": \"rcc\", \"method\": \"%s\", \"threads\": %d, \"blocks\": %d, "
         "\"warmup_s\": %.6f, \"layer_s\": {",
         METHOD_NAMES[meth], o->threads, blocks, warm_s);
  for (int b = 0; b < blocks; b++)
    for (int kind = 0; kind < N_KINDS; kind++) {
      RCC_TRY(find_layer(st, calib, b, kind, &L));
      char stem[PATH_MAX];
      snprintf(stem, sizeof stem, "%s/%s-%s", o->out, METHOD_NAMES[meth], L.id);
      double s;
      RCC_TRY(run_layer(meth, &L, stem, &s));
      total += s;
      printf("%s\"%s\": %.6f", b || kind ? ", " : "", L.id, s);
      fflush(stdout);
    }
  printf("}, \"seconds\": %.6f, \"blas_threads\": %d, \"openblas_core\": \"%s\"}\n", total,
         openblas_get_num_threads(), openblas_get_corename());
  fflush(stdout);
  return RCC_OK;
}

static rcc_status_t run(const options_t *o) {
  rcc_backend_t be = NULL;
  rcc_safetensors_t *st = NULL;
  calib_t calib[N_WIDTHS] = {{0}};
  char path[PATH_MAX];
  snprintf(path, sizeof path, "%s/model.safetensors", o->model);
  rcc_status_t s = rcc_backend_init(&be, "cpu");
  if (s == RCC_OK) {
    /* As rcc-dist's session: OpenMP gets T threads, OpenBLAS is serial between kernels. */
    rcc_backend_set_threads(be, o->threads);
    fprintf(stderr, "bench_compress: %s, OpenMP max threads %d, OpenBLAS threads %d\n",
            rcc_backend_describe(be), omp_get_max_threads(), openblas_get_num_threads());
    s = rcc_st_open(path, &st);
  }
  if (s == RCC_OK) s = calib_read(o->calib, 768, &calib[0]);
  if (s == RCC_OK) s = calib_read(o->calib, 3072, &calib[1]);
  for (int meth = 0; meth < N_METHODS && s == RCC_OK; meth++)
    if (o->plan.blocks[meth] > 0) s = run_method(meth, o->plan.blocks[meth], st, calib, o);
  for (int i = 0; i < N_WIDTHS; i++) {
    free(calib[i].H);
    free(calib[i].col_sq);
  }
  if (st) rcc_st_close(st);
  if (be) rcc_backend_free(be);
  return s;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o)) return 2;
  if (run(&o) != RCC_OK) {
    fprintf(stderr, "bench_compress: %s\n", rcc_last_error());
    return 2;
  }
  return 0;
}
