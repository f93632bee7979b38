/* compress/distill_loss.c: the distillation loss and its gradient. The gradient with
 * respect to the student's image features and its per-template text features (through the
 * prompt ensemble) must match central finite differences of the loss itself; a student
 * equal to its teacher has loss 0 and gradient 0; KD alone at temperature T equals
 * T^2 KL(p_t || p_s) computed here independently in double; a rank with no images in its
 * share gets the class term alone. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compress/distill_loss.h"
#include "tests/harness.h"

enum { B = 3, C = 4, NT = 2, P = 5 };

static void fill(float *x, int n, unsigned *seed) {
  for (int i = 0; i < n; i++) {
    *seed = *seed * 1103515245u + 12345u;
    x[i] = (float)((*seed >> 8) & 0xffff) / 32768.0f - 1.0f;
  }
}

typedef struct {
  rcc_backend_t be;
  rcc_distill_loss_config_t cfg;
  float img_s[B * P], img_t[B * P], E[C * NT * P], K_t[C * P];
} problem_t;

/* loss(img_s, E) and, when d_img/dE are given, its gradient. */
static double eval(problem_t *p, float *d_img, float *dE) {
  float cache[2 * (C * NT * P + C * P) + C * NT + C], K[C * P], d_img_buf[B * P], dK[C * P];
  assert_true(rcc_distill_classes_cache_floats(C, NT, P) == sizeof cache / sizeof cache[0]);
  assert_int_equal(rcc_distill_classes_forward(p->be, p->E, C, NT, P, cache, K), RCC_OK);
  double loss;
  assert_int_equal(rcc_distill_loss(p->be, &p->cfg, p->img_s, p->img_t, B, 1.0 / B, K, p->K_t, C,
                                    0.5, P, &loss, d_img ? d_img : d_img_buf, dK),
                   RCC_OK);
  if (dE) assert_int_equal(rcc_distill_classes_backward(p->be, dK, cache, K, C, NT, P, dE), RCC_OK);
  return loss;
}

static void check_gradient(problem_t *p) {
  float d_img[B * P], dE[C * NT * P];
  eval(p, d_img, dE);
  const float h = 1e-2f;
  double err = 0.0, ref = 0.0;
  float *vars[2] = {p->img_s, p->E};
  const float *grads[2] = {d_img, dE};
  const int counts[2] = {B * P, C * NT * P};
  for (int v = 0; v < 2; v++)
    for (int i = 0; i < counts[v]; i++) {
      const float keep = vars[v][i];
      vars[v][i] = keep + h;
      const double up = eval(p, NULL, NULL);
      vars[v][i] = keep - h;
      const double down = eval(p, NULL, NULL);
      vars[v][i] = keep;
      const double fd = (up - down) / (2.0 * h);
      err += (fd - grads[v][i]) * (fd - grads[v][i]);
      ref += fd * fd;
    }
  assert_true(ref > 0.0);
  /* float32 forward, h = 1e-2: second-order FD error and rounding stay well under 1e-2 */
  assert_true(sqrt(err / ref) < 1e-2);
}

static void setup(problem_t *p, rcc_embedding_loss_t emb, double kd_weight, unsigned seed) {
  memset(p, 0, sizeof *p);
  assert_int_equal(rcc_backend_init(&p->be, "cpu"), RCC_OK);
  p->cfg = (rcc_distill_loss_config_t){kd_weight, 2.0, emb, 10.0f};
  fill(p->img_s, B * P, &seed);
  fill(p->img_t, B * P, &seed);
  fill(p->E, C * NT * P, &seed);
  float Et[C * NT * P], cache[2 * (C * NT * P + C * P) + C * NT + C];
  fill(Et, C * NT * P, &seed);
  assert_int_equal(rcc_distill_classes_forward(p->be, Et, C, NT, P, cache, p->K_t), RCC_OK);
}

static void test_gradient_cosine(void **state) {
  (void)state;
  problem_t p;
  setup(&p, RCC_EMBEDDING_LOSS_COSINE, 0.3, 1);
  check_gradient(&p);
  rcc_backend_free(p.be);
}

static void test_gradient_mse(void **state) {
  (void)state;
  problem_t p;
  setup(&p, RCC_EMBEDDING_LOSS_MSE, 0.7, 2);
  check_gradient(&p);
  rcc_backend_free(p.be);
}

static void test_student_equal_to_teacher(void **state) {
  (void)state;
  problem_t p;
  setup(&p, RCC_EMBEDDING_LOSS_COSINE, 0.5, 3);
  float cache[2 * (C * NT * P + C * P) + C * NT + C];
  memcpy(p.img_t, p.img_s, sizeof p.img_s);
  assert_int_equal(rcc_distill_classes_forward(p.be, p.E, C, NT, P, cache, p.K_t), RCC_OK);
  float d_img[B * P], dE[C * NT * P];
  assert_true(fabs(eval(&p, d_img, dE)) < 1e-6);
  for (int i = 0; i < B * P; i++)
    assert_true(fabsf(d_img[i]) < 1e-5f);
  for (int i = 0; i < C * NT * P; i++)
    assert_true(fabsf(dE[i]) < 1e-5f);
  rcc_backend_free(p.be);
}

static void test_kd_value(void **state) {
  (void)state;
  problem_t p;
  setup(&p, RCC_EMBEDDING_LOSS_COSINE, 1.0, 4);
  float cache[2 * (C * NT * P + C * P) + C * NT + C], K[C * P];
  assert_int_equal(rcc_distill_classes_forward(p.be, p.E, C, NT, P, cache, K), RCC_OK);
  const double T = p.cfg.temperature, scale = p.cfg.logit_scale;
  double want = 0.0;
  for (int i = 0; i < B; i++) {
    double ls[C], lt[C], ns = 0.0, nt = 0.0, zs = 0.0, zt = 0.0;
    for (int j = 0; j < P; j++) {
      ns += (double)p.img_s[i * P + j] * p.img_s[i * P + j];
      nt += (double)p.img_t[i * P + j] * p.img_t[i * P + j];
    }
    for (int c = 0; c < C; c++) {
      ls[c] = lt[c] = 0.0;
      for (int j = 0; j < P; j++) {
        ls[c] += p.img_s[i * P + j] / sqrt(ns) * K[c * P + j];
        lt[c] += p.img_t[i * P + j] / sqrt(nt) * p.K_t[c * P + j];
      }
      zs += exp(scale * ls[c] / T);
      zt += exp(scale * lt[c] / T);
    }
    for (int c = 0; c < C; c++) {
      const double ps = exp(scale * ls[c] / T) / zs, pt = exp(scale * lt[c] / T) / zt;
      want += T * T * pt * log(pt / ps) / B;
    }
  }
  const double got = eval(&p, NULL, NULL);
  assert_true(fabs(got - want) <= 1e-5 * fabs(want) + 1e-7);
  rcc_backend_free(p.be);
}

/* No images: the loss and d_K are the class term's, 1 - cos per class, weighted. */
static void test_empty_share(void **state) {
  (void)state;
  problem_t p;
  setup(&p, RCC_EMBEDDING_LOSS_MSE, 0.25, 5);
  float cache[2 * (C * NT * P + C * P) + C * NT + C], K[C * P], dK[C * P];
  assert_int_equal(rcc_distill_classes_forward(p.be, p.E, C, NT, P, cache, K), RCC_OK);
  double loss = -1.0, want = 0.0;
  assert_int_equal(
      rcc_distill_loss(p.be, &p.cfg, NULL, NULL, 0, 1.0 / 8, K, p.K_t, C, 0.5, P, &loss, NULL, dK),
      RCC_OK);
  for (int c = 0; c < C; c++) {
    double cos = 0.0;
    for (int j = 0; j < P; j++)
      cos += (double)K[c * P + j] * p.K_t[c * P + j];
    want += 0.75 * 0.5 * (1.0 - cos) / C;
    for (int j = 0; j < P; j++)
      assert_true(fabs(dK[c * P + j] + 0.75 * 0.5 / C * p.K_t[c * P + j]) < 1e-7);
  }
  assert_true(want > 0.0 && fabs(loss - want) <= 1e-12 * want);
  rcc_backend_free(p.be);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradient_cosine),
      cmocka_unit_test(test_gradient_mse),
      cmocka_unit_test(test_student_equal_to_teacher),
      cmocka_unit_test(test_kd_value),
      cmocka_unit_test(test_empty_share),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
