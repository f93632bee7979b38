/* Subspace analysis between what the stages keep (DESIGN.md section 2, `dare_to_nullu` per
 * layer): principal angles and Grassmann distance between two subspaces of R^n, and the row
 * space a layer keeps of its input space. Bases are float32 (n, k) row-major: column j is
 * basis vector j. Arithmetic in double. */
#pragma once
#include "common/status.h"

/* Principal angles between span(A) and span(B), A (n, ka) and B (n, kb), 1 <= ka, kb <= n,
 * each of full column rank (not necessarily orthonormal: both are orthonormalised by
 * Householder QR first; a diagonal entry of R below n * FLT_EPSILON times the largest is
 * RCC_ERR_NUMERIC, dependent columns). angles (min(ka, kb)) ascending in [0, pi/2]: the
 * arccos of the singular values of Qa^T Qb, clamped to [0, 1]. Angles below about 1e-8
 * are resolved only to that level (arccos near 1). */
rcc_status_t rcc_principal_angles(const float *A, int n, int ka, const float *B, int kb,
                                  double *angles);

/* sqrt(sum of theta^2) over k angles: the geodesic distance on the Grassmannian. */
double rcc_grassmann_distance(const double *angles, int k);

/* The top-k right singular vectors of W (m, n) as an orthonormal (n, k) basis (exact SVD),
 * 1 <= k <= min(m, n): what the layer keeps of its input space. To compare a nullu factor
 * V (r, n), pass its transpose (n, r) as the other basis. */
rcc_status_t rcc_row_space_basis(const float *W, int m, int n, int k, float *basis);
