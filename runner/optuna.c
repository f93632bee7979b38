/* Optuna's CLI (create-study, ask, tell) behind runner/optuna.h. The search space goes to
 * `optuna ask` as JSON in optuna.distributions' format; choices are passed as their text
 * and matched back by text. */
#include "runner/optuna.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runner/spawn.h"

#define STUDY "rcc-sweep"

rcc_status_t rcc_optuna_check(void) {
  if (rcc_have_program("optuna")) return RCC_OK;
  return rcc_fail(RCC_ERR_ARG, "sampler optuna: the `optuna` command is not installed "
                               "(python3 -m pip install optuna), or use --sampler grid or "
                               "--sampler random");
}

/* Runs `optuna CMD --storage ... --storage-class JournalFileBackend --study-name rcc-sweep
 * EXTRA...`, stdout in *out when out is not NULL. */
static rcc_status_t run(const char *sweep_dir, const char *cmd, const char *const *extra,
                        char **out) {
  char storage[4200], log[4200];
  snprintf(storage, sizeof storage, "%s/optuna.journal", sweep_dir);
  snprintf(log, sizeof log, "%s/optuna.log", sweep_dir);
  const char *argv[24] = {
      "optuna",       cmd,  "--storage", storage, "--storage-class", "JournalFileBackend",
      "--study-name", STUDY};
  int n = 8;
  for (int i = 0; extra[i] && n < 23; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  char *captured = NULL;
  rcc_spawn_opts_t o = {.err_path = log, .capture = &captured, .out_path = NULL};
  int rc = rcc_spawn((char *const *)argv, &o);
  if (rc != 0) {
    free(captured);
    return rcc_fail(RCC_ERR_IO, "optuna %s failed (exit status %d): see %s", cmd, rc, log);
  }
  if (out)
    *out = captured;
  else
    free(captured);
  return RCC_OK;
}

rcc_status_t rcc_optuna_create(const char *sweep_dir) {
  const char *extra[] = {"--direction", "maximize", "--skip-if-exists", NULL};
  return run(sweep_dir, "create-study", extra, NULL);
}

static cJSON *space_json(const rcc_sweep_t *s) {
  cJSON *space = cJSON_CreateObject();
  for (int i = 0; space && i < s->num_params; i++) {
    const rcc_sweep_param_t *p = &s->params[i];
    cJSON *d = cJSON_AddObjectToObject(space, p->path);
    cJSON *a = cJSON_CreateObject();
    if (!d || !a) {
      cJSON_Delete(a);
      cJSON_Delete(space);
      return NULL;
    }
    if (p->kind == RCC_PARAM_CHOICE) {
      cJSON_AddStringToObject(d, "name", "CategoricalDistribution");
      cJSON *c = cJSON_AddArrayToObject(a, "choices");
      for (int j = 0; c && j < p->num_choices; j++)
        cJSON_AddItemToArray(c, cJSON_CreateString(p->choices[j]));
    } else {
      cJSON_AddStringToObject(d, "name",
                              p->kind == RCC_PARAM_INT ? "IntDistribution" : "FloatDistribution");
      cJSON_AddNumberToObject(a, "low", p->low);
      cJSON_AddNumberToObject(a, "high", p->high);
      cJSON_AddBoolToObject(a, "log", p->log);
      if (p->kind == RCC_PARAM_INT)
        cJSON_AddNumberToObject(a, "step", 1);
      else
        cJSON_AddNullToObject(a, "step");
    }
    cJSON_AddItemToObject(d, "attributes", a);
  }
  return space;
}

rcc_status_t rcc_optuna_ask(const rcc_sweep_t *s, const char *sweep_dir, int task, int *number,
                            rcc_param_value_t *values) {
  cJSON *space = space_json(s);
  char *space_text = space ? cJSON_PrintUnformatted(space) : NULL;
  cJSON_Delete(space);
  if (!space_text) return rcc_fail(RCC_ERR_NOMEM, "optuna ask: out of memory");
  char kwargs[64];
  snprintf(kwargs, sizeof kwargs, "{\"seed\": %lld}", (long long)(s->seed + task));
  const char *extra[] = {"--sampler", "TPESampler",     "--sampler-kwargs",
                         kwargs,      "--search-space", space_text,
                         "-f",        "json",           NULL};
  char *out = NULL;
  rcc_status_t st = run(sweep_dir, "ask", extra, &out);
  free(space_text);
  if (st != RCC_OK) return st;
  cJSON *o = cJSON_Parse(out);
  cJSON *num = cJSON_GetObjectItemCaseSensitive(o, "number");
  cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
  if (!cJSON_IsNumber(num) || !cJSON_IsObject(params)) {
    st = rcc_fail(RCC_ERR_FORMAT, "optuna ask printed no {number, params}: '%.200s'",
                  out ? out : "");
  } else {
    *number = num->valueint;
    for (int i = 0; i < s->num_params && st == RCC_OK; i++) {
      const rcc_sweep_param_t *p = &s->params[i];
      cJSON *v = cJSON_GetObjectItemCaseSensitive(params, p->path);
      values[i] = (rcc_param_value_t){0};
      if (p->kind != RCC_PARAM_CHOICE && cJSON_IsNumber(v)) {
        values[i].x = v->valuedouble;
        continue;
      }
      values[i].choice = -1;
      for (int j = 0; cJSON_IsString(v) && j < p->num_choices; j++)
        if (!strcmp(v->valuestring, p->choices[j])) values[i].choice = j;
      if (values[i].choice < 0)
        st = rcc_fail(RCC_ERR_FORMAT, "optuna ask gave no usable value for %s", p->path);
    }
  }
  cJSON_Delete(o);
  free(out);
  return st;
}

rcc_status_t rcc_optuna_tell(const char *sweep_dir, int number, const char *state, double value) {
  char num[32], val[64];
  snprintf(num, sizeof num, "%d", number);
  snprintf(val, sizeof val, "%.17g", value);
  const char *with_value[] = {"--trial-number",     num, "--state", state, "--values", val,
                              "--skip-if-finished", NULL};
  const char *without[] = {"--trial-number", num, "--state", state, "--skip-if-finished", NULL};
  return run(sweep_dir, "tell", strcmp(state, "complete") ? without : with_value, NULL);
}
