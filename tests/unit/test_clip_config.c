/* config.json parsing and model loading errors: each bad input gives its own status and a
 * message naming the file and the key or tensor, never a crash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/clip.h"
#include "tests/harness.h"

static const char *write_file(const char *name, const char *text) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/%s", rcc_scratch_dir(), name);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  return path;
}

static void expect_error(const char *json, rcc_status_t want, const char *needle) {
  rcc_clip_config_t c;
  const char *path = write_file("config.json", json);
  rcc_status_t st = rcc_clip_config_load(path, &c);
  if (st != want || !strstr(rcc_last_error(), needle) || !strstr(rcc_last_error(), "config.json"))
    fail_msg("config %s: got status %d message \"%s\", wanted status %d and \"%s\"", json, st,
             rcc_last_error(), want, needle);
}

static void test_defaults_match_transformers(void **s) {
  (void)s;
  rcc_clip_config_t c;
  assert_int_equal(
      rcc_clip_config_load(write_file("config.json", "{\"model_type\": \"clip\"}"), &c), RCC_OK);
  assert_int_equal(c.vision.hidden_size, 768);
  assert_int_equal(c.vision.patch_size, 32);
  assert_int_equal(c.vision.image_size, 224);
  assert_int_equal(c.text.hidden_size, 512);
  assert_int_equal(c.text.num_heads, 8);
  assert_int_equal(c.text.max_position_embeddings, 77);
  assert_int_equal(c.text.eos_token_id, 49407);
  assert_int_equal(c.projection_dim, 512);
  assert_int_equal(c.vision.act, RCC_ACT_QUICK_GELU);
  assert_float_equal(c.logit_scale_init, 2.6592f, 1e-6f);
}

static void test_reads_sub_configs(void **s) {
  (void)s;
  rcc_clip_config_t c;
  const char *json = "{\"projection_dim\": 48, \"text_config\": {\"hidden_size\": 48, "
                     "\"num_attention_heads\": 4, \"hidden_act\": \"gelu\", \"eos_token_id\": 2},"
                     " \"vision_config\": {\"image_size\": [48, 48], \"patch_size\": 8, "
                     "\"layer_norm_eps\": 1e-6}}";
  assert_int_equal(rcc_clip_config_load(write_file("config.json", json), &c), RCC_OK);
  assert_int_equal(c.projection_dim, 48);
  assert_int_equal(c.text.hidden_size, 48);
  assert_int_equal(c.text.act, RCC_ACT_GELU);
  assert_int_equal(c.text.eos_token_id, 2);
  assert_int_equal(c.vision.image_size, 48);
  assert_float_equal(c.vision.layer_norm_eps, 1e-6f, 1e-12f);
}

static void test_bad_configs(void **s) {
  (void)s;
  expect_error("{\"projection_dim\": ", RCC_ERR_FORMAT, "not a JSON object");
  expect_error("[1, 2]", RCC_ERR_FORMAT, "not a JSON object");
  expect_error("{\"model_type\": \"bert\"}", RCC_ERR_UNSUPPORTED, "model_type 'bert'");
  expect_error("{\"text_config\": {\"hidden_size\": \"big\"}}", RCC_ERR_FORMAT,
               "text_config.hidden_size");
  expect_error("{\"text_config\": {\"hidden_size\": 50, \"num_attention_heads\": 8}}",
               RCC_ERR_FORMAT, "text_config");
  expect_error("{\"vision_config\": {\"hidden_act\": \"swish\"}}", RCC_ERR_UNSUPPORTED, "swish");
  expect_error("{\"vision_config\": {\"image_size\": [224, 160]}}", RCC_ERR_UNSUPPORTED,
               "non-square");
  expect_error("{\"vision_config\": {\"patch_size\": 0}}", RCC_ERR_FORMAT, "patch_size");
  expect_error("{\"projection_dim\": -1}", RCC_ERR_FORMAT, "projection_dim");
  expect_error("{\"vision_config\": 3}", RCC_ERR_FORMAT, "vision_config");
}

static void test_missing_file(void **s) {
  (void)s;
  rcc_clip_config_t c;
  assert_int_equal(rcc_clip_config_load("/nonexistent/config.json", &c), RCC_ERR_IO);
  assert_non_null(strstr(rcc_last_error(), "/nonexistent/config.json"));
}

/* A checkpoint whose tensors do not match its config is refused with the tensor's name. */
static void test_model_shape_mismatch(void **s) {
  (void)s;
  char dir[4096], cmd[8500];
  snprintf(dir, sizeof dir, "%s/bad-model", rcc_scratch_dir());
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s'/* '%s'/", dir,
           rcc_source_path("tests/fixtures/clip-tiny-a"), dir);
  assert_int_equal(system(cmd), 0);
  /* Same weights, but the config claims a wider MLP. */
  snprintf(cmd, sizeof cmd,
           "sed -i 's/\"intermediate_size\": 128/\"intermediate_size\": 256/' '%s/config.json'",
           dir);
  assert_int_equal(system(cmd), 0);
  rcc_backend_t be;
  rcc_clip_model_t *m = NULL;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  rcc_status_t st = rcc_clip_load(dir, be, &m);
  assert_int_equal(st, RCC_ERR_FORMAT);
  assert_null(m);
  if (!strstr(rcc_last_error(), "mlp.fc1.weight") || !strstr(rcc_last_error(), "shape"))
    fail_msg("unexpected message: %s", rcc_last_error());
  rcc_backend_free(be);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_match_transformers), cmocka_unit_test(test_reads_sub_configs),
      cmocka_unit_test(test_bad_configs), cmocka_unit_test(test_missing_file),
      cmocka_unit_test(test_model_shape_mismatch)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
