/* OpenBLAS's thread count around the compression kernels. The CPU backend keeps OpenBLAS
 * serial because the forward pass parallelises with OpenMP and calls sgemm from inside its
 * parallel regions. The compression kernels instead spend their time in LAPACK and BLAS calls
 * made from serial code (gesdd, potrf, gemm), while the OpenMP threads sit idle: there
 * OpenBLAS may take the same number of threads. Widen, compute, restore. */
#pragma once

/* Sets OpenBLAS to omp_get_max_threads() threads unless called inside an OpenMP parallel
 * region (then nothing changes); returns the count to hand to rcc_blas_threads_restore. */
int rcc_blas_threads_widen(void);
void rcc_blas_threads_restore(int previous);
