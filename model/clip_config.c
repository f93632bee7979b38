/* config.json of a Hugging Face CLIPModel -> rcc_clip_config_t, with transformers'
 * defaults (CLIPTextConfig, CLIPVisionConfig, CLIPConfig) for every absent key. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/clip.h"

static rcc_status_t read_text_file(const char *path, char **out) {
  FILE *f = fopen(path, "rb");
  if (!f) return rcc_fail(RCC_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (fseek(f, 0, SEEK_END) != 0) {
    fclose(f);
    return rcc_fail(RCC_ERR_IO, "%s: cannot seek", path);
  }
  long n = ftell(f);
  rewind(f);
  if (n < 0 || n > (64L << 20)) {
    fclose(f);
    return rcc_fail(RCC_ERR_FORMAT, "%s: unreasonable size for a config file (%ld bytes)", path, n);
  }
  char *buf = malloc((size_t)n + 1);
  if (!buf) {
    fclose(f);
    return rcc_fail(RCC_ERR_NOMEM, "%s: cannot allocate %ld bytes", path, n);
  }
  size_t got = fread(buf, 1, (size_t)n, f);
  fclose(f);
  if (got != (size_t)n) {
    free(buf);
    return rcc_fail(RCC_ERR_IO, "%s: short read", path);
  }
  buf[n] = '\0';
  *out = buf;
  return RCC_OK;
}

/* Optional integer key: absent or null keeps *out; any other type is an error. */
static rcc_status_t get_int(const char *path, const char *section, const cJSON *obj,
                            const char *key, int *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) return RCC_OK;
  if (cJSON_IsArray(v)) {
    /* image_size / patch_size may be [h, w]; we support square ones. */
    int n = cJSON_GetArraySize(v);
    const cJSON *a = cJSON_GetArrayItem(v, 0), *b = cJSON_GetArrayItem(v, n - 1);
    if (n < 1 || n > 2 || !cJSON_IsNumber(a) || !cJSON_IsNumber(b))
      return rcc_fail(RCC_ERR_FORMAT, "%s: %s.%s: expected an integer or [h, w]", path, section,
                      key);
    if (a->valuedouble != b->valuedouble)
      return rcc_fail(RCC_ERR_UNSUPPORTED, "%s: %s.%s: non-square [%g, %g] is not supported", path,
                      section, key, a->valuedouble, b->valuedouble);
    v = a;
  }
  /* The range check comes first: converting a double past INT_MAX to int is undefined. */
  if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= INT_MAX) ||
      v->valuedouble != (double)(int)v->valuedouble)
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s.%s: expected an integer", path, section, key);
  *out = (int)v->valuedouble;
  return RCC_OK;
}

static rcc_status_t get_float(const char *path, const char *section, const cJSON *obj,
                              const char *key, float *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) return RCC_OK;
  if (!cJSON_IsNumber(v))
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s.%s: expected a number", path, section, key);
  *out = (float)v->valuedouble;
  return RCC_OK;
}

static rcc_status_t get_activation(const char *path, const char *section, const cJSON *obj,
                                   rcc_activation_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "hidden_act");
  if (!v || cJSON_IsNull(v)) return RCC_OK;
  if (!cJSON_IsString(v))
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s.hidden_act: expected a string", path, section);
  static const struct {
    const char *name;
    rcc_activation_t act;
  } table[] = {{"quick_gelu", RCC_ACT_QUICK_GELU}, {"gelu", RCC_ACT_GELU},
               {"gelu_new", RCC_ACT_GELU_TANH},    {"gelu_pytorch_tanh", RCC_ACT_GELU_TANH},
               {"gelu_fast", RCC_ACT_GELU_TANH},   {"relu", RCC_ACT_RELU}};
  for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
    if (strcmp(v->valuestring, table[i].name) == 0) {
      *out = table[i].act;
      return RCC_OK;
    }
  return rcc_fail(RCC_ERR_UNSUPPORTED,
                  "%s: %s.hidden_act: unsupported activation '%s' (supported: quick_gelu, gelu, "
                  "gelu_new, gelu_pytorch_tanh, gelu_fast, relu)",
                  path, section, v->valuestring);
}

static rcc_status_t parse_tower(const char *path, const char *section, const cJSON *obj,
                                rcc_clip_tower_config_t *t) {
  if (!obj) return RCC_OK;
  if (!cJSON_IsObject(obj))
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s: expected an object", path, section);
  RCC_TRY(get_int(path, section, obj, "hidden_size", &t->hidden_size));
  RCC_TRY(get_int(path, section, obj, "intermediate_size", &t->intermediate_size));
  RCC_TRY(get_int(path, section, obj, "num_hidden_layers", &t->num_layers));
  RCC_TRY(get_int(path, section, obj, "num_attention_heads", &t->num_heads));
  RCC_TRY(get_float(path, section, obj, "layer_norm_eps", &t->layer_norm_eps));
  RCC_TRY(get_activation(path, section, obj, &t->act));
  RCC_TRY(get_int(path, section, obj, "image_size", &t->image_size));
  RCC_TRY(get_int(path, section, obj, "patch_size", &t->patch_size));
  RCC_TRY(get_int(path, section, obj, "num_channels", &t->num_channels));
  RCC_TRY(get_int(path, section, obj, "vocab_size", &t->vocab_size));
  RCC_TRY(get_int(path, section, obj, "max_position_embeddings", &t->max_position_embeddings));
  RCC_TRY(get_int(path, section, obj, "eos_token_id", &t->eos_token_id));
  RCC_TRY(get_int(path, section, obj, "bos_token_id", &t->bos_token_id));
  RCC_TRY(get_int(path, section, obj, "pad_token_id", &t->pad_token_id));
  return RCC_OK;
}

static rcc_status_t check_tower(const char *path, const char *section,
                                const rcc_clip_tower_config_t *t, int vision) {
  if (t->hidden_size <= 0 || t->intermediate_size <= 0 || t->num_layers < 0 || t->num_heads <= 0 ||
      t->hidden_size % t->num_heads != 0 || t->hidden_size > (1 << 16) ||
      t->intermediate_size > (1 << 18) || t->num_layers > 1024)
    return rcc_fail(RCC_ERR_FORMAT,
                    "%s: %s: inconsistent sizes (hidden_size %d, num_attention_heads %d, "
                    "intermediate_size %d, num_hidden_layers %d)",
                    path, section, t->hidden_size, t->num_heads, t->intermediate_size,
                    t->num_layers);
  if (!(t->layer_norm_eps > 0.0f))
    return rcc_fail(RCC_ERR_FORMAT, "%s: %s.layer_norm_eps must be > 0", path, section);
  if (vision) {
    if (t->patch_size <= 0 || t->image_size < t->patch_size || t->num_channels <= 0 ||
        t->image_size > 8192 || t->num_channels > 16)
      return rcc_fail(RCC_ERR_FORMAT,
                      "%s: %s: inconsistent image_size %d, patch_size %d, num_channels %d", path,
                      section, t->image_size, t->patch_size, t->num_channels);
  } else if (t->vocab_size <= 0 || t->vocab_size > (1 << 24) || t->max_position_embeddings <= 0 ||
             t->max_position_embeddings > 65536) {
    return rcc_fail(RCC_ERR_FORMAT,
                    "%s: %s: inconsistent vocab_size %d, max_position_embeddings %d", path, section,
                    t->vocab_size, t->max_position_embeddings);
  }
  return RCC_OK;
}

rcc_status_t rcc_clip_config_parse(const char *text, const char *path, rcc_clip_config_t *out) {
  rcc_clip_config_t c = {
      .text = {.hidden_size = 512,
               .intermediate_size = 2048,
               .num_layers = 12,
               .num_heads = 8,
               .layer_norm_eps = 1e-5f,
               .act = RCC_ACT_QUICK_GELU,
               .vocab_size = 49408,
               .max_position_embeddings = 77,
               .eos_token_id = 49407,
               .bos_token_id = 49406,
               .pad_token_id = 1},
      .vision = {.hidden_size = 768,
                 .intermediate_size = 3072,
                 .num_layers = 12,
                 .num_heads = 12,
                 .layer_norm_eps = 1e-5f,
                 .act = RCC_ACT_QUICK_GELU,
                 .image_size = 224,
                 .patch_size = 32,
                 .num_channels = 3},
      .projection_dim = 512,
      .logit_scale_init = 2.6592f,
  };
  cJSON *root = cJSON_Parse(text);
  rcc_status_t st = RCC_OK;
  if (!root || !cJSON_IsObject(root)) {
    const char *where = cJSON_GetErrorPtr();
    long offset = (where && where >= text) ? (long)(where - text) : -1;
    st =
        rcc_fail(RCC_ERR_FORMAT, "%s: not a JSON object (parse error near byte %ld)", path, offset);
    goto done;
  }
  const cJSON *mt = cJSON_GetObjectItemCaseSensitive(root, "model_type");
  if (mt && cJSON_IsString(mt) && strcmp(mt->valuestring, "clip") != 0) {
    st = rcc_fail(RCC_ERR_UNSUPPORTED, "%s: model_type '%s' is not a CLIPModel ('clip')", path,
                  mt->valuestring);
    goto done;
  }
  if ((st = parse_tower(path, "text_config", cJSON_GetObjectItemCaseSensitive(root, "text_config"),
                        &c.text)) != RCC_OK ||
      (st = parse_tower(path, "vision_config",
                        cJSON_GetObjectItemCaseSensitive(root, "vision_config"), &c.vision)) !=
          RCC_OK ||
      (st = get_int(path, "config", root, "projection_dim", &c.projection_dim)) != RCC_OK ||
      (st = get_float(path, "config", root, "logit_scale_init_value", &c.logit_scale_init)) !=
          RCC_OK ||
      (st = check_tower(path, "text_config", &c.text, 0)) != RCC_OK ||
      (st = check_tower(path, "vision_config", &c.vision, 1)) != RCC_OK)
    goto done;
  if (c.projection_dim <= 0 || c.projection_dim > (1 << 16)) {
    st = rcc_fail(RCC_ERR_FORMAT, "%s: projection_dim %d out of range", path, c.projection_dim);
    goto done;
  }
  *out = c;
done:
  cJSON_Delete(root);
  return st;
}

rcc_status_t rcc_clip_config_load(const char *path, rcc_clip_config_t *out) {
  char *text = NULL;
  RCC_TRY(read_text_file(path, &text));
  rcc_status_t st = rcc_clip_config_parse(text, path, out);
  free(text);
  return st;
}
