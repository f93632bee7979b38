/* The stored form of a compressed layer and its honest parameter count. */
#include "compress/factored.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *dup_floats(const float *src, size_t n) {
  float *p = malloc(n * sizeof *p);
  if (p) memcpy(p, src, n * sizeof *p);
  return p;
}

rcc_status_t rcc_factored_init_dense(rcc_factored_t *f, const float *W, int m, int n) {
  *f = (rcc_factored_t){.m = m, .n = n};
  f->S = dup_floats(W, (size_t)m * n);
  if (!f->S) return rcc_fail(RCC_ERR_NOMEM, "out of memory for a %dx%d layer", m, n);
  return RCC_OK;
}

void rcc_factored_free(rcc_factored_t *f) {
  free(f->S);
  free(f->mask);
  free(f->U);
  free(f->V);
  free(f->alpha);
  *f = (rcc_factored_t){.m = f->m, .n = f->n};
}

rcc_status_t rcc_factored_copy(rcc_factored_t *dst, const rcc_factored_t *src) {
  const size_t mn = (size_t)src->m * src->n;
  *dst = (rcc_factored_t){.m = src->m, .n = src->n, .rank = src->rank};
  int ok = 1;
  if (src->S) ok &= (dst->S = dup_floats(src->S, mn)) != NULL;
  if (src->mask && (dst->mask = malloc(mn)))
    memcpy(dst->mask, src->mask, mn);
  else if (src->mask)
    ok = 0;
  if (src->rank > 0) {
    ok &= (dst->U = dup_floats(src->U, (size_t)src->m * src->rank)) != NULL;
    ok &= (dst->V = dup_floats(src->V, (size_t)src->rank * src->n)) != NULL;
  }
  if (src->alpha) ok &= (dst->alpha = dup_floats(src->alpha, (size_t)src->m)) != NULL;
  if (!ok) {
    rcc_factored_free(dst);
    return rcc_fail(RCC_ERR_NOMEM, "out of memory copying a %dx%d layer", src->m, src->n);
  }
  return RCC_OK;
}

void rcc_factored_swap(rcc_factored_t *a, rcc_factored_t *b) {
  rcc_factored_t t = *a;
  *a = *b;
  *b = t;
}

int64_t rcc_factored_nnz(const rcc_factored_t *f) {
  if (!f->S) return 0;
  const int64_t mn = (int64_t)f->m * f->n;
  if (!f->mask) return mn;
  int64_t nnz = 0;
  for (int64_t i = 0; i < mn; i++)
    nnz += f->mask[i] != 0;
  return nnz;
}

int64_t rcc_factored_params(const rcc_factored_t *f) {
  return rcc_factored_nnz(f) + (int64_t)f->rank * (f->m + f->n) + (f->alpha ? f->m : 0);
}

void rcc_factored_dense(const rcc_factored_t *f, float *W) {
  const size_t mn = (size_t)f->m * f->n;
  if (f->S)
    memcpy(W, f->S, mn * sizeof *W);
  else
    memset(W, 0, mn * sizeof *W);
  if (f->rank > 0)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, f->m, f->n, f->rank, 1.0f, f->U, f->rank,
                f->V, f->n, 1.0f, W, f->n);
  if (f->alpha)
    for (int i = 0; i < f->m; i++)
      for (int j = 0; j < f->n; j++)
        W[(size_t)i * f->n + j] *= f->alpha[i];
}

rcc_status_t rcc_factored_folded(const rcc_factored_t *f, float **S_out, float **U_out) {
  *S_out = NULL;
  *U_out = NULL;
  if (f->S && !(*S_out = dup_floats(f->S, (size_t)f->m * f->n)))
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  if (f->rank > 0 && !(*U_out = dup_floats(f->U, (size_t)f->m * f->rank))) {
    free(*S_out);
    *S_out = NULL;
    return rcc_fail(RCC_ERR_NOMEM, "out of memory");
  }
  if (f->alpha)
    for (int i = 0; i < f->m; i++) {
      if (*S_out)
        for (int j = 0; j < f->n; j++)
          (*S_out)[(size_t)i * f->n + j] *= f->alpha[i];
      for (int k = 0; k < f->rank; k++)
        (*U_out)[(size_t)i * f->rank + k] *= f->alpha[i];
    }
  return RCC_OK;
}

double rcc_factored_rel_error(const rcc_factored_t *f, const float *W) {
  const size_t mn = (size_t)f->m * f->n;
  float *D = malloc(mn * sizeof *D);
  if (!D) return NAN;
  rcc_factored_dense(f, D);
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < mn; i++) {
    double d = (double)W[i] - D[i];
    num += d * d;
    den += (double)W[i] * W[i];
  }
  free(D);
  return den > 0.0 ? sqrt(num / den) : sqrt(num);
}
