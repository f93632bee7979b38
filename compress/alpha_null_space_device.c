/* alphaedit with null_space: true on a backend, the twin of rcc_null_space_projector
 * followed by rcc_alpha_closed_form_null_space (alpha_null_space.c): the projector P stays
 * on the backend between the two. The backend has no symmetric eigensolver, but K = H is
 * positive semidefinite, so its SVD is its eigen-decomposition (singular values are the
 * eigenvalues, the rows of Vt the eigenvectors) except for the tiny negative eigenvalues
 * that rounding gives a PSD matrix: their absolute values, O(eps max), stay below the
 * host's zero threshold n eps max, so the kept set is the host's. The rank rule runs on
 * the host on the n singular values, in the host's order of sums. */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "compress/alpha.h"
#include "compress/device.h"

static const char *const WHERE = "compress/alpha_null_space_device.c";

/* How many of the descending S (n) the host keeps: those above n eps max that reach
 * keep_energy of their sum, the sum taken over ascending values as the host's is. */
static int kept_count(const double *S, int n, double keep_energy) {
  const double tol = (double)n * DBL_EPSILON * (S[0] > 0.0 ? S[0] : 0.0);
  double total = 0.0;
  for (int j = n - 1; j >= 0; j--)
    if (S[j] > tol) total += S[j];
  int kept = 0;
  double sum = 0.0;
  for (int j = 0; j < n && S[j] > tol && sum < keep_energy * total; j++) {
    sum += S[j];
    kept++;
  }
  return kept;
}

/* dP (n, n) on the backend: I - Z^T Z, Z the kept eigenvectors of H as rows. */
static rcc_status_t projector_on(rcc_backend_t be, const double *H, int n, double keep_energy,
                                 double *dP, int *null_dim) {
  const size_t nn = (size_t)n * n;
  rcc_dev_bufs_t bufs = {.be = be};
  double *dK = rcc_dev_alloc(&bufs, nn * sizeof *dK); /* destroyed by the SVD */
  double *dU = rcc_dev_alloc(&bufs, nn * sizeof *dU);
  double *dS = rcc_dev_alloc(&bufs, (size_t)n * sizeof *dS);
  double *dVt = rcc_dev_alloc(&bufs, nn * sizeof *dVt);
  double *h = malloc((nn + (size_t)n) * sizeof *h); /* I (n, n) | S (n) */
  rcc_status_t st = (dK && dU && dS && dVt) ? RCC_OK : RCC_ERR_NOMEM;
  if (st == RCC_OK && !h) st = rcc_fail(RCC_ERR_NOMEM, "%s: projector of size %d", WHERE, n);
  if (st == RCC_OK) st = rcc_backend_upload(be, dK, H, nn * sizeof *H);
  if (st == RCC_OK) st = rcc_backend_svd_f64(be, n, n, dK, dU, dS, dVt);
  if (st == RCC_OK) st = rcc_backend_download(be, h + nn, dS, (size_t)n * sizeof *h);
  int kept = 0;
  if (st == RCC_OK) {
    kept = kept_count(h + nn, n, keep_energy);
    for (size_t i = 0; i < nn; i++)
      h[i] = 0.0;
    for (int i = 0; i < n; i++)
      h[(size_t)i * n + i] = 1.0;
    st = rcc_backend_upload(be, dP, h, nn * sizeof *h);
  }
  if (st == RCC_OK && kept > 0)
    st = rcc_backend_gemm_f64(be, true, false, n, n, kept, -1.0, dVt, n, dVt, n, 1.0, dP, n);
  if (st == RCC_OK) *null_dim = n - kept;
  free(h);
  rcc_dev_release(&bufs);
  return st;
}

rcc_status_t rcc_alpha_null_space_on(rcc_backend_t be, const float *W, const float *W_hat, int m,
                                     int n, const double *H, double keep_energy, double lambda,
                                     float *alpha, int *null_dim) {
  if (!be || !W || !W_hat || !H || !alpha || !null_dim)
    return rcc_fail(RCC_ERR_ARG, "%s: be, W, W_hat, H, alpha or null_dim is NULL", WHERE);
  if (m < 1 || n < 1 || !(lambda >= 0.0) || !isfinite(lambda) ||
      !(keep_energy > 0.0 && keep_energy <= 1.0))
    return rcc_fail(RCC_ERR_ARG, "%s: %d x %d with lambda %g and keep_energy %g (in (0, 1])", WHERE,
                    m, n, lambda, keep_energy);
  const size_t mn = (size_t)m * n, nn = (size_t)n * n;
  rcc_dev_bufs_t bufs = {.be = be};
  float *dF = rcc_dev_alloc(&bufs, mn * sizeof *dF);    /* staging for the float inputs */
  double *dV = rcc_dev_alloc(&bufs, mn * sizeof *dV);   /* W_hat */
  double *dVq = rcc_dev_alloc(&bufs, mn * sizeof *dVq); /* W_hat - W_hat P: preserved part */
  double *dW = rcc_dev_alloc(&bufs, mn * sizeof *dW);   /* W, then (W_hat P) H */
  double *dC = rcc_dev_alloc(&bufs, mn * sizeof *dC);   /* W_hat P, then dVq H */
  double *dG = rcc_dev_alloc(&bufs, mn * sizeof *dG);   /* W P: free part of w */
  double *dH = rcc_dev_alloc(&bufs, nn * sizeof *dH);
  double *dP = rcc_dev_alloc(&bufs, nn * sizeof *dP);
  double *dforms = rcc_dev_alloc(&bufs, 4 * (size_t)m * sizeof *dforms);
  double *forms = malloc(4 * (size_t)m * sizeof *forms); /* num | den | f | v^T v, (m) each */
  rcc_status_t st =
      (dF && dV && dVq && dW && dC && dG && dH && dP && dforms) ? RCC_OK : RCC_ERR_NOMEM;
  if (st == RCC_OK && !forms) st = rcc_fail(RCC_ERR_NOMEM, "%s: %d quadratic forms", WHERE, 4 * m);
  if (st == RCC_OK) st = projector_on(be, H, n, keep_energy, dP, null_dim);
  if (st == RCC_OK) st = rcc_backend_upload(be, dH, H, nn * sizeof *H);
  if (st == RCC_OK) st = rcc_backend_upload(be, dF, W_hat, mn * sizeof *W_hat);
  if (st == RCC_OK) st = rcc_backend_f32_to_f64(be, dV, dF, (int64_t)mn);
  if (st == RCC_OK) st = rcc_backend_f32_to_f64(be, dVq, dF, (int64_t)mn);
  if (st == RCC_OK) st = rcc_backend_upload(be, dF, W, mn * sizeof *W);
  if (st == RCC_OK) st = rcc_backend_f32_to_f64(be, dW, dF, (int64_t)mn);
  /* P is symmetric, so row i of X P is P x_i. The preserved part is formed as
   * W_hat - (W_hat P) in one GEMM with beta = 1 (the host subtracts its C = W_hat P):
   * a second product instead of a subtraction op the backend does not have. */
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dV, n, dP, n, 0.0, dC, n);
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, -1.0, dV, n, dP, n, 1.0, dVq, n);
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dW, n, dP, n, 0.0, dG, n);
  /* Free part: num = (P w)^T H (P v), den = (P v)^T H (P v). */
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dC, n, dH, n, 0.0, dW, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms, dG, dW, m, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms + m, dC, dW, m, n);
  /* Preserved part, target W_hat itself: f = (Q v)^T H (Q v) joins both. */
  if (st == RCC_OK)
    st = rcc_backend_gemm_f64(be, false, false, m, n, n, 1.0, dVq, n, dH, n, 0.0, dC, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms + 2 * (size_t)m, dVq, dC, m, n);
  if (st == RCC_OK) st = rcc_backend_row_dots_f64(be, dforms + 3 * (size_t)m, dV, dV, m, n);
  if (st == RCC_OK) st = rcc_backend_download(be, forms, dforms, 4 * (size_t)m * sizeof *forms);
  if (st == RCC_OK) {
    double hmax = 0.0;
    for (int c = 0; c < n; c++)
      if (H[(size_t)c * n + c] > hmax) hmax = H[(size_t)c * n + c];
    for (int i = 0; i < m; i++) {
      const double f = forms[2 * (size_t)m + i];
      alpha[i] = rcc_alpha_from_forms(forms[i] + f, forms[m + i] + f, lambda,
                                      forms[3 * (size_t)m + i] * hmax);
    }
  }
  free(forms);
  rcc_dev_release(&bufs);
  return st;
}
