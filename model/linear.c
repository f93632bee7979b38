/* Dense linear layer forward on any backend. */
#include "model/linear.h"

rcc_status_t rcc_linear_forward(rcc_backend_t be, const rcc_linear_t *lin, const float *x, int N,
                                float *y) {
  RCC_TRY(rcc_gemm(be, false, true, N, lin->out_features, lin->in_features, 1.0f, x,
                   lin->in_features, lin->weight, lin->in_features, 0.0f, y, lin->out_features));
  if (lin->bias) RCC_TRY(rcc_add_bias(be, y, lin->bias, N, lin->out_features));
  return RCC_OK;
}
