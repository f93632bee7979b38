/* The CLIP backward pass (model/clip_train.c) against PyTorch autograd: clip-tiny-a with 19
 * of its 26 linear layers compressed (masked S, S + U V, U V, with and without alpha),
 * loss = sum(image_embeds * R_image) + sum(text_embeds * R_text), gradients of every bias,
 * LayerNorm, alpha, U, V and S value computed in float64 by tools/make_grad_fixture.py
 * (tests/fixtures/clip-tiny-a.grad.safetensors). Also: pruned entries get exactly zero
 * gradient, gradients accumulate, written parameters drive the next forward (checked with a
 * directional derivative), export and tensor lookup return the trained values. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "model/clip_train.h"
#include "tests/harness.h"

/* Bounds: embeddings are a float32 forward of a float64 reference (~1e-6 expected);
 * gradients go through ~30 float32 ops backward (~1e-5 expected). */
#define EMB_TOL 1e-4
#define GRAD_TOL 1e-3

typedef struct {
  rcc_backend_t be;
  rcc_safetensors_t *ref;
  rcc_factored_t **layers;
  int n_layers;
  rcc_clip_train_t *t;
  int B_img, B_txt, T, P;
} state_t;

static const rcc_tensor_t *ref_tensor(state_t *s, const char *name) {
  const rcc_tensor_t *x = rcc_st_find(s->ref, name);
  if (!x) fail_msg("fixture has no tensor '%s'", name);
  return x;
}

/* ||a - b|| / ||b|| */
static double norm_error(const float *a, const float *b, int64_t n) {
  double num = 0.0, den = 0.0;
  for (int64_t i = 0; i < n; i++) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return sqrt(num) / (den > 0.0 ? sqrt(den) : 1.0);
}

static double l2(const float *a, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; i++)
    s += (double)a[i] * a[i];
  return sqrt(s);
}

static void *copy_part(state_t *s, int i, const char *part, size_t elem) {
  char name[64];
  snprintf(name, sizeof name, "layer.%d.%s", i, part);
  const rcc_tensor_t *x = rcc_st_find(s->ref, name);
  if (!x) return NULL;
  void *p = malloc((size_t)x->numel * elem);
  assert_non_null(p);
  memcpy(p, x->data, (size_t)x->numel * elem);
  return p;
}

/* The compressed forms of the fixture; NULL for the layers it leaves dense. */
static void load_layers(state_t *s, const rcc_clip_config_t *cfg) {
  s->n_layers = 6 * (cfg->vision.num_layers + cfg->text.num_layers) + 2;
  s->layers = calloc((size_t)s->n_layers, sizeof *s->layers);
  assert_non_null(s->layers);
  for (int i = 0; i < s->n_layers; i++) {
    rcc_factored_t f = {0};
    f.S = copy_part(s, i, "S", sizeof(float));
    f.mask = copy_part(s, i, "mask", 1);
    f.U = copy_part(s, i, "U", sizeof(float));
    f.V = copy_part(s, i, "V", sizeof(float));
    f.alpha = copy_part(s, i, "alpha", sizeof(float));
    if (!f.S && !f.U) continue;
    /* shapes: (m, rank) from U and (rank, n) from V, or (m, n) from S */
    char name[64];
    snprintf(name, sizeof name, "layer.%d.%s", i, f.U ? "U" : "S");
    const rcc_tensor_t *x = ref_tensor(s, name);
    f.m = (int)x->shape[0];
    f.n = (int)x->shape[1];
    if (f.U) {
      f.rank = f.n;
      snprintf(name, sizeof name, "layer.%d.V", i);
      f.n = (int)ref_tensor(s, name)->shape[1];
    }
    s->layers[i] = malloc(sizeof *s->layers[i]);
    assert_non_null(s->layers[i]);
    *s->layers[i] = f;
  }
}

static int setup(void **state) {
  state_t *s = calloc(1, sizeof *s);
  assert_non_null(s);
  assert_int_equal(rcc_backend_init(&s->be, "cpu"), RCC_OK);
  if (rcc_st_open(rcc_source_path("tests/fixtures/clip-tiny-a.grad.safetensors"), &s->ref) !=
      RCC_OK)
    fail_msg("%s", rcc_last_error());
  rcc_clip_config_t cfg;
  if (rcc_clip_config_load(rcc_source_path("tests/fixtures/clip-tiny-a/config.json"), &cfg) !=
      RCC_OK)
    fail_msg("%s", rcc_last_error());
  load_layers(s, &cfg);
  rcc_clip_trainable_t all = {true, true, true, true, true};
  if (rcc_clip_train_create(rcc_source_path("tests/fixtures/clip-tiny-a"), s->be, s->layers,
                            s->n_layers, all, &s->t) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  const rcc_tensor_t *ids = ref_tensor(s, "input_ids");
  s->B_img = (int)ref_tensor(s, "pixel_values")->shape[0];
  s->B_txt = (int)ids->shape[0];
  s->T = (int)ids->shape[1];
  s->P = cfg.projection_dim;
  *state = s;
  return 0;
}

static int teardown(void **state) {
  state_t *s = *state;
  rcc_clip_train_free(s->t);
  for (int i = 0; i < s->n_layers; i++)
    if (s->layers[i]) {
      free(s->layers[i]->S);
      free(s->layers[i]->mask);
      free(s->layers[i]->U);
      free(s->layers[i]->V);
      free(s->layers[i]->alpha);
      free(s->layers[i]);
    }
  free(s->layers);
  rcc_st_close(s->ref);
  rcc_backend_free(s->be);
  free(s);
  return 0;
}

/* Forward of both towers; returns the loss sum(emb * R) and leaves the embeddings in
 * img (B_img, P), txt (B_txt, P). */
static double forward(state_t *s, float *img, float *txt) {
  const rcc_tensor_t *px = ref_tensor(s, "pixel_values"), *ids = ref_tensor(s, "input_ids");
  assert_int_equal(ids->dtype, RCC_DTYPE_I32);
  if (rcc_clip_train_image_forward(s->t, px->data, s->B_img, img) != RCC_OK ||
      rcc_clip_train_text_forward(s->t, ids->data, s->B_txt, s->T, txt) != RCC_OK)
    fail_msg("%s", rcc_last_error());
  const float *Ri = ref_tensor(s, "R_image")->data, *Rt = ref_tensor(s, "R_text")->data;
  double loss = 0.0;
  for (int i = 0; i < s->B_img * s->P; i++)
    loss += (double)img[i] * Ri[i];
  for (int i = 0; i < s->B_txt * s->P; i++)
    loss += (double)txt[i] * Rt[i];
  return loss;
}

static void backward(state_t *s) {
  if (rcc_clip_train_image_backward(s->t, ref_tensor(s, "R_image")->data) != RCC_OK ||
      rcc_clip_train_text_backward(s->t, ref_tensor(s, "R_text")->data) != RCC_OK)
    fail_msg("%s", rcc_last_error());
}

static void test_gradients_match_pytorch(void **state) {
  state_t *s = *state;
  float img[64 * 64], txt[64 * 64];
  assert_true(s->B_img * s->P <= 64 * 64 && s->B_txt * s->P <= 64 * 64);
  rcc_clip_train_zero_grads(s->t);
  forward(s, img, txt);
  double e_img = norm_error(img, ref_tensor(s, "image_embeds")->data, (int64_t)s->B_img * s->P);
  double e_txt = norm_error(txt, ref_tensor(s, "text_embeds")->data, (int64_t)s->B_txt * s->P);
  printf("embeddings: image %.2e, text %.2e (bound %.0e)\n", e_img, e_txt, EMB_TOL);
  assert_true(e_img <= EMB_TOL && e_txt <= EMB_TOL);
  backward(s);

  const float *grads = rcc_clip_train_grads(s->t);
  int n_ref = 0;
  for (int i = 0; i < rcc_st_count(s->ref); i++)
    n_ref += strncmp(rcc_st_tensor(s->ref, i)->name, "grad.", 5) == 0;
  assert_int_equal(rcc_clip_train_num_groups(s->t), n_ref);
  double all = 0.0; /* ||whole reference gradient|| */
  for (int g = 0; g < rcc_clip_train_num_groups(s->t); g++) {
    char name[200];
    snprintf(name, sizeof name, "grad.%s", rcc_clip_train_group(s->t, g)->name);
    const rcc_tensor_t *ref = ref_tensor(s, name);
    const double n = l2(ref->data, ref->numel);
    all += n * n;
  }
  all = sqrt(all);
  double worst = 0.0;
  const char *worst_name = "";
  int64_t total = 0;
  int zero_groups = 0;
  for (int g = 0; g < rcc_clip_train_num_groups(s->t); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(s->t, g);
    char name[200];
    snprintf(name, sizeof name, "grad.%s", grp->name);
    const rcc_tensor_t *ref = ref_tensor(s, name);
    assert_int_equal(ref->numel, grp->count);
    assert_int_equal(grp->offset, total);
    total += grp->count;
    const double ref_norm = l2(ref->data, grp->count), norm = l2(grads + grp->offset, grp->count);
    if (ref_norm < 1e-9 * all) {
      /* k_proj's bias: softmax ignores a constant per query row, the gradient is exactly 0
       * (float64 roundoff in the reference); ours must be float32 roundoff of 0 */
      assert_non_null(strstr(grp->name, "k_proj.bias"));
      if (norm > 1e-6 * all)
        fail_msg("%s: gradient norm %.3e, expected 0 (<= %.3e)", grp->name, norm, 1e-6 * all);
      zero_groups++;
      continue;
    }
    double e = norm_error(grads + grp->offset, ref->data, grp->count);
    if (e > worst) {
      worst = e;
      worst_name = grp->name;
    }
    if (e > GRAD_TOL) fail_msg("%s: normalized gradient error %.3e > %.0e", grp->name, e, GRAD_TOL);
  }
  assert_int_equal(zero_groups, 4);
  assert_int_equal(total, rcc_clip_train_num_params(s->t));
  printf("%d gradient groups, %lld values: worst normalized error %.2e (%s), bound %.0e\n",
         rcc_clip_train_num_groups(s->t), (long long)total, worst, worst_name, GRAD_TOL);
  printf("activations kept: %zu bytes\n", rcc_clip_train_activation_bytes(s->t));
}

/* Every S group of a masked layer: gradient and value exactly 0 at every pruned entry. */
static void test_pruned_entries_get_zero_gradient(void **state) {
  state_t *s = *state;
  float img[64 * 64], txt[64 * 64];
  rcc_clip_train_zero_grads(s->t);
  forward(s, img, txt);
  backward(s);
  const float *grads = rcc_clip_train_grads(s->t), *params = rcc_clip_train_params(s->t);
  int masked = 0;
  for (int g = 0; g < rcc_clip_train_num_groups(s->t); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(s->t, g);
    if (grp->kind != RCC_PARAM_S || !s->layers[grp->layer]->mask) continue;
    const uint8_t *mask = s->layers[grp->layer]->mask;
    int64_t pruned = 0, nonzero_kept = 0;
    for (int64_t i = 0; i < grp->count; i++) {
      if (mask[i]) {
        nonzero_kept += grads[grp->offset + i] != 0.0f;
        continue;
      }
      pruned++;
      if (grads[grp->offset + i] != 0.0f || params[grp->offset + i] != 0.0f)
        fail_msg("%s: pruned entry %lld has gradient %g, value %g", grp->name, (long long)i,
                 grads[grp->offset + i], params[grp->offset + i]);
    }
    assert_true(pruned > 0 && nonzero_kept > 0);
    masked++;
  }
  assert_true(masked >= 10);
}

/* A second backward adds the same gradients again; zero_grads clears them. */
static void test_gradients_accumulate(void **state) {
  state_t *s = *state;
  float img[64 * 64], txt[64 * 64];
  const int64_t n = rcc_clip_train_num_params(s->t);
  float *once = malloc((size_t)n * sizeof *once), *twice = malloc((size_t)n * sizeof *twice);
  assert_non_null(once);
  assert_non_null(twice);
  rcc_clip_train_zero_grads(s->t);
  forward(s, img, txt);
  backward(s);
  memcpy(once, rcc_clip_train_grads(s->t), (size_t)n * sizeof *once);
  backward(s);
  for (int64_t i = 0; i < n; i++)
    twice[i] = 0.5f * rcc_clip_train_grads(s->t)[i];
  assert_allclose(twice, once, (size_t)n, 1e-7, 1e-6);
  rcc_clip_train_zero_grads(s->t);
  for (int64_t i = 0; i < n; i++)
    assert_true(rcc_clip_train_grads(s->t)[i] == 0.0f);
  free(once);
  free(twice);
}

/* Writing params moves the next forward: loss(p + h d) - loss(p - h d) = 2 h g.d along the
 * normalized gradient d, and restoring p gives back the same embeddings bit for bit. */
static void test_written_params_drive_forward(void **state) {
  state_t *s = *state;
  float img0[64 * 64], txt0[64 * 64], img[64 * 64], txt[64 * 64];
  const int64_t n = rcc_clip_train_num_params(s->t);
  float *p = rcc_clip_train_params(s->t), *saved = malloc((size_t)n * sizeof *saved);
  float *d = malloc((size_t)n * sizeof *d);
  assert_non_null(saved);
  assert_non_null(d);
  memcpy(saved, p, (size_t)n * sizeof *saved);
  rcc_clip_train_zero_grads(s->t);
  forward(s, img0, txt0);
  backward(s);
  double gnorm = 0.0;
  for (int64_t i = 0; i < n; i++)
    gnorm += (double)rcc_clip_train_grads(s->t)[i] * rcc_clip_train_grads(s->t)[i];
  gnorm = sqrt(gnorm);
  for (int64_t i = 0; i < n; i++)
    d[i] = (float)(rcc_clip_train_grads(s->t)[i] / gnorm);
  const double h = 1e-2;
  for (int64_t i = 0; i < n; i++)
    p[i] = saved[i] + (float)h * d[i];
  const double up = forward(s, img, txt);
  for (int64_t i = 0; i < n; i++)
    p[i] = saved[i] - (float)h * d[i];
  const double down = forward(s, img, txt);
  const double slope = (up - down) / (2 * h);
  printf("directional derivative: finite difference %.6g, gradient norm %.6g\n", slope, gnorm);
  assert_true(fabs(slope - gnorm) <= 1e-2 * gnorm);
  memcpy(p, saved, (size_t)n * sizeof *saved);
  forward(s, img, txt);
  assert_memory_equal(img, img0, (size_t)s->B_img * s->P * sizeof *img);
  assert_memory_equal(txt, txt0, (size_t)s->B_txt * s->P * sizeof *txt);
  free(saved);
  free(d);
}

/* export_layer and rcc_clip_train_tensor read the values in params. */
static void test_export_and_lookup(void **state) {
  state_t *s = *state;
  float *p = rcc_clip_train_params(s->t);
  for (int g = 0; g < rcc_clip_train_num_groups(s->t); g++) {
    const rcc_clip_param_group_t *grp = rcc_clip_train_group(s->t, g);
    int64_t count = 0;
    const float *v = rcc_clip_train_tensor(s->t, grp->name, &count);
    assert_ptr_equal(v, p + grp->offset);
    assert_int_equal(count, grp->count);
  }
  int64_t count = 0;
  assert_non_null(
      rcc_clip_train_tensor(s->t, "text_model.embeddings.token_embedding.weight", &count));
  assert_int_equal(count, (int64_t)rcc_clip_train_config(s->t)->text.vocab_size * 64);
  assert_null(rcc_clip_train_tensor(s->t, "no.such.tensor", &count));

  /* layer 2 (vision block 0 q_proj): dense S + U V with alpha */
  const int li = 2;
  const rcc_factored_t *src = s->layers[li];
  assert_non_null(src);
  rcc_factored_t f = *src;
  f.S = calloc((size_t)f.m * f.n, sizeof *f.S);
  f.U = calloc((size_t)f.m * f.rank, sizeof *f.U);
  f.V = calloc((size_t)f.rank * f.n, sizeof *f.V);
  f.alpha = NULL;
  f.mask = NULL;
  char name[200];
  snprintf(name, sizeof name, "vision_model.encoder.layers.0.self_attn.q_proj.alpha");
  float *alpha = (float *)rcc_clip_train_tensor(s->t, name, &count);
  assert_non_null(alpha);
  const float old = alpha[3];
  alpha[3] = 7.0f;
  if (rcc_clip_train_export_layer(s->t, li, &f) != RCC_OK) fail_msg("%s", rcc_last_error());
  alpha[3] = old;
  assert_non_null(f.alpha);
  assert_true(f.alpha[3] == 7.0f && f.alpha[0] == src->alpha[0]);
  assert_memory_equal(f.S, src->S, (size_t)f.m * f.n * sizeof *f.S);
  assert_memory_equal(f.U, src->U, (size_t)f.m * f.rank * sizeof *f.U);
  free(f.S);
  free(f.U);
  free(f.V);
  free(f.alpha);
  /* a dense layer has nothing to export */
  assert_null(s->layers[1]);
  assert_int_equal(rcc_clip_train_export_layer(s->t, 1, &f), RCC_ERR_ARG);
}

static void test_bad_arguments(void **state) {
  state_t *s = *state;
  rcc_clip_train_t *t = NULL;
  rcc_clip_trainable_t all = {true, true, true, true, true};
  assert_int_equal(rcc_clip_train_create(rcc_source_path("tests/fixtures/clip-tiny-a"), s->be,
                                         s->layers, s->n_layers - 1, all, &t),
                   RCC_ERR_ARG);
  assert_non_null(strstr(rcc_last_error(), "linear layers"));
  int32_t ids[2] = {0, 99999};
  float emb[64];
  assert_int_equal(rcc_clip_train_text_forward(s->t, ids, 1, 2, emb), RCC_ERR_ARG);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_gradients_match_pytorch),
      cmocka_unit_test(test_pruned_entries_get_zero_gradient),
      cmocka_unit_test(test_gradients_accumulate),
      cmocka_unit_test(test_written_params_drive_forward),
      cmocka_unit_test(test_export_and_lookup),
      cmocka_unit_test(test_bad_arguments),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
