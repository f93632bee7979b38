/* The SVD kernels of svd_template.h in double: rcc_svd_exact_d, rcc_svd_randomized_d and
 * rcc_svd_truncated_d (whitening, the residual fit, the subspace analysis). */
#define RCC_REAL double
#define RCC_SVD(x) x##_d
#define RCC_GESDD LAPACKE_dgesdd
#define RCC_GEQRF LAPACKE_dgeqrf
#define RCC_ORGQR LAPACKE_dorgqr
#define RCC_GEMM cblas_dgemm
#include "compress/svd_template.h"
