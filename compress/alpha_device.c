/* alphaedit method closed_form (without null space) on a backend, the twin of
 * alpha_closed_form.c: the O(m n^2) product G = W_hat H and the three row dots per channel
 * run on the backend; the m scales are formed on the host by rcc_alpha_from_forms, so the
 * degenerate-row rule is the host's own code. */
#include <math.h>
#include <stdlib.h>

#include "compress/alpha.h"
#include "compress/device.h"

rcc_status_t rcc_alpha_closed_form_on(rcc_backend_t be, const float *W, const float *W_hat, int m,
                                      int n, const double *H, double lambda, float *alpha) {
  if (!be || !W || !W_hat || !H || !alpha)
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_device.c: be, W, W_hat, H or alpha is NULL");
  if (m < 1 || n < 1 || !(lambda >= 0.0) || !isfinite(lambda))
    return rcc_fail(RCC_ERR_ARG, "compress/alpha_device.c: %d x %d with lambda %g", m, n, lambda);
  const size_t mn = (size_t)m * n, nn = (size_t)n * n;
  rcc_dev_bufs_t bufs = {.be = be};
  float *dF = rcc_dev_alloc(&bufs, mn * sizeof *dF); /* staging for the float inputs */
  double *dV = rcc_dev_alloc(&bufs, mn * sizeof *dV);
  double *dW = rcc_dev_alloc(&bufs, mn * sizeof *dW);
  double *dH = rcc_dev_alloc(&bufs, nn * sizeof *dH);
  double *dG = rcc_dev_alloc(&bufs, mn * sizeof *dG); /* (m, n) = W_hat H: row i is H v_i */
  double *dforms = rcc_dev_alloc(&bufs, 3 * (size_t)m * sizeof *dforms);
  double *forms = malloc(3 * (size_t)m * sizeof *forms); /* num (m) | den (m) | v^T v (m) */
  rcc_status_t st = (dF && dV && dW && dH && dG && dforms) ? RCC_OK : RCC_ERR_NOMEM;
  if (st == RCC_OK && !forms)
    st = rcc_fail(RCC_ERR_NOMEM, "compress/alpha_device.c: %d quadratic forms", 3 * m);
  if (st == RCC_OK) st = rcc_backend_upload(be, dF, W_hat, mn * sizeof *W_hat);
  if (st == RCC_OK) st = rcc_backend_f32_to_f64(be, dV, dF, (int64_t)mn);
  if (st == RCC_OK) st = rcc_backend_upload(be, dF, W, mn * sizeof *W);
  if (st == RCC_OK) st = rcc_backend_f32_to_f64(be, dW, dF, (int64_t)mn);
  if (st == RCC_OK) st = rcc_backend_upload(be, dH, H, nn * sizeof *H);
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dV, n, dH, n, 0.0, dG, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms, dW, dG, m, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms + m, dV, dG, m, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms + 2 * (size_t)m, dV, dV, m, n);
  if (st == RCC_OK) st = rcc_backend_download(be, forms, dforms, 3 * (size_t)m * sizeof *forms);
  if (st == RCC_OK) {
    double hmax = 0.0;
    for (int c = 0; c < n; c++)
      if (H[(size_t)c * n + c] > hmax) hmax = H[(size_t)c * n + c];
    for (int i = 0; i < m; i++)
      alpha[i] = rcc_alpha_from_forms(forms[i], forms[m + i], lambda, forms[2 * m + i] * hmax);
  }
  free(forms);
  rcc_dev_release(&bufs);
  return st;
}
