/* CPU kernels for everything but GEMM: LayerNorm, masked softmax, activations and the
 * element-wise helpers. Plain loops, OpenMP over rows (or elements) once the work is large
 * enough to pay for waking the thread team; reductions accumulate in double so that the
 * results are the float32 rounding of the exact value (PyTorch's float32 CPU kernels
 * accumulate in float with cascaded/Welford sums, which land within a few ulp of it). */
#include "backend/cpu/cpu_ops.h"

#include <math.h>

/* Below these many values a parallel region costs more than it saves (a few microseconds
 * to wake the team against ~1 ns per value for the cheap kernels). Transcendental-heavy
 * kernels (GELU, softmax) pay off earlier. */
#define PAR_MIN_CHEAP ((int64_t)1 << 16)
#define PAR_MIN_TRANSCENDENTAL ((int64_t)1 << 12)

/* out (N,C) = (inp - mean) / sqrt(var + eps) * w + b, per row. Two passes in double: the
 * mean first, then the variance of (x - mean), which avoids the cancellation of
 * E[x^2] - E[x]^2 when |mean| >> std. Biased variance (divide by C), as PyTorch. */
rcc_status_t rcc_cpu_layernorm(rcc_backend_t be, float *out, const float *inp, const float *w,
                               const float *b, int N, int C, float eps) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN_CHEAP)
  for (int i = 0; i < N; i++) {
    const float *x = inp + (size_t)i * C;
    float *y = out + (size_t)i * C; /* may equal x: each x[j] is read before y[j] is written */
    double sum = 0.0;
    for (int j = 0; j < C; j++)
      sum += x[j];
    double mean = sum / C;
    double sq = 0.0;
    for (int j = 0; j < C; j++) {
      double d = x[j] - mean;
      sq += d * d;
    }
    float rstd = (float)(1.0 / sqrt(sq / C + (double)eps));
    float meanf = (float)mean;
    for (int j = 0; j < C; j++)
      y[j] = (x[j] - meanf) * rstd * w[j] + b[j];
  }
  return RCC_OK;
}

/* One row of the masked softmax. `visible` columns (the causal limit) may be attended to,
 * and among those only the ones whose key is valid; everything else becomes 0. The max is
 * subtracted before expf so that no score overflows; a row with nothing to attend to
 * (every key masked) is all zeros instead of 0/0 = NaN. */
static void softmax_row(float *row, int L, float scale, int visible, const uint8_t *keys) {
  float mx = -INFINITY;
  for (int j = 0; j < visible; j++) {
    if (keys && !keys[j]) continue;
    row[j] *= scale;
    if (row[j] > mx) mx = row[j];
  }
  if (mx == -INFINITY) {
    for (int j = 0; j < L; j++)
      row[j] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int j = 0; j < visible; j++) {
    if (keys && !keys[j]) {
      row[j] = 0.0f;
      continue;
    }
    row[j] = expf(row[j] - mx);
    sum += row[j];
  }
  for (int j = visible; j < L; j++)
    row[j] = 0.0f;
  float inv = (float)(1.0 / sum); /* sum >= 1: the max itself contributes expf(0) */
  for (int j = 0; j < visible; j++)
    row[j] *= inv;
}

/* x (R,L): with causal_T > 0 row r is query t = r % causal_T of its block and sees keys
 * 0..t; with key_valid, row r uses the key row r / rows_per_key. */
rcc_status_t rcc_cpu_softmax(rcc_backend_t be, float *x, int R, int L, float scale, int causal_T,
                             const uint8_t *key_valid, int rows_per_key) {
#pragma omp parallel for schedule(static) if ((int64_t)R * L >= PAR_MIN_TRANSCENDENTAL)
  for (int r = 0; r < R; r++) {
    int visible = L;
    if (causal_T > 0 && r % causal_T + 1 < L) visible = r % causal_T + 1;
    const uint8_t *keys = key_valid ? key_valid + (size_t)(r / rows_per_key) * L : NULL;
    softmax_row(x + (size_t)r * L, L, scale, visible, keys);
  }
  return RCC_OK;
}

/* One loop per activation (the switch outside) so that each loop stays simple enough for
 * the compiler to vectorise. The formulas follow PyTorch's float32 ones term by term:
 * gelu = x/2 (1 + erf(x/sqrt2)); gelu_tanh = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)));
 * quick_gelu = x * sigmoid(1.702 x) with 1.702 x rounded to float first. */
rcc_status_t rcc_cpu_activation(rcc_backend_t be, rcc_activation_t act, float *x, int64_t n) {
  const float inv_sqrt2 = 0.70710678118654752f, sqrt_2_over_pi = 0.79788456080286536f;
  switch (act) {
  case RCC_ACT_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_TRANSCENDENTAL)
    for (int64_t i = 0; i < n; i++)
      x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * inv_sqrt2));
    break;
  case RCC_ACT_GELU_TANH:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_TRANSCENDENTAL)
    for (int64_t i = 0; i < n; i++) {
      float v = x[i];
      x[i] = 0.5f * v * (1.0f + tanhf(sqrt_2_over_pi * (v + 0.044715f * v * v * v)));
    }
    break;
  case RCC_ACT_QUICK_GELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_TRANSCENDENTAL)
    for (int64_t i = 0; i < n; i++) {
      float z = 1.702f * x[i];
      x[i] = x[i] * (1.0f / (1.0f + expf(-z)));
    }
    break;
  case RCC_ACT_RELU:
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_CHEAP)
    for (int64_t i = 0; i < n; i++)
      x[i] = x[i] < 0.0f ? 0.0f : x[i]; /* NaN stays NaN */
    break;
  }
  return RCC_OK;
}

/* x (N,C) += bias (C). */
rcc_status_t rcc_cpu_add_bias(rcc_backend_t be, float *x, const float *bias, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN_CHEAP)
  for (int i = 0; i < N; i++) {
    float *row = x + (size_t)i * C;
    for (int j = 0; j < C; j++)
      row[j] += bias[j];
  }
  return RCC_OK;
}

rcc_status_t rcc_cpu_add(rcc_backend_t be, float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_CHEAP)
  for (int64_t i = 0; i < n; i++)
    out[i] = a[i] + b[i];
  return RCC_OK;
}

rcc_status_t rcc_cpu_scale(rcc_backend_t be, float *x, float s, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= PAR_MIN_CHEAP)
  for (int64_t i = 0; i < n; i++)
    x[i] *= s;
  return RCC_OK;
}

/* Each row of x (N,C) divided by its L2 norm (summed in double); zero rows stay zero.
 * Division rather than multiplication by 1/norm, as `x / x.norm(dim=-1)` in HF CLIP. */
rcc_status_t rcc_cpu_l2_normalize_rows(rcc_backend_t be, float *x, int N, int C) {
#pragma omp parallel for schedule(static) if ((int64_t)N * C >= PAR_MIN_CHEAP)
  for (int i = 0; i < N; i++) {
    float *row = x + (size_t)i * C;
    double sq = 0.0;
    for (int j = 0; j < C; j++)
      sq += (double)row[j] * row[j];
    if (sq == 0.0) continue;
    float norm = (float)sqrt(sq);
    for (int j = 0; j < C; j++)
      row[j] /= norm;
  }
  return RCC_OK;
}
