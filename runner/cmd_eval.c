/* `rcc-dist eval`: zero-shot top-1/top-5 on a class dataset, or image-text retrieval
 * recall on a caption dataset, data-parallel across MPI ranks when launched by mpirun. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "eval/zeroshot.h"
#include "runner/commands.h"
#include "runner/session.h"

static const char eval_usage[] =
    "usage: rcc-dist eval --model DIR --data SPEC [options]\n"
    "\n"
    "  --model DIR        Hugging Face CLIPModel directory (config.json, model.safetensors,\n"
    "                     vocab.json, merges.txt, preprocessor_config.json)\n"
    "  --data SPEC        fmnist:test | fmnist:train | folder:DIR | csv:FILE\n"
    "                     (class datasets: zero-shot top-1/top-5; csv: retrieval R@1/5/10)\n"
    "  --limit N          first N samples only\n"
    "  --templates FILE   zero-shot prompt templates, one per line, '{}' for the class name\n"
    "  --json             print one JSON object instead of text\n"
    "  --batch N          images or texts per forward (default 64)\n"
    "  --backend NAME     cpu | cuda | cuda:N | auto (default auto)\n"
    "  --threads N        CPU threads (default: OpenBLAS/OpenMP defaults)\n";

typedef struct {
  char **items;
  int n;
} lines_t;

static void lines_free(lines_t *l) {
  for (int i = 0; i < l->n; i++)
    free(l->items[i]);
  free(l->items);
}

/* Reads non-empty lines; each must contain "{}". */
static rcc_status_t read_templates(const char *path, lines_t *out) {
  FILE *f = fopen(path, "r");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int lineno = 0;
  rcc_status_t st = RCC_OK;
  *out = (lines_t){0};
  while (st == RCC_OK && (len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
      line[--len] = '\0';
    if (len == 0) continue;
    if (!strstr(line, "{}")) {
      st = rcc_fail(RCC_ERR_FORMAT, "%s:%d: template has no '{}' for the class name", path, lineno);
      break;
    }
    char **grown = realloc(out->items, (size_t)(out->n + 1) * sizeof *grown);
    char *copy = strdup(line);
    if (!grown || !copy) {
      free(copy);
      if (grown) out->items = grown;
      st = rcc_fail(RCC_ERR_NOMEM, "out of memory");
      break;
    }
    out->items = grown;
    out->items[out->n++] = copy;
  }
  free(line);
  fclose(f);
  if (st == RCC_OK && out->n == 0) st = rcc_fail(RCC_ERR_FORMAT, "%s: no templates", path);
  if (st != RCC_OK) lines_free(out);
  return st;
}

static void print_result(const char *model, const char *data, rcc_session_t *s, int json,
                         const rcc_zeroshot_result_t *zs, const rcc_retrieval_result_t *rt,
                         double seconds) {
  int n = zs ? zs->samples : rt->pairs;
  if (json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model", model);
    cJSON_AddStringToObject(o, "data", data);
    cJSON_AddNumberToObject(o, "samples", n);
    if (zs) {
      cJSON_AddStringToObject(o, "task", "zero-shot");
      cJSON_AddNumberToObject(o, "classes", zs->classes);
      cJSON_AddNumberToObject(o, "top1", zs->top1);
      cJSON_AddNumberToObject(o, "top5", zs->top5);
    } else {
      cJSON_AddStringToObject(o, "task", "retrieval");
      static const char *names[3] = {"r1", "r5", "r10"};
      cJSON *i2t = cJSON_AddObjectToObject(o, "image_to_text");
      cJSON *t2i = cJSON_AddObjectToObject(o, "text_to_image");
      for (int k = 0; k < 3; k++) {
        cJSON_AddNumberToObject(i2t, names[k], rt->image_to_text[k]);
        cJSON_AddNumberToObject(t2i, names[k], rt->text_to_image[k]);
      }
    }
    cJSON_AddStringToObject(o, "backend", rcc_backend_describe(s->backend));
    cJSON_AddNumberToObject(o, "ranks", rcc_comm_size(s->comm));
    cJSON_AddNumberToObject(o, "seconds", seconds);
    char *text = cJSON_PrintUnformatted(o);
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(o);
    return;
  }
  printf("model    %s\ndata     %s (%d samples)\n", model, data, n);
  if (zs) {
    printf("zero-shot top-1  %.2f%%\nzero-shot top-5  %.2f%%\n", zs->top1, zs->top5);
  } else {
    printf("image->text  R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n", rt->image_to_text[0],
           rt->image_to_text[1], rt->image_to_text[2]);
    printf("text->image  R@1 %.2f%%  R@5 %.2f%%  R@10 %.2f%%\n", rt->text_to_image[0],
           rt->text_to_image[1], rt->text_to_image[2]);
  }
  printf("backend  %s, %d rank%s, %.2f s\n", rcc_backend_describe(s->backend),
         rcc_comm_size(s->comm), rcc_comm_size(s->comm) > 1 ? "s" : "", seconds);
}

int rcc_cmd_eval(int argc, char **argv) {
  static const struct option opts[] = {
      {"model", required_argument, 0, 'm'},   {"data", required_argument, 0, 'd'},
      {"limit", required_argument, 0, 'l'},   {"templates", required_argument, 0, 't'},
      {"json", no_argument, 0, 'j'},          {"batch", required_argument, 0, 'b'},
      {"backend", required_argument, 0, 'B'}, {"threads", required_argument, 0, 'T'},
      {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
  const char *model = NULL, *data = NULL, *templates_path = NULL, *backend = "auto";
  int limit = 0, json = 0, batch = 64, threads = 0, c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (c) {
    case 'm': model = optarg; break;
    case 'd': data = optarg; break;
    case 'l':
      if ((limit = rcc_cmd_parse_positive("--limit", optarg)) < 0) return 2;
      break;
    case 't': templates_path = optarg; break;
    case 'j': json = 1; break;
    case 'b':
      if ((batch = rcc_cmd_parse_positive("--batch", optarg)) < 0) return 2;
      break;
    case 'B': backend = optarg; break;
    case 'T':
      if ((threads = rcc_cmd_parse_positive("--threads", optarg)) < 0) return 2;
      break;
    case 'h': fputs(eval_usage, stdout); return 0;
    default: fputs(eval_usage, stderr); return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "rcc-dist: error: eval: unexpected argument '%s'\n%s", argv[optind],
            eval_usage);
    return 2;
  }
  if (!model || !data) {
    fprintf(stderr, "rcc-dist: error: eval needs --model and --data\n%s", eval_usage);
    return 2;
  }
  lines_t templates = {0};
  if (templates_path && read_templates(templates_path, &templates) != RCC_OK)
    return rcc_cmd_report_error();

  rcc_session_t s;
  rcc_dataset_t *ds = NULL;
  rcc_eval_ctx_t ctx = {0};
  int rc = 1;
  if (rcc_session_open(&s, &argc, &argv, backend, threads) != RCC_OK) {
    lines_free(&templates);
    return rcc_cmd_report_error();
  }
  double t0 = rcc_now_seconds();
  rcc_status_t st = rcc_dataset_open(data, &ds);
  if (st == RCC_OK) st = rcc_eval_ctx_open(&ctx, model, s.backend, batch);
  if (st == RCC_OK) {
    rcc_zeroshot_result_t zs;
    rcc_retrieval_result_t rt;
    if (rcc_dataset_num_classes(ds) > 0) {
      const char *const *tmpl =
          templates.n ? (const char *const *)templates.items : rcc_default_templates;
      int nt = templates.n ? templates.n : rcc_default_template_count;
      st = rcc_zeroshot_evaluate(&ctx, s.comm, ds, tmpl, nt, limit, &zs);
      if (st == RCC_OK && rcc_comm_rank(s.comm) == 0)
        print_result(model, data, &s, json, &zs, NULL, rcc_now_seconds() - t0);
    } else {
      st = rcc_retrieval_evaluate(&ctx, s.comm, ds, limit, &rt);
      if (st == RCC_OK && rcc_comm_rank(s.comm) == 0)
        print_result(model, data, &s, json, NULL, &rt, rcc_now_seconds() - t0);
    }
  }
  if (st == RCC_OK) {
    rc = 0;
  } else if (rcc_comm_size(s.comm) > 1) {
    /* A local failure (bad file on this rank) must not leave the others waiting. */
    char why[2300];
    snprintf(why, sizeof why, "eval failed: %s", rcc_last_error());
    rcc_comm_abort(s.comm, 1, why);
  } else {
    rcc_cmd_report_error();
  }
  rcc_eval_ctx_close(&ctx);
  rcc_dataset_free(ds);
  rcc_session_close(&s);
  lines_free(&templates);
  return rc;
}
