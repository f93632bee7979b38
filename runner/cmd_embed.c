/* `rcc-dist embed`: projected CLIP features of images or texts, written as one F32
 * safetensors tensor `embeddings` (n, projection_dim), rows in input order. The values are
 * what HF's get_image_features / get_text_features return (not normalized). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/features.h"
#include "io/safetensors.h"
#include "runner/commands.h"
#include "runner/session.h"

static const char embed_usage[] =
    "usage: rcc-dist embed --model DIR (--images FILE... | --texts FILE) --out OUT.safetensors\n"
    "\n"
    "  --images FILE...   PNG or JPEG files (every non-option argument is an image)\n"
    "  --texts FILE       one text per line (padded to the model's maximum length)\n"
    "  --out FILE         safetensors file with the F32 tensor 'embeddings' (n, projection_dim)\n"
    "  --batch N, --backend NAME, --threads N   as for eval\n";

/* One text per line, the trailing newline (and CR) removed; empty lines are texts too. */
static rcc_status_t read_lines(const char *path, char ***out, int *n) {
  FILE *f = fopen(path, "r");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL, **items = NULL;
  size_t cap = 0;
  ssize_t len;
  int count = 0;
  rcc_status_t st = RCC_OK;
  while ((len = getline(&line, &cap, f)) >= 0) {
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    char **grown = realloc(items, (size_t)(count + 1) * sizeof *grown);
    if (!grown) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    items = grown;
    if (!(items[count] = strdup(line))) {
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    count++;
  }
  free(line);
  fclose(f);
  if (st == RCC_OK && count == 0) st = rcc_fail(RCC_ERR_FORMAT, "%s: no texts", path);
  if (st != RCC_OK) {
    for (int i = 0; i < count; i++)
      free(items[i]);
    free(items);
    return st;
  }
  *out = items;
  *n = count;
  return RCC_OK;
}

int rcc_cmd_embed(int argc, char **argv) {
  static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                       {"images", no_argument, 0, 'i'},
                                       {"texts", required_argument, 0, 't'},
                                       {"out", required_argument, 0, 'o'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"backend", required_argument, 0, 'B'},
                                       {"threads", required_argument, 0, 'T'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  const char *model = NULL, *texts_path = NULL, *out = NULL, *backend = "auto";
  int images = 0, batch = 32, threads = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'm': model = optarg; break;
    case 'i': images = 1; break;
    case 't': texts_path = optarg; break;
    case 'o': out = optarg; break;
    case 'b':
      if ((batch = rcc_cmd_parse_positive("--batch", optarg)) < 0) return 2;
      break;
    case 'B': backend = optarg; break;
    case 'T':
      if ((threads = rcc_cmd_parse_positive("--threads", optarg)) < 0) return 2;
      break;
    case 'h': fputs(embed_usage, stdout); return 0;
    default: fputs(embed_usage, stderr); return 2;
    }
  }
  const char *problem = NULL;
  if (!model || !out)
    problem = "embed needs --model and --out";
  else if (images == !!texts_path)
    problem = "embed needs exactly one of --images and --texts";
  else if (images && optind >= argc)
    problem = "--images needs at least one image file";
  else if (!images && optind < argc)
    problem = "unexpected arguments after --texts FILE";
  if (problem) {
    fprintf(stderr, "rcc-dist: error: %s\n%s", problem, embed_usage);
    return 2;
  }
  char **texts = NULL;
  int n = images ? argc - optind : 0;
  if (!images && read_lines(texts_path, &texts, &n) != RCC_OK) return rcc_cmd_report_error();

  rcc_session_t s;
  rcc_eval_ctx_t ctx = {0};
  float *emb = NULL;
  rcc_status_t st = rcc_session_open(&s, &argc, &argv, backend, threads);
  int opened = st == RCC_OK;
  if (st == RCC_OK) st = rcc_eval_ctx_open(&ctx, model, s.backend, batch);
  int P = st == RCC_OK ? rcc_clip_get_config(ctx.model)->projection_dim : 0;
  if (st == RCC_OK && !(emb = malloc((size_t)n * P * sizeof *emb)))
    st = rcc_fail(RCC_ERR_NOMEM, "out of memory for %d embeddings", n);
  if (st == RCC_OK)
    st = images ? rcc_eval_image_file_features(&ctx, (const char *const *)(argv + optind), n, false,
                                               emb)
                : rcc_eval_text_features(&ctx, (const char *const *)texts, n, false, emb);
  if (st == RCC_OK) {
    rcc_tensor_t t = {.name = "embeddings",
                      .dtype = RCC_DTYPE_F32,
                      .ndim = 2,
                      .shape = {n, P},
                      .numel = (int64_t)n * P,
                      .data = emb};
    char count[32];
    snprintf(count, sizeof count, "%d", n);
    const char *keys[] = {"format", "model", "kind", "count"};
    const char *values[] = {"pt", model, images ? "image" : "text", count};
    st = rcc_st_save(out, &t, 1, keys, values, 4);
  }
  if (st == RCC_OK)
    printf("wrote %d %s embeddings of size %d to %s\n", n, images ? "image" : "text", P, out);
  int rc = st == RCC_OK ? 0 : rcc_cmd_report_error();
  free(emb);
  rcc_eval_ctx_close(&ctx);
  if (opened) rcc_session_close(&s);
  for (int i = 0; texts && i < n; i++)
    free(texts[i]);
  free(texts);
  return rc;
}
