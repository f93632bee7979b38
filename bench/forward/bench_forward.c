/* bench_forward: CLIP image and text features per second through rcc-dist's C API, and
 * a check of those features against PyTorch's for the very same inputs.
 *
 * torch_forward.py --ref FILE writes one batch of inputs (pixels (B,C,H,W), token ids
 * (B,T)) and the features HF computed for them (B,P). This program loads the model (a
 * model directory, or a packed.safetensors written by rcc-dist) on the CPU backend with
 * T threads (or on --backend's), runs `--warmup` untimed calls and `--iters` timed calls
 * of each tower on that batch (the protocol of torch_forward.py), compares the first
 * call's features with the reference, and prints one JSON line. The reference is
 * PyTorch's features of the dense model; with --check-model DIR it is instead what rcc
 * computes for DIR on the same inputs (a packed model against its own dense export
 * compressed/, which PyTorch never saw).
 * Exit status 1 when a tower's features differ by more than --tol, 2 on any other error. */
#include <cblas.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_time.h"
#include "backend/backend.h"
#include "common/status.h"
#include "model/clip.h"

static const char REF_MAGIC[8] = {'R', 'C', 'C', 'F', 'W', 'D', '1', '\0'};

/* The reference batch, laid out as torch_forward.py's write_ref() writes it. */
typedef struct {
  int32_t B, C, H, W, T, P;
  float *pixels;     /* (B,C,H,W) */
  int32_t *ids;      /* (B,T) */
  float *image_feat; /* (B,P) */
  float *text_feat;  /* (B,P) */
} ref_batch_t;

static void ref_free(ref_batch_t *r) {
  free(r->pixels);
  free(r->ids);
  free(r->image_feat);
  free(r->text_feat);
}

static rcc_status_t read_exact(FILE *f, void *dst, size_t bytes, const char *path,
                               const char *what) {
  if (fread(dst, 1, bytes, f) != bytes)
    return rcc_fail(RCC_ERR_FORMAT, "%s: file ends inside %s (%zu bytes expected)", path, what,
                    bytes);
  return RCC_OK;
}

/* Reads the whole file; the host is little-endian like the writer (x86_64, aarch64). */
static rcc_status_t ref_read_body(FILE *f, const char *path, ref_batch_t *r) {
  char magic[8];
  RCC_TRY(read_exact(f, magic, sizeof magic, path, "the magic"));
  if (memcmp(magic, REF_MAGIC, sizeof magic) != 0)
    return rcc_fail(RCC_ERR_FORMAT, "%s: not a torch_forward.py reference (bad magic)", path);
  int32_t dims[6];
  RCC_TRY(read_exact(f, dims, sizeof dims, path, "the header"));
  for (int i = 0; i < 6; i++)
    if (dims[i] <= 0 || dims[i] > (1 << 20))
      return rcc_fail(RCC_ERR_FORMAT, "%s: header dimension %d is %d", path, i, dims[i]);
  r->B = dims[0], r->C = dims[1], r->H = dims[2], r->W = dims[3], r->T = dims[4], r->P = dims[5];
  size_t n_pix = (size_t)r->B * r->C * r->H * r->W, n_ids = (size_t)r->B * r->T;
  size_t n_feat = (size_t)r->B * r->P;
  r->pixels = malloc(n_pix * sizeof(float));
  r->ids = malloc(n_ids * sizeof(int32_t));
  r->image_feat = malloc(n_feat * sizeof(float));
  r->text_feat = malloc(n_feat * sizeof(float));
  if (!r->pixels || !r->ids || !r->image_feat || !r->text_feat)
    return rcc_fail(RCC_ERR_NOMEM, "%s: no memory for a batch of %d", path, r->B);
  RCC_TRY(read_exact(f, r->pixels, n_pix * sizeof(float), path, "pixels"));
  RCC_TRY(read_exact(f, r->ids, n_ids * sizeof(int32_t), path, "token ids"));
  RCC_TRY(read_exact(f, r->image_feat, n_feat * sizeof(float), path, "image features"));
  RCC_TRY(read_exact(f, r->text_feat, n_feat * sizeof(float), path, "text features"));
  if (fgetc(f) != EOF)
    return rcc_fail(RCC_ERR_FORMAT, "%s: trailing bytes after the text features", path);
  return RCC_OK;
}

static rcc_status_t ref_read(const char *path, ref_batch_t *r) {
  memset(r, 0, sizeof *r);
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open the reference batch", path);
  rcc_status_t st = ref_read_body(f, path, r);
  fclose(f);
  if (st != RCC_OK) ref_free(r);
  return st;
}

/* How far features (B,P) are from the reference: the worst row's ||a-b||_2 / ||b||_2
 * (a row is one image or text), and the largest |a-b| anywhere. NaN propagates. */
typedef struct {
  double max_row_rel, max_abs;
} diff_t;

static diff_t compare_features(const float *a, const float *ref, int B, int P) {
  diff_t d = {0.0, 0.0};
  for (int b = 0; b < B; b++) {
    double num = 0.0, den = 0.0;
    for (int p = 0; p < P; p++) {
      double e = (double)a[(size_t)b * P + p] - (double)ref[(size_t)b * P + p];
      double r = ref[(size_t)b * P + p];
      num += e * e;
      den += r * r;
      if (!(fabs(e) <= d.max_abs)) d.max_abs = fabs(e);
    }
    double rel = sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
    if (!(rel <= d.max_row_rel)) d.max_row_rel = rel;
  }
  return d;
}

/* A tower's forward over the reference batch, writing features (B,P) into out. */
typedef rcc_status_t (*forward_fn)(rcc_clip_model_t *m, const ref_batch_t *r, float *out);

static rcc_status_t image_forward(rcc_clip_model_t *m, const ref_batch_t *r, float *out) {
  return rcc_clip_image_features(m, r->pixels, r->B, out);
}

static rcc_status_t text_forward(rcc_clip_model_t *m, const ref_batch_t *r, float *out) {
  return rcc_clip_text_features(m, r->ids, r->B, r->T, out);
}

/* First call's output goes to `first` (it is checked); times[0..iters) the timed calls. */
static rcc_status_t time_calls(forward_fn fn, rcc_clip_model_t *m, const ref_batch_t *r,
                               float *first, float *scratch, int warmup, int iters, double *times) {
  RCC_TRY(fn(m, r, first));
  for (int i = 1; i < warmup; i++)
    RCC_TRY(fn(m, r, scratch));
  for (int i = 0; i < iters; i++) {
    double t0 = rcc_bench_now();
    RCC_TRY(fn(m, r, scratch));
    times[i] = rcc_bench_now() - t0;
  }
  return RCC_OK;
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') putchar('\\');
    if ((unsigned char)*s >= 0x20) putchar(*s);
  }
  putchar('"');
}

/* JSON has no NaN or infinity: a broken forward prints null there. */
static void print_json_number(const char *key, const char *fmt, double v) {
  printf("\"%s\": ", key);
  if (isfinite(v))
    printf(fmt, v);
  else
    printf("null");
  printf(", ");
}

static void print_json_array(const char *key, const double *v, int n) {
  printf("\"%s\": [", key);
  for (int i = 0; i < n; i++)
    printf("%s%.6f", i ? ", " : "", v[i]);
  printf("], ");
}

static const char USAGE[] =
    "usage: bench_forward --model PATH --ref FILE [--check-model DIR] [--threads T]\n"
    "                     [--warmup W] [--iters N] [--tol X] [--backend NAME]\n"
    "  --model PATH   CLIPModel directory (bench/forward/make_model.py) or a\n"
    "                 packed.safetensors written by rcc-dist\n"
    "  --ref FILE     inputs and PyTorch features (torch_forward.py --ref)\n"
    "  --check-model DIR  check against rcc's features of DIR on the same inputs\n"
    "                 instead of PyTorch's (a packed model against its compressed/)\n"
    "  --threads T    CPU backend threads (default 1)\n"
    "  --warmup W     untimed calls per tower, the first one checked (default 1)\n"
    "  --iters N      timed calls per tower, the median reported (default 3)\n"
    "  --tol X        largest accepted relative difference per row (default 1e-3)\n"
    "  --backend NAME cpu (default), cuda, cuda:N or auto\n";

typedef struct {
  const char *model, *ref, *check_model, *backend;
  int threads, warmup, iters;
  double tol;
} options_t;

static int parse_int(const char *flag, const char *s, int *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > 100000) {
    fprintf(stderr, "bench_forward: %s wants a positive integer, got '%s'\n", flag, s);
    return -1;
  }
  *out = (int)v;
  return 0;
}

static int parse_options(int argc, char **argv, options_t *o) {
  static const struct option longopts[] = {
      {"model", required_argument, NULL, 'm'},   {"ref", required_argument, NULL, 'r'},
      {"threads", required_argument, NULL, 't'}, {"warmup", required_argument, NULL, 'w'},
      {"iters", required_argument, NULL, 'n'},   {"tol", required_argument, NULL, 'x'},
      {"check-model", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},
      {"backend", required_argument, NULL, 'b'},
      {NULL, 0, NULL, 0}};
  *o = (options_t){NULL, NULL, NULL, "cpu", 1, 1, 3, 1e-3};
  int c;
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case 'm': o->model = optarg; break;
    case 'r': o->ref = optarg; break;
    case 'c': o->check_model = optarg; break;
    case 'b': o->backend = optarg; break;
    case 't':
      if (parse_int("--threads", optarg, &o->threads)) return -1;
      break;
    case 'w':
      if (parse_int("--warmup", optarg, &o->warmup)) return -1;
      break;
    case 'n':
      if (parse_int("--iters", optarg, &o->iters)) return -1;
      break;
    case 'x':
      o->tol = strtod(optarg, NULL);
      if (!(o->tol > 0.0)) {
        fprintf(stderr, "bench_forward: --tol wants a positive number, got '%s'\n", optarg);
        return -1;
      }
      break;
    case 'h': fputs(USAGE, stdout); exit(0);
    default: fputs(USAGE, stderr); return -1;
    }
  }
  if (optind != argc || !o->model || !o->ref) {
    fputs(USAGE, stderr);
    return -1;
  }
  return 0;
}

/* The model's shapes must be those of the reference batch. */
static rcc_status_t check_shapes(const rcc_clip_config_t *cfg, const ref_batch_t *r,
                                 const char *ref_path) {
  if (cfg->projection_dim != r->P || cfg->vision.num_channels != r->C ||
      cfg->vision.image_size != r->H || cfg->vision.image_size != r->W ||
      r->T > cfg->text.max_position_embeddings)
    return rcc_fail(RCC_ERR_ARG,
                    "%s: batch (B=%d, C=%d, H=%d, W=%d, T=%d, P=%d) does not fit the model "
                    "(C=%d, image %d, T<=%d, P=%d)",
                    ref_path, r->B, r->C, r->H, r->W, r->T, r->P, cfg->vision.num_channels,
                    cfg->vision.image_size, cfg->text.max_position_embeddings, cfg->projection_dim);
  return RCC_OK;
}

typedef struct {
  double load_s, peak_rss_mb;
  double *image_times, *text_times;
  diff_t image_diff, text_diff;
  char backend[256];
} results_t;

static double peak_rss_mb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;
}

/* The --check-model reference: DIR's features (B,P) for the batch's images and texts,
 * computed by rcc on the same backend after the timed model is gone. */
static rcc_status_t check_model_features(const options_t *o, rcc_backend_t be,
                                         const ref_batch_t *r, float *image_feat,
                                         float *text_feat) {
  rcc_clip_model_t *c = NULL;
  rcc_status_t st = rcc_clip_load(o->check_model, be, &c);
  if (st == RCC_OK) st = check_shapes(rcc_clip_get_config(c), r, o->ref);
  if (st == RCC_OK) st = image_forward(c, r, image_feat);
  if (st == RCC_OK) st = text_forward(c, r, text_feat);
  if (c) rcc_clip_free(c);
  return st;
}

static rcc_status_t run(const options_t *o, const ref_batch_t *r, results_t *res) {
  rcc_backend_t be = NULL;
  rcc_clip_model_t *m = NULL;
  size_t n_feat = (size_t)r->B * r->P;
  /* first_*: the first call's features (checked); ref_*: what they are checked against */
  float *first_image = malloc(n_feat * sizeof(float)), *first_text = malloc(n_feat * sizeof(float));
  float *scratch = malloc(n_feat * sizeof(float));
  float *ref_image = r->image_feat, *ref_text = r->text_feat, *own_ref = NULL;
  if (o->check_model) ref_image = own_ref = malloc(2 * n_feat * sizeof(float));
  if (own_ref) ref_text = own_ref + n_feat;
  rcc_status_t st = (first_image && first_text && scratch && ref_image)
                        ? RCC_OK
                        : rcc_fail(RCC_ERR_NOMEM, "bench_forward: features");
  if (st == RCC_OK) st = rcc_backend_init(&be, o->backend);
  if (st == RCC_OK) {
    rcc_backend_set_threads(be, o->threads);
    snprintf(res->backend, sizeof res->backend, "%s", rcc_backend_describe(be));
    double t0 = rcc_bench_now();
    st = rcc_clip_load(o->model, be, &m);
    res->load_s = rcc_bench_now() - t0;
  }
  if (st == RCC_OK) st = check_shapes(rcc_clip_get_config(m), r, o->ref);
  if (st == RCC_OK)
    st = time_calls(image_forward, m, r, first_image, scratch, o->warmup, o->iters,
                    res->image_times);
  if (st == RCC_OK)
    st = time_calls(text_forward, m, r, first_text, scratch, o->warmup, o->iters,
                    res->text_times);
  /* The peak of the timed model alone: the check model below would raise it. */
  res->peak_rss_mb = peak_rss_mb();
  if (m) rcc_clip_free(m);
  if (st == RCC_OK && o->check_model)
    st = check_model_features(o, be, r, ref_image, ref_text);
  if (st == RCC_OK) {
    res->image_diff = compare_features(first_image, ref_image, r->B, r->P);
    res->text_diff = compare_features(first_text, ref_text, r->B, r->P);
  }
  if (be) rcc_backend_free(be);
  free(first_image);
  free(first_text);
  free(scratch);
  free(own_ref);
  return st;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o)) return 2;
  ref_batch_t r;
  if (ref_read(o.ref, &r) != RCC_OK) {
    fprintf(stderr, "bench_forward: %s\n", rcc_last_error());
    return 2;
  }
  results_t res = {0};
  res.image_times = calloc((size_t)o.iters, sizeof(double));
  res.text_times = calloc((size_t)o.iters, sizeof(double));
  rcc_status_t st = (res.image_times && res.text_times)
                        ? run(&o, &r, &res)
                        : rcc_fail(RCC_ERR_NOMEM, "bench_forward: timing arrays");
  if (st != RCC_OK) {
    fprintf(stderr, "bench_forward: %s\n", rcc_last_error());
    ref_free(&r);
    free(res.image_times);
    free(res.text_times);
    return 2;
  }

  bool ok = res.image_diff.max_row_rel <= o.tol && res.text_diff.max_row_rel <= o.tol;
  printf("{\"impl\": \"rcc\", \"model\": ");
  print_json_string(o.model);
  printf(", \"checked_against\": ");
  print_json_string(o.check_model ? o.check_model : "torch");
  printf(", \"threads\": %d, \"batch\": %d, \"warmup\": %d, \"iters\": %d, ", o.threads, r.B,
         o.warmup, o.iters);
  print_json_number("images_per_s", "%.6f", r.B / rcc_bench_median(res.image_times, o.iters));
  print_json_number("texts_per_s", "%.6f", r.B / rcc_bench_median(res.text_times, o.iters));
  print_json_array("image_batch_s", res.image_times, o.iters);
  print_json_array("text_batch_s", res.text_times, o.iters);
  print_json_number("load_s", "%.3f", res.load_s);
  print_json_number("peak_rss_mb", "%.1f", res.peak_rss_mb);
  print_json_number("image_max_rel_diff", "%.3e", res.image_diff.max_row_rel);
  print_json_number("image_max_abs_diff", "%.3e", res.image_diff.max_abs);
  print_json_number("text_max_rel_diff", "%.3e", res.text_diff.max_row_rel);
  print_json_number("text_max_abs_diff", "%.3e", res.text_diff.max_abs);
  print_json_number("tol", "%.1e", o.tol);
  printf("\"check\": \"%s\", \"backend\": ", ok ? "pass" : "fail");
  print_json_string(res.backend);
  printf(", \"openblas_core\": ");
  print_json_string(openblas_get_corename());
  printf("}\n");
  if (!ok)
    fprintf(stderr,
            "bench_forward: features differ from %s's: image %.3e, text %.3e "
            "(worst row ||rcc-ref||/||ref||, tolerance %.1e)\n",
            o.check_model ? o.check_model : "PyTorch", res.image_diff.max_row_rel,
            res.text_diff.max_row_rel, o.tol);
  ref_free(&r);
  free(res.image_times);
  free(res.text_times);
  return ok ? 0 : 1;
}
