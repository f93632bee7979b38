/* The SVD kernels of svd_template.h in float: rcc_svd_exact_s, rcc_svd_randomized_s and
 * rcc_svd_truncated_s (the plain SVD method on float weights). */
#define RCC_REAL float
#define RCC_SVD(x) x##_s
#define RCC_GESDD LAPACKE_sgesdd
#define RCC_GEQRF LAPACKE_sgeqrf
#define RCC_ORGQR LAPACKE_sorgqr
#define RCC_GEMM cblas_sgemm
#include "compress/svd_template.h"
