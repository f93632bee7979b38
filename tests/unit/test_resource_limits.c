/* Files that claim huge sizes (label unit): config.json numbers past an int or past the
 * limits of a CLIP model, and a config file past 64 MiB, are refused with RCC_ERR_FORMAT
 * (not RCC_ERR_NOMEM: nothing of the claimed size is allocated) and a message naming the
 * file and the key. The other readers' limits are tested beside their other errors:
 * safetensors header length and shapes (test_safetensors), IDX dimensions (test_dataset),
 * checkpoint datasets larger than their file (test_checkpoint), image sides (test_image). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "model/clip.h"
#include "tests/harness.h"

static const char *config_path(void) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/config.json", rcc_scratch_dir());
  return path;
}

static void expect_refused(const char *json, const char *needle) {
  FILE *f = fopen(config_path(), "w");
  assert_non_null(f);
  fputs(json, f);
  fclose(f);
  rcc_clip_config_t c;
  rcc_status_t st = rcc_clip_config_load(config_path(), &c);
  if (st != RCC_ERR_FORMAT || !strstr(rcc_last_error(), needle) ||
      !strstr(rcc_last_error(), "config.json"))
    fail_msg("config %s: got status %d \"%s\", wanted RCC_ERR_FORMAT naming \"%s\"", json, st,
             rcc_last_error(), needle);
}

/* Numbers a double holds but an int does not: refused before the conversion (which would
 * be undefined behaviour, reported by `make sanitize`). */
static void test_numbers_past_int(void **s) {
  expect_refused("{\"text_config\": {\"hidden_size\": 1e30}}", "text_config.hidden_size");
  expect_refused("{\"text_config\": {\"hidden_size\": -1e300}}", "text_config.hidden_size");
  expect_refused("{\"vision_config\": {\"num_hidden_layers\": 4294967296}}",
                 "vision_config.num_hidden_layers");
  expect_refused("{\"vision_config\": {\"image_size\": [1e20, 1e20]}}", "vision_config.image_size");
  expect_refused("{\"projection_dim\": 9.3e18}", "config.projection_dim");
  expect_refused("{\"text_config\": {\"eos_token_id\": 2147483648}}", "text_config.eos_token_id");
}

/* Ints past what any CLIP model has: the model's tensors are never sized from them. */
static void test_sizes_past_the_limits(void **s) {
  expect_refused("{\"text_config\": {\"vocab_size\": 2000000000}}", "vocab_size 2000000000");
  expect_refused("{\"text_config\": {\"max_position_embeddings\": 1000000}}",
                 "max_position_embeddings 1000000");
  expect_refused("{\"vision_config\": {\"hidden_size\": 1048576, \"num_attention_heads\": 1}}",
                 "hidden_size 1048576");
  expect_refused("{\"vision_config\": {\"intermediate_size\": 1073741824}}",
                 "intermediate_size 1073741824");
  expect_refused("{\"text_config\": {\"num_hidden_layers\": 100000}}", "num_hidden_layers 100000");
  expect_refused("{\"vision_config\": {\"image_size\": 100000}}", "image_size 100000");
  expect_refused("{\"vision_config\": {\"num_channels\": 100000}}", "num_channels 100000");
  expect_refused("{\"projection_dim\": 1000000000}", "projection_dim 1000000000");
}

/* A config file past 64 MiB (sparse, so the test writes almost nothing) is refused before
 * it is read into memory. */
static void test_file_too_large(void **s) {
  int fd = open(config_path(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(ftruncate(fd, (off_t)65 << 20), 0);
  close(fd);
  rcc_clip_config_t c;
  assert_int_equal(rcc_clip_config_load(config_path(), &c), RCC_ERR_FORMAT);
  assert_non_null(strstr(rcc_last_error(), "unreasonable size"));
  assert_non_null(strstr(rcc_last_error(), "config.json"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_numbers_past_int),
      cmocka_unit_test(test_sizes_past_the_limits),
      cmocka_unit_test(test_file_too_large),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
