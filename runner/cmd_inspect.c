/* `rcc-dist inspect MODEL_DIR`: configuration, every linear layer with its shape, and
 * parameter counts (total, compressible linear layers, embeddings). */
#include <getopt.h>
#include <stdio.h>

#include "model/clip.h"
#include "runner/commands.h"

static const char inspect_usage[] = "usage: rcc-dist inspect MODEL_DIR\n";

static void print_tower(const char *name, const rcc_clip_tower_config_t *t, int vision) {
  static const char *acts[] = {"gelu", "gelu_tanh", "quick_gelu", "relu"};
  printf("%-7s hidden %d, %d layers, %d heads, mlp %d, %s", name, t->hidden_size, t->num_layers,
         t->num_heads, t->intermediate_size, acts[t->act]);
  if (vision)
    printf(", image %d, patch %d, %d channels\n", t->image_size, t->patch_size, t->num_channels);
  else
    printf(", vocab %d, context %d\n", t->vocab_size, t->max_position_embeddings);
}

int rcc_cmd_inspect(int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    if (c == 'h') {
      fputs(inspect_usage, stdout);
      return 0;
    }
    fputs(inspect_usage, stderr);
    return 2;
  }
  if (argc - optind != 1) {
    fprintf(stderr, "rcc-dist: error: inspect needs exactly one model directory\n%s",
            inspect_usage);
    return 2;
  }
  const char *dir = argv[optind];
  rcc_backend_t be;
  rcc_clip_model_t *m;
  if (rcc_backend_init(&be, "cpu") != RCC_OK) return rcc_cmd_report_error();
  if (rcc_clip_load(dir, be, &m) != RCC_OK) {
    rcc_backend_free(be);
    return rcc_cmd_report_error();
  }
  const rcc_clip_config_t *cfg = rcc_clip_get_config(m);
  printf("model   %s (CLIPModel)\n", dir);
  print_tower("vision", &cfg->vision, 1);
  print_tower("text", &cfg->text, 0);
  printf("projection %d, logit scale %.4f\n\n", cfg->projection_dim, rcc_clip_logit_scale(m));
  printf("%-56s %12s %12s\n", "linear layer", "shape", "params");
  for (int i = 0; i < rcc_clip_num_linears(m); i++) {
    const rcc_linear_t *l = rcc_clip_linear(m, i);
    char shape[32];
    snprintf(shape, sizeof shape, "%dx%d", l->out_features, l->in_features);
    long long params =
        (long long)l->out_features * l->in_features + (l->bias ? l->out_features : 0);
    printf("%-56s %12s %12lld\n", l->name, shape, params);
  }
  rcc_clip_param_counts_t pc = rcc_clip_count_params(m);
  printf("\nparameters  total %lld\n            linear layers %lld (%.1f%%)\n"
         "            embeddings %lld (%.1f%%)\n            other %lld (%.1f%%)\n",
         (long long)pc.total, (long long)pc.linear, 100.0 * pc.linear / pc.total,
         (long long)pc.embeddings, 100.0 * pc.embeddings / pc.total,
         (long long)(pc.total - pc.linear - pc.embeddings),
         100.0 * (pc.total - pc.linear - pc.embeddings) / pc.total);
  rcc_clip_free(m);
  rcc_backend_free(be);
  return 0;
}
