/* compress/optim_adamw.c against PyTorch: tests/fixtures/optim/adamw.safetensors (written
 * by tools/make_optim_fixture.py) holds what torch.optim.AdamW with a decayed and an
 * undecayed parameter group, transformers' get_cosine_schedule_with_warmup and
 * torch.nn.utils.clip_grad_norm_ do over 6 steps; the C optimizer must reproduce the
 * learning rates, the gradient norms and the parameters after every step. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/optim.h"
#include "io/safetensors.h"
#include "tests/harness.h"

static const float *tensor(rcc_safetensors_t *st, const char *name, int64_t numel) {
  rcc_tensor_t *t = rcc_st_find(st, name);
  assert_non_null(t);
  assert_int_equal(t->numel, numel);
  return t->data;
}

static void test_matches_pytorch(void **state) {
  (void)state;
  rcc_safetensors_t *st = NULL;
  assert_int_equal(rcc_st_open(rcc_source_path("tests/fixtures/optim/adamw.safetensors"), &st),
                   RCC_OK);
  const int steps = atoi(rcc_st_metadata(st, "steps")), warmup = atoi(rcc_st_metadata(st, "warmup"));
  const int n_decay = atoi(rcc_st_metadata(st, "decayed"));
  const double lr = atof(rcc_st_metadata(st, "lr")), max_norm = atof(rcc_st_metadata(st, "max_norm"));
  const int64_t n = rcc_st_find(st, "params0")->numel;
  const float *p0 = tensor(st, "params0", n), *grads = tensor(st, "grads", steps * n);
  const float *lrs = tensor(st, "lr", steps), *norms = tensor(st, "grad_norm", steps);
  const float *expect = tensor(st, "params", steps * n);

  rcc_adamw_t opt;
  const rcc_adamw_config_t cfg = {0.9, 0.999, 1e-8, atof(rcc_st_metadata(st, "weight_decay"))};
  assert_int_equal(rcc_adamw_init(&opt, n, &cfg), RCC_OK);
  float *p = malloc((size_t)n * sizeof *p), *g = malloc((size_t)n * sizeof *g);
  uint8_t *decay = malloc((size_t)n);
  assert_non_null(p);
  assert_non_null(g);
  assert_non_null(decay);
  memcpy(p, p0, (size_t)n * sizeof *p);
  for (int64_t i = 0; i < n; i++)
    decay[i] = i < n_decay;
  int clipped = 0;
  for (int s = 0; s < steps; s++) {
    const double step_lr = rcc_lr_warmup_cosine(lr, s, warmup, steps);
    assert_true(fabs(step_lr - lrs[s]) <= 1e-7 * lr);
    memcpy(g, grads + (size_t)s * n, (size_t)n * sizeof *g);
    const double norm = rcc_clip_grad_norm(g, n, max_norm);
    assert_true(fabs(norm - norms[s]) <= 1e-5 * norms[s]);
    clipped += norm > max_norm;
    rcc_adamw_step(&opt, p, g, step_lr, decay);
    assert_allclose(p, expect + (size_t)s * n, (size_t)n, 1e-6, 1e-5);
  }
  /* the fixture exercises both sides of the clipping threshold */
  assert_true(clipped > 0 && clipped < steps);
  assert_int_equal(opt.step, steps);
  rcc_adamw_free(&opt);
  free(p);
  free(g);
  free(decay);
  rcc_st_close(st);
}

/* Without decay and with a constant gradient the first step moves each parameter by
 * exactly lr against the sign of its gradient (Adam's bias correction). */
static void test_first_step_is_lr_sign(void **state) {
  (void)state;
  rcc_adamw_t opt;
  const rcc_adamw_config_t cfg = {0.9, 0.999, 1e-8, 0.5};
  assert_int_equal(rcc_adamw_init(&opt, 3, &cfg), RCC_OK);
  float p[3] = {1.0f, -2.0f, 0.5f};
  const float g[3] = {0.3f, -7.0f, 1e-3f};
  const uint8_t decay[3] = {0, 0, 0};
  rcc_adamw_step(&opt, p, g, 0.01, decay);
  const float want[3] = {0.99f, -1.99f, 0.49f};
  assert_allclose(p, want, 3, 1e-5, 0.0);
  rcc_adamw_free(&opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_matches_pytorch),
      cmocka_unit_test(test_first_step_is_lr_sign),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
