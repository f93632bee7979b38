/* bench_train: training steps per second of the CLIP vision tower through rcc_clip_train
 * (forward keeping activations + backward), the protocol of torch_train.py: one batch of
 * B seeded random images, d_emb a fixed random matrix, `--warmup` untimed steps, then the
 * median of `--iters` timed steps. Prints one JSON line.
 *
 *   bench_train --model DIR [--threads T] [--batch B] [--warmup 1] [--iters 3]
 *               [--train all|alpha]
 *
 * --train all: every vision linear layer is given the compressed form "dense S, alpha 1"
 * and S values, alpha, biases and LayerNorms train: the weight gradients of PyTorch's
 * dense training plus alpha (what torch_train.py compares with). --train alpha: the same
 * layers, only alpha, biases and LayerNorms train (distillation's default; no weight
 * gradients). The text tower stays dense and is not run. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench/bench_time.h"
#include "io/safetensors.h"
#include "model/clip_train.h"

static int fail(const char *what) {
  fprintf(stderr, "bench_train: %s: %s\n", what, rcc_last_error());
  return 2;
}

/* "dense S, alpha 1" for every vision linear layer (0 .. 6 L_v), NULL for the text tower. */
static rcc_status_t vision_layers(const char *model, const rcc_clip_config_t *c,
                                  rcc_factored_t **layers, int n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/model.safetensors", model);
  rcc_safetensors_t *st = NULL;
  RCC_TRY(rcc_st_open(path, &st));
  const int nv = 6 * c->vision.num_layers + 1;
  for (int i = 0; i < nv && i < n; i++) {
    char name[256];
    const int l = i / 6, j = i % 6;
    static const char *const subs[6] = {"self_attn.k_proj", "self_attn.v_proj",
                                        "self_attn.q_proj", "self_attn.out_proj",
                                        "mlp.fc1",          "mlp.fc2"};
    if (i == nv - 1)
      snprintf(name, sizeof name, "visual_projection.weight");
    else
      snprintf(name, sizeof name, "vision_model.encoder.layers.%d.%s.weight", l, subs[j]);
    const rcc_tensor_t *w = rcc_st_find(st, name);
    if (!w || w->ndim != 2) {
      rcc_st_close(st);
      return rcc_fail(RCC_ERR_FORMAT, "bench_train: %s: no 2-D tensor '%s'", path, name);
    }
    rcc_factored_t *f = calloc(1, sizeof *f);
    if (!f || !(f->S = malloc((size_t)w->numel * sizeof(float)))) {
      free(f);
      rcc_st_close(st);
      return rcc_fail(RCC_ERR_NOMEM, "bench_train: out of memory");
    }
    f->m = (int)w->shape[0];
    f->n = (int)w->shape[1];
    memcpy(f->S, w->data, (size_t)w->numel * sizeof(float));
    layers[i] = f;
  }
  rcc_st_close(st);
  return RCC_OK;
}

int main(int argc, char **argv) {
  const char *model = NULL, *train = "all";
  int threads = 1, B = 8, warmup = 1, iters = 3;
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                       {"threads", required_argument, 0, 't'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"warmup", required_argument, 0, 'w'},
                                       {"iters", required_argument, 0, 'i'},
                                       {"train", required_argument, 0, 'r'},
                                       {0, 0, 0, 0}};
  for (int o; (o = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
    switch (o) {
    case 'm': model = optarg; break;
    case 't': threads = atoi(optarg); break;
    case 'b': B = atoi(optarg); break;
    case 'w': warmup = atoi(optarg); break;
    case 'i': iters = atoi(optarg); break;
    case 'r': train = optarg; break;
    default: return 2;
    }
  }
  const bool all = strcmp(train, "all") == 0;
  if (!model || B <= 0 || iters <= 0 || threads <= 0 || (!all && strcmp(train, "alpha") != 0)) {
    fprintf(stderr, "usage: bench_train --model DIR [--threads T] [--batch B] [--warmup N] "
                    "[--iters N] [--train all|alpha]\n");
    return 2;
  }
  rcc_backend_t be;
  if (rcc_backend_init(&be, "cpu") != RCC_OK) return fail("backend");
  rcc_backend_set_threads(be, threads);
  char path[4096];
  rcc_clip_config_t cfg;
  snprintf(path, sizeof path, "%s/config.json", model);
  if (rcc_clip_config_load(path, &cfg) != RCC_OK) return fail("config");
  const int n = 6 * (cfg.vision.num_layers + cfg.text.num_layers) + 2;
  rcc_factored_t **layers = calloc((size_t)n, sizeof *layers);
  if (!layers || vision_layers(model, &cfg, layers, n) != RCC_OK) return fail("layers");
  rcc_clip_trainable_t which = {
      .alpha = true, .bias = true, .layernorm = true, .lowrank = all, .sparse_values = all};
  rcc_clip_train_t *t = NULL;
  if (rcc_clip_train_create(model, be, layers, n, which, &t) != RCC_OK) return fail("create");
  for (int i = 0; i < n; i++)
    if (layers[i]) {
      free(layers[i]->S);
      free(layers[i]);
    }
  free(layers);

  const int C = cfg.vision.num_channels, S = cfg.vision.image_size, P = cfg.projection_dim;
  float *pixels = malloc((size_t)B * C * S * S * sizeof *pixels);
  float *emb = malloc((size_t)B * P * sizeof *emb), *d_emb = malloc((size_t)B * P * sizeof *d_emb);
  if (!pixels || !emb || !d_emb) return fail("inputs");
  uint64_t x = 0x9E3779B97F4A7C15ull; /* xorshift: seeded uniform(-2, 2) pixels, (-1, 1) d_emb */
  for (size_t i = 0; i < (size_t)B * C * S * S; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    pixels[i] = (float)((x >> 11) * 0x1.0p-53 * 4.0 - 2.0);
  }
  for (int i = 0; i < B * P; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    d_emb[i] = (float)((x >> 11) * 0x1.0p-53 * 2.0 - 1.0);
  }
  double *times = malloc((size_t)iters * sizeof *times);
  for (int it = 0; it < warmup + iters; it++) {
    const double t0 = rcc_bench_now();
    rcc_clip_train_zero_grads(t);
    if (rcc_clip_train_image_forward(t, pixels, B, emb) != RCC_OK ||
        rcc_clip_train_image_backward(t, d_emb) != RCC_OK)
      return fail("step");
    if (it >= warmup) times[it - warmup] = rcc_bench_now() - t0;
  }
  qsort(times, (size_t)iters, sizeof *times, rcc_bench_cmp_double);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("{\"impl\": \"rcc\", \"train\": \"%s\", \"threads\": %d, \"batch\": %d, "
         "\"step_s\": %.4f, \"samples_per_s\": %.3f, \"trainable_params\": %lld, "
         "\"activation_mb\": %.1f, \"peak_rss_mb\": %.0f}\n",
         train, threads, B, times[iters / 2], B / times[iters / 2],
         (long long)rcc_clip_train_num_params(t), rcc_clip_train_activation_bytes(t) / 1048576.0,
         ru.ru_maxrss / 1024.0);
  free(times);
  free(pixels);
  free(emb);
  free(d_emb);
  rcc_clip_train_free(t);
  rcc_backend_free(be);
  return 0;
}
