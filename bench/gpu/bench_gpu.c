/* bench_gpu: the compute kernels of issue 7 on one backend, timed and checked.
 *
 *   bench_gpu gemm [--backend NAME] [--shapes LIST] [--warmup W] [--iters N]
 *   bench_gpu svd  [--backend NAME] --inputs DIR [--shapes LIST] [--warmup W] [--iters N]
 *
 * gemm: rcc_gemm (or rcc_gemm_strided_batched for a shape written BATCH@MxNxK) of a linear
 * layer's form, Y (M,N) = X (M,K) W^T with W (N,K), float32 on random data. A timed sample
 * is R back-to-back calls between two synchronizations (R chosen so that a sample lasts
 * about 20 ms, which keeps launch and clock overhead out); the median of N samples after W
 * untimed calls is reported. Checked: 64 rows x 256 columns (evenly spaced) of the last
 * matrix of the batch against the same dot products summed in float64 on the host,
 * ||Y - Y_ref|| / ||Y_ref|| <= 5e-5. Float32 summation of K products of N(0,1) values errs
 * by about eps32 sqrt(K/2) relative, under 4e-6 at K = 8192 even summed one by one; TF32
 * (inputs rounded to 10 mantissa bits) lands near 3e-4, so the check also proves it is off.
 *
 * svd: rcc_backend_svd_f64 of each m x n matrix of DIR/svd_MxN.bin (written by
 * torch_gpu.py svd, with torch.linalg.svd's singular values of it, see read_svd_input).
 * The matrix is re-uploaded before every call (the op destroys it), outside the timing.
 * Checked: max_i |S_i - S_torch_i| / S_torch_0 <= 1e-10 and, on the host,
 * ||A - U diag(S) Vt||_F / ||A||_F <= 1e-10 (float64 solvers reach ~1e-14 at these sizes).
 *
 * One JSON line per shape on stdout. Exit status: 0, 1 when a check failed, 2 on an
 * error, 77 ("skipped: no GPU" on stderr) when a cuda backend is asked for and no GPU is
 * visible. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_time.h"
#include "backend/backend.h"
#include "common/status.h"

#define MAX_SHAPES 16
#define GEMM_TOL 5e-5
#define SVD_TOL 1e-10
#define GEMM_CHECK_ROWS 64
#define GEMM_CHECK_COLS 256
#define SAMPLE_TARGET_S 0.02

static const char SVD_MAGIC[8] = {'R', 'C', 'C', 'S', 'V', 'D', '1', '\0'};

/* The ViT-B/32 linears at 256 images x 50 tokens, the peak probe, and one head's attention
 * scores (Q K^T per image and head: 256 x 12 heads of 50 x 50 x 64). */
static const char DEFAULT_GEMM_SHAPES[] =
    "12800x768x768,12800x3072x768,12800x768x3072,8192x8192x8192,3072@50x50x64";
static const char DEFAULT_SVD_SHAPES[] = "768x768,3072x768,768x3072,512x512,2048x512,512x2048";

typedef struct {
  int batch, m, n, k; /* k unused by svd */
} shape_t;

typedef struct {
  const char *command, *backend, *inputs, *shapes;
  int warmup, iters;
} options_t;

static const char USAGE[] =
    "usage: bench_gpu gemm [--backend NAME] [--shapes LIST] [--warmup W] [--iters N]\n"
    "       bench_gpu svd  [--backend NAME] --inputs DIR [--shapes LIST] [--warmup W]\n"
    "                      [--iters N]\n"
    "  --backend NAME  cuda (default), cuda:N, cpu or auto\n"
    "  --shapes LIST   gemm: MxNxK or BATCH@MxNxK, comma-separated (Y = X W^T, X (M,K));\n"
    "                  svd: MxN. Defaults: CLIP ViT-B/32's shapes (see the source)\n"
    "  --inputs DIR    svd: the svd_MxN.bin files written by torch_gpu.py svd\n"
    "  --warmup W      untimed calls first (default 2)\n"
    "  --iters N       timed samples, the median reported (default 5 gemm, 3 svd)\n";

/* splitmix64: a fixed stream, so every run times the same data. */
static uint64_t next_u64(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* Approximately N(0,1): the sum of four uniforms, rescaled (exact normality is not needed,
 * only values of the magnitude of activations and weights). */
static void fill_random(float *x, size_t n, uint64_t seed) {
  uint64_t s = seed;
  for (size_t i = 0; i < n; i++) {
    double u = 0.0;
    for (int j = 0; j < 4; j++)
      u += (double)(next_u64(&s) >> 11) * 0x1.0p-53;
    x[i] = (float)((u - 2.0) * sqrt(3.0));
  }
}

static int parse_shapes(const char *list, bool gemm, shape_t *out) {
  int n = 0;
  const char *p = list;
  while (*p) {
    if (n == MAX_SHAPES) {
      fprintf(stderr, "bench_gpu: more than %d shapes in '%s'\n", MAX_SHAPES, list);
      return -1;
    }
    shape_t s = {1, 0, 0, 1};
    int used = 0, got;
    if (gemm && strchr(p, '@') && (!strchr(p, ',') || strchr(p, '@') < strchr(p, ',')))
      got = sscanf(p, "%d@%dx%dx%d%n", &s.batch, &s.m, &s.n, &s.k, &used) == 4;
    else if (gemm)
      got = sscanf(p, "%dx%dx%d%n", &s.m, &s.n, &s.k, &used) == 3;
    else
      got = sscanf(p, "%dx%d%n", &s.m, &s.n, &used) == 2;
    if (!got || s.batch < 1 || s.m < 1 || s.n < 1 || s.k < 1 ||
        (p[used] != '\0' && p[used] != ',')) {
      fprintf(stderr, "bench_gpu: bad shape in '%s' (want %s)\n", list,
              gemm ? "MxNxK or BATCH@MxNxK" : "MxN");
      return -1;
    }
    out[n++] = s;
    p += used + (p[used] == ',');
  }
  return n;
}

static int parse_positive(const char *flag, const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 0 || v > 100000) {
    fprintf(stderr, "bench_gpu: %s wants an integer in [0, 100000], got '%s'\n", flag, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_options(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {{"backend", required_argument, NULL, 'b'},
                                           {"inputs", required_argument, NULL, 'i'},
                                           {"shapes", required_argument, NULL, 's'},
                                           {"warmup", required_argument, NULL, 'w'},
                                           {"iters", required_argument, NULL, 'n'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  *o = (options_t){NULL, "cuda", NULL, NULL, 2, -1};
  if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
    fputs(USAGE, stdout);
    exit(0);
  }
  if (argc < 2 || (strcmp(argv[1], "gemm") && strcmp(argv[1], "svd"))) {
    fputs(USAGE, stderr);
    return -1;
  }
  o->command = argv[1];
  optind = 2;
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'b': o->backend = optarg; break;
    case 'i': o->inputs = optarg; break;
    case 's': o->shapes = optarg; break;
    case 'w':
      if (parse_positive("--warmup", optarg, &o->warmup)) return -1;
      break;
    case 'n':
      if (parse_positive("--iters", optarg, &o->iters)) return -1;
      if (o->iters < 1) {
        fprintf(stderr, "bench_gpu: --iters must be >= 1\n");
        return -1;
      }
      break;
    case 'h': fputs(USAGE, stdout); exit(0);
    default: fputs(USAGE, stderr); return -1;
    }
  }
  bool svd = !strcmp(o->command, "svd");
  if (optind != argc || (svd && !o->inputs)) {
    fputs(USAGE, stderr);
    return -1;
  }
  if (!o->shapes) o->shapes = svd ? DEFAULT_SVD_SHAPES : DEFAULT_GEMM_SHAPES;
  if (o->iters < 0) o->iters = svd ? 3 : 5;
  return 0;
}

static void print_common(const char *part, const shape_t *s, const char *backend) {
  printf("{\"part\": \"%s\", \"impl\": \"rcc\", \"backend\": \"", part);
  for (const char *c = backend; *c; c++)
    if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
      printf("\\u%04x", (unsigned char)*c);
    else
      putchar(*c);
  printf("\", \"batch\": %d, \"m\": %d, \"n\": %d", s->batch, s->m, s->n);
}

/* ---- gemm --------------------------------------------------------------------------- */

typedef struct {
  float *x, *w, *y; /* backend memory: X (batch,M,K), W (batch,N,K), Y (batch,M,N) */
} gemm_bufs_t;

static rcc_status_t gemm_call(rcc_backend_t be, const shape_t *s, const gemm_bufs_t *b) {
  if (s->batch == 1)
    return rcc_gemm(be, false, true, s->m, s->n, s->k, 1.0f, b->x, s->k, b->w, s->k, 0.0f, b->y,
                    s->n);
  return rcc_gemm_strided_batched(be, false, true, s->m, s->n, s->k, 1.0f, b->x, s->k,
                                  (int64_t)s->m * s->k, b->w, s->k, (int64_t)s->n * s->k, 0.0f,
                                  b->y, s->n, (int64_t)s->m * s->n, s->batch);
}

/* Seconds of `reps` calls, from a synchronized device to a synchronized device. */
static rcc_status_t gemm_sample(rcc_backend_t be, const shape_t *s, const gemm_bufs_t *b, int reps,
                                double *seconds) {
  RCC_TRY(rcc_backend_synchronize(be));
  double t0 = rcc_bench_now();
  for (int r = 0; r < reps; r++)
    RCC_TRY(gemm_call(be, s, b));
  RCC_TRY(rcc_backend_synchronize(be));
  *seconds = rcc_bench_now() - t0;
  return RCC_OK;
}

/* ||Y - X W^T|| / ||X W^T|| over the first rows and evenly spaced columns of one matrix
 * (y_dev holds its first rows), X W^T summed in float64. */
static double gemm_check(const shape_t *s, const float *x, const float *w, const float *y_dev) {
  int rows = s->m < GEMM_CHECK_ROWS ? s->m : GEMM_CHECK_ROWS;
  int cols = s->n < GEMM_CHECK_COLS ? s->n : GEMM_CHECK_COLS;
  double num = 0.0, den = 0.0;
  for (int i = 0; i < rows; i++)
    for (int c = 0; c < cols; c++) {
      int j = (int)((int64_t)c * s->n / cols);
      const float *xi = x + (size_t)i * s->k, *wj = w + (size_t)j * s->k;
      double ref = 0.0;
      for (int p = 0; p < s->k; p++)
        ref += (double)xi[p] * wj[p];
      double d = (double)y_dev[(size_t)i * s->n + j] - ref;
      num += d * d;
      den += ref * ref;
    }
  /* A NaN anywhere must fail, and NaN compares false with everything. */
  double err = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
  return isnan(err) ? INFINITY : err;
}

static rcc_status_t bench_gemm_shape(rcc_backend_t be, const options_t *o, const shape_t *s,
                                     bool *ok) {
  size_t nx = (size_t)s->batch * s->m * s->k, nw = (size_t)s->batch * s->n * s->k;
  size_t ny = (size_t)s->batch * s->m * s->n, n_check = (size_t)GEMM_CHECK_ROWS * s->n;
  if (n_check > (size_t)s->m * s->n) n_check = (size_t)s->m * s->n;
  /* The batch's last matrix is the one checked: a wrong stride shows there. */
  size_t last = (size_t)s->batch - 1;
  float *hx = malloc(nx * sizeof(float)), *hw = malloc(nw * sizeof(float));
  float *hy = malloc(n_check * sizeof(float));
  double *times = calloc((size_t)o->iters, sizeof(double));
  gemm_bufs_t b = {NULL, NULL, NULL};
  rcc_status_t st =
      (hx && hw && hy && times) ? RCC_OK : rcc_fail(RCC_ERR_NOMEM, "bench_gpu: gemm host buffers");
  if (st == RCC_OK) {
    fill_random(hx, nx, 1);
    fill_random(hw, nw, 2);
    b.x = rcc_backend_alloc(be, nx * sizeof(float));
    b.w = b.x ? rcc_backend_alloc(be, nw * sizeof(float)) : NULL;
    b.y = b.w ? rcc_backend_alloc(be, ny * sizeof(float)) : NULL;
    if (!b.y) st = RCC_ERR_NOMEM; /* rcc_fail was called by alloc */
  }
  if (st == RCC_OK) st = rcc_backend_upload(be, b.x, hx, nx * sizeof(float));
  if (st == RCC_OK) st = rcc_backend_upload(be, b.w, hw, nw * sizeof(float));
  /* The first call's result is the one checked, before any timing. */
  if (st == RCC_OK) st = gemm_call(be, s, &b);
  if (st == RCC_OK)
    st = rcc_backend_download(be, hy, b.y + last * s->m * s->n, n_check * sizeof(float));
  double err =
      st == RCC_OK ? gemm_check(s, hx + last * s->m * s->k, hw + last * s->n * s->k, hy) : INFINITY;
  for (int i = 1; i < o->warmup && st == RCC_OK; i++)
    st = gemm_call(be, s, &b);
  double one = 0.0;
  if (st == RCC_OK) st = gemm_sample(be, s, &b, 1, &one);
  int reps = one >= SAMPLE_TARGET_S ? 1 : (int)ceil(SAMPLE_TARGET_S / (one > 1e-7 ? one : 1e-7));
  if (reps > 10000) reps = 10000;
  for (int i = 0; i < o->iters && st == RCC_OK; i++) {
    st = gemm_sample(be, s, &b, reps, &times[i]);
    times[i] /= reps;
  }
  if (st == RCC_OK) {
    double t = rcc_bench_median(times, o->iters);
    double flop = 2.0 * s->batch * s->m * s->n * s->k;
    bool pass = err <= GEMM_TOL;
    *ok = *ok && pass;
    print_common("gemm", s, rcc_backend_describe(be));
    printf(", \"k\": %d, \"seconds\": %.9f, \"tflops\": %.4f, \"calls_per_sample\": %d, "
           "\"samples\": [",
           s->k, t, flop / t * 1e-12, reps);
    for (int i = 0; i < o->iters; i++)
      printf("%s%.9f", i ? ", " : "", times[i]);
    printf("], \"rel_err\": %.3e, \"tol\": %.0e, \"check\": \"%s\"}\n", err, GEMM_TOL,
           pass ? "pass" : "fail");
    fflush(stdout);
    if (!pass)
      fprintf(stderr,
              "bench_gpu: gemm %dx%dx%d (batch %d) differs from float64 sums: %.3e > %.0e\n", s->m,
              s->n, s->k, s->batch, err, GEMM_TOL);
  }
  rcc_backend_release(be, b.x);
  rcc_backend_release(be, b.w);
  rcc_backend_release(be, b.y);
  free(hx);
  free(hw);
  free(hy);
  free(times);
  return st;
}

/* ---- svd ---------------------------------------------------------------------------- */

/* DIR/svd_MxN.bin, little-endian: char magic[8] = "RCCSVD1\0", int32 m, n, then float64
 * A[m*n] row-major and torch's S[min(m,n)], descending. */
static rcc_status_t read_svd_input(const char *dir, const shape_t *s, double **a, double **sv) {
  char path[4096];
  snprintf(path, sizeof path, "%s/svd_%dx%d.bin", dir, s->m, s->n);
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open (run torch_gpu.py svd first)", path);
  char magic[8];
  int32_t mn[2];
  size_t k = (size_t)(s->m < s->n ? s->m : s->n), na = (size_t)s->m * s->n;
  rcc_status_t st = RCC_OK;
  if (fread(magic, 1, 8, f) != 8 || memcmp(magic, SVD_MAGIC, 8) || fread(mn, 4, 2, f) != 2 ||
      mn[0] != s->m || mn[1] != s->n)
    st = rcc_fail(RCC_ERR_FORMAT, "%s: not an RCCSVD1 file of a %d x %d matrix", path, s->m, s->n);
  *a = malloc(na * sizeof(double));
  *sv = malloc(k * sizeof(double));
  if (st == RCC_OK && (!*a || !*sv)) st = rcc_fail(RCC_ERR_NOMEM, "%s", path);
  if (st == RCC_OK &&
      (fread(*a, sizeof(double), na, f) != na || fread(*sv, sizeof(double), k, f) != k))
    st = rcc_fail(RCC_ERR_FORMAT, "%s: truncated", path);
  fclose(f);
  return st;
}

/* ||A - U diag(S) Vt||_F / ||A||_F on the host; U is scaled in place. */
static double svd_recon_err(const shape_t *s, const double *a, double *u, const double *sv,
                            const double *vt) {
  int k = s->m < s->n ? s->m : s->n;
  double *r = malloc((size_t)s->m * s->n * sizeof(double));
  if (!r) return INFINITY;
  for (int i = 0; i < s->m; i++)
    for (int j = 0; j < k; j++)
      u[(size_t)i * k + j] *= sv[j];
  memcpy(r, a, (size_t)s->m * s->n * sizeof(double));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s->m, s->n, k, -1.0, u, k, vt, s->n, 1.0,
              r, s->n);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < (size_t)s->m * s->n; i++) {
    num += r[i] * r[i];
    den += a[i] * a[i];
  }
  free(r);
  double err = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
  return isnan(err) ? INFINITY : err;
}

static rcc_status_t bench_svd_shape(rcc_backend_t be, const options_t *o, const shape_t *s,
                                    bool *ok) {
  size_t k = (size_t)(s->m < s->n ? s->m : s->n), na = (size_t)s->m * s->n;
  double *ha = NULL, *hs_ref = NULL;
  double *hu = malloc((size_t)s->m * k * sizeof(double)), *hs = malloc(k * sizeof(double));
  double *hvt = malloc(k * s->n * sizeof(double));
  double *times = calloc((size_t)o->iters, sizeof(double));
  double *da = NULL, *du = NULL, *ds = NULL, *dvt = NULL;
  rcc_status_t st = read_svd_input(o->inputs, s, &ha, &hs_ref);
  if (st == RCC_OK && !(hu && hs && hvt && times))
    st = rcc_fail(RCC_ERR_NOMEM, "bench_gpu: svd host buffers");
  if (st == RCC_OK) {
    da = rcc_backend_alloc(be, na * sizeof(double));
    du = da ? rcc_backend_alloc(be, (size_t)s->m * k * sizeof(double)) : NULL;
    ds = du ? rcc_backend_alloc(be, k * sizeof(double)) : NULL;
    dvt = ds ? rcc_backend_alloc(be, k * s->n * sizeof(double)) : NULL;
    if (!dvt) st = RCC_ERR_NOMEM;
  }
  /* Call 0 is checked; calls 1..warmup-1 warm up; then the timed ones. */
  int calls = (o->warmup > 1 ? o->warmup : 1) + o->iters;
  for (int c = 0; c < calls && st == RCC_OK; c++) {
    st = rcc_backend_upload(be, da, ha, na * sizeof(double));
    if (st == RCC_OK) st = rcc_backend_synchronize(be);
    double t0 = rcc_bench_now();
    if (st == RCC_OK) st = rcc_backend_svd_f64(be, s->m, s->n, da, du, ds, dvt);
    if (st == RCC_OK) st = rcc_backend_synchronize(be);
    double t = rcc_bench_now() - t0;
    if (c >= calls - o->iters) times[c - (calls - o->iters)] = t;
    if (c == 0 && st == RCC_OK) {
      st = rcc_backend_download(be, hu, du, (size_t)s->m * k * sizeof(double));
      if (st == RCC_OK) st = rcc_backend_download(be, hs, ds, k * sizeof(double));
      if (st == RCC_OK) st = rcc_backend_download(be, hvt, dvt, k * s->n * sizeof(double));
    }
  }
  if (st == RCC_OK) {
    double s_err = 0.0;
    for (size_t i = 0; i < k; i++) {
      double d = fabs(hs[i] - hs_ref[i]) / (hs_ref[0] > 0.0 ? hs_ref[0] : 1.0);
      if (!(d <= s_err)) s_err = isnan(d) ? INFINITY : d;
    }
    double r_err = svd_recon_err(s, ha, hu, hs, hvt);
    bool pass = s_err <= SVD_TOL && r_err <= SVD_TOL;
    *ok = *ok && pass;
    print_common("svd", s, rcc_backend_describe(be));
    printf(", \"seconds\": %.6f, \"samples\": [", rcc_bench_median(times, o->iters));
    for (int i = 0; i < o->iters; i++)
      printf("%s%.6f", i ? ", " : "", times[i]);
    printf("], \"s_max_rel_diff\": %.3e, \"recon_rel_err\": %.3e, \"tol\": %.0e, "
           "\"check\": \"%s\"}\n",
           s_err, r_err, SVD_TOL, pass ? "pass" : "fail");
    fflush(stdout);
    if (!pass)
      fprintf(stderr,
              "bench_gpu: svd %dx%d: singular values %.3e from torch's, reconstruction %.3e "
              "(tolerance %.0e)\n",
              s->m, s->n, s_err, r_err, SVD_TOL);
  }
  rcc_backend_release(be, da);
  rcc_backend_release(be, du);
  rcc_backend_release(be, ds);
  rcc_backend_release(be, dvt);
  free(ha);
  free(hs_ref);
  free(hu);
  free(hs);
  free(hvt);
  free(times);
  return st;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o)) return 2;
  bool svd = !strcmp(o.command, "svd");
  shape_t shapes[MAX_SHAPES];
  int n_shapes = parse_shapes(o.shapes, !svd, shapes);
  if (n_shapes < 1) return 2;
  if (!strncmp(o.backend, "cuda", 4) && rcc_backend_cuda_device_count() == 0) {
    fprintf(stderr, "skipped: no GPU\n");
    return 77;
  }
  rcc_backend_t be = NULL;
  rcc_status_t st = rcc_backend_init(&be, o.backend);
  bool ok = true;
  for (int i = 0; i < n_shapes && st == RCC_OK; i++)
    st = svd ? bench_svd_shape(be, &o, &shapes[i], &ok) : bench_gemm_shape(be, &o, &shapes[i], &ok);
  if (be) rcc_backend_free(be);
  if (st != RCC_OK) {
    fprintf(stderr, "bench_gpu: %s\n", rcc_last_error());
    return 2;
  }
  return ok ? 0 : 1;
}
