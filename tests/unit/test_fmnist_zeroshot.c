/* The embedded default model: rcc-dist's zero-shot accuracy on all 10,000 Fashion-MNIST
 * test images agrees with Hugging Face's (models/clip-fmnist/hf_eval.json, written by
 * tools/hf_zeroshot.py) within 0.1 point, and reaches the 85% top-1 the model promises. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "eval/zeroshot.h"
#include "tests/harness.h"

static double json_number(const cJSON *o, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
  if (!cJSON_IsNumber(v)) fail_msg("hf_eval.json has no number '%s'", key);
  return v->valuedouble;
}

static void test_zeroshot_matches_hf(void **s) {
  (void)s;
  FILE *f = fopen(rcc_source_path("models/clip-fmnist/hf_eval.json"), "r");
  assert_non_null(f);
  static char text[1 << 20];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = '\0';
  cJSON *hf = cJSON_Parse(text);
  assert_non_null(hf);

  rcc_backend_t be;
  rcc_eval_ctx_t ctx;
  rcc_dataset_t *ds;
  assert_int_equal(rcc_backend_init(&be, "cpu"), RCC_OK);
  if (rcc_eval_ctx_open(&ctx, rcc_source_path("models/clip-fmnist"), be, 128) != RCC_OK ||
      rcc_dataset_open("fmnist:test", &ds) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  rcc_zeroshot_result_t r;
  if (rcc_zeroshot_evaluate(&ctx, NULL, ds, rcc_default_templates, rcc_default_template_count, 0,
                            &r) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  double hf_top1 = json_number(hf, "top1"), hf_top5 = json_number(hf, "top5");
  print_message("rcc-dist top-1 %.2f top-5 %.2f | HF top-1 %.2f top-5 %.2f (%d samples)\n", r.top1,
                r.top5, hf_top1, hf_top5, r.samples);
  assert_int_equal(r.samples, 10000);
  assert_int_equal((int)json_number(hf, "samples"), 10000);
  if (fabs(r.top1 - hf_top1) > 0.1 || fabs(r.top5 - hf_top5) > 0.1)
    fail_msg("zero-shot accuracy differs from HF by more than 0.1 point");
  assert_true(r.top1 >= 85.0);
  rcc_dataset_free(ds);
  rcc_eval_ctx_close(&ctx);
  rcc_backend_free(be);
  cJSON_Delete(hf);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_zeroshot_matches_hf)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
