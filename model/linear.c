/* Linear layer forward on any backend: the sparse/dense term and the low-rank term. */
#include "model/linear.h"

rcc_status_t rcc_linear_forward(rcc_backend_t be, const rcc_linear_t *lin, const float *x, int N,
                                float *y, float *scratch) {
  const int O = lin->out_features, I = lin->in_features, r = lin->rank;
  float beta = 0.0f;
  if (lin->weight) {
    RCC_TRY(rcc_gemm(be, false, true, N, O, I, 1.0f, x, I, lin->weight, I, 0.0f, y, O));
    beta = 1.0f;
  }
  if (r > 0) {
    /* (x V^T) U^T: two thin GEMMs, O(N r (I + O)) instead of O(N I O). */
    RCC_TRY(rcc_gemm(be, false, true, N, r, I, 1.0f, x, I, lin->V, I, 0.0f, scratch, r));
    RCC_TRY(rcc_gemm(be, false, true, N, O, r, 1.0f, scratch, r, lin->U, r, beta, y, O));
  } else if (!lin->weight) {
    return rcc_fail(RCC_ERR_ARG, "%s: layer has neither weights nor a low-rank part", lin->name);
  }
  if (lin->bias) RCC_TRY(rcc_add_bias(be, y, lin->bias, N, O));
  return RCC_OK;
}
