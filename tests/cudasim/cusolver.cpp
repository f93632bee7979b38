/* cudasim's cuSOLVER dense API: the routines of include/cusolverDn.h, by the semantics of
 * NVIDIA's cuSOLVER documentation, computed on the CPU by LAPACKE (column-major).
 *
 * As on a GPU, each call validates its arguments (an invalid one returns
 * CUSOLVER_STATUS_INVALID_VALUE and queues nothing), checks that every buffer it will touch
 * lies inside one device allocation (A, S, U, VT, the workspace, rwork, devInfo: a wrong
 * leading dimension or a workspace smaller than lwork is reported by name), then queues the
 * factorization on the handle's stream. Numerical failure is reported the documented way:
 * through devInfo, a device int written by the queued work, which the caller must copy back
 * after waiting. The caller's workspace is scratch: cudasim fills it with NaN, so a caller
 * that keeps data there, or a workspace overlapping an output, shows. The bufferSize
 * functions return what LAPACK's workspace query asks for (gesvd: the largest over all
 * job combinations), and the routines insist on at least that much, as cuSOLVER may. */
#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <limits>
#include <mutex>
#include <set>
#include <vector>

#include "cudasim_internal.hpp"
#include <cusolverDn.h>

struct cudasim_cusolver_dn {
  cudaStream_t stream = nullptr; /* cuSOLVER's default: the legacy default stream */
};

namespace {

std::mutex registry_mutex;

std::set<cusolverDnHandle_t> &live_handles() {
  static std::set<cusolverDnHandle_t> handles;
  return handles;
}

/* NULL is CUSOLVER_STATUS_NOT_INITIALIZED; a pointer that is not a live handle (destroyed,
 * or never created) is undefined behaviour in cuSOLVER: report it. */
bool live(cusolverDnHandle_t h, const char *what) {
  if (!h) return false;
  std::lock_guard<std::mutex> lock(registry_mutex);
  if (!live_handles().count(h))
    cudasim::fatal("%s: %p is not a live cuSOLVER handle (destroyed, or never created)", what,
                   static_cast<void *>(h));
  return true;
}

std::size_t extent(int rows, int cols, int ld) {
  if (rows <= 0 || cols <= 0) return 0;
  return std::size_t(ld) * std::size_t(cols - 1) + std::size_t(rows);
}

void require(const char *fn, const char *arg, const void *p, std::size_t bytes) {
  char what[96];
  snprintf(what, sizeof what, "%s: %s", fn, arg);
  cudasim::require_device_range(p, bytes, what);
}

/* Scratch contents are undefined after a call: make them NaN. */
void poison(double *work, int lwork) {
  std::fill(work, work + std::max(lwork, 0), std::numeric_limits<double>::quiet_NaN());
}

int clamp_lwork(double doubles) {
  return doubles >= double(INT_MAX) ? INT_MAX : std::max(0, int(doubles));
}

/* jobu / jobvt: the four documented letters (LAPACK's meanings). */
bool valid_job(signed char job) { return job == 'A' || job == 'S' || job == 'O' || job == 'N'; }

/* The largest workspace LAPACK's dgesvd asks for at this size, over every job pair (the
 * bufferSize call does not know the jobs). Workspace queries touch no matrix. */
int gesvd_lwork(int m, int n) {
  static const char jobs[] = "ASON";
  double most = 1.0, dummy = 0.0;
  for (const char *ju = jobs; *ju; ju++)
    for (const char *jv = jobs; *jv; jv++) {
      if (*ju == 'O' && *jv == 'O') continue;
      double query = 0.0;
      const int info =
          LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, *ju, *jv, m, n, &dummy, std::max(1, m), &dummy,
                              &dummy, std::max(1, m), &dummy, std::max(1, n), &query, -1);
      if (info == 0) most = std::max(most, query);
    }
  return clamp_lwork(most);
}

/* potrf and potri need no LAPACK workspace; this is what cudasim asks callers for, so that
 * a caller that skips the bufferSize call, or allocates less than it said, shows. */
int potr_lwork(int n) { return clamp_lwork(64.0 * double(std::max(n, 0))); }

bool potr_args_valid(cublasFillMode_t uplo, int n, int lda) {
  return (uplo == CUBLAS_FILL_MODE_LOWER || uplo == CUBLAS_FILL_MODE_UPPER) && n >= 0 &&
         lda >= std::max(1, n);
}

cusolverStatus_t potr_buffer_size(const char *fn, cusolverDnHandle_t handle, cublasFillMode_t uplo,
                                  int n, int lda, int *lwork) {
  if (!live(handle, fn)) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!potr_args_valid(uplo, n, lda) || !lwork) return CUSOLVER_STATUS_INVALID_VALUE;
  *lwork = potr_lwork(n);
  return CUSOLVER_STATUS_SUCCESS;
}

/* potrf and potri: same arguments, same checks; `lapack` is LAPACKE_dpotrf_work or
 * LAPACKE_dpotri_work, whose info goes to devInfo as cuSOLVER documents it. */
cusolverStatus_t potr(const char *fn,
                      lapack_int (*lapack)(int, char, lapack_int, double *, lapack_int),
                      cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, double *A, int lda,
                      double *work, int lwork, int *devInfo) {
  if (!live(handle, fn)) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (!potr_args_valid(uplo, n, lda) || lwork < potr_lwork(n)) return CUSOLVER_STATUS_INVALID_VALUE;
  require(fn, "A", A, extent(n, n, lda) * sizeof(double));
  require(fn, "work (lwork doubles)", work, std::size_t(lwork) * sizeof(double));
  require(fn, "devInfo", devInfo, sizeof(int));
  const char u = uplo == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U';
  cudasim::enqueue(handle->stream, fn, [=] {
    poison(work, lwork);
    *devInfo = n == 0 ? 0 : int(lapack(LAPACK_COL_MAJOR, u, n, A, lda));
  });
  return CUSOLVER_STATUS_SUCCESS;
}

} // namespace

extern "C" {

cusolverStatus_t cusolverDnCreate(cusolverDnHandle_t *handle) {
  if (!handle) return CUSOLVER_STATUS_INVALID_VALUE;
  *handle = nullptr;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0)
    return CUSOLVER_STATUS_NOT_INITIALIZED; /* the CUDA runtime could not initialise */
  cusolverDnHandle_t h = new cudasim_cusolver_dn;
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().insert(h);
  *handle = h;
  return CUSOLVER_STATUS_SUCCESS;
}

/* Queued work holds copies of what it needs, so destroying the handle leaves it intact. */
cusolverStatus_t cusolverDnDestroy(cusolverDnHandle_t handle) {
  if (!live(handle, "cusolverDnDestroy")) return CUSOLVER_STATUS_NOT_INITIALIZED;
  std::lock_guard<std::mutex> lock(registry_mutex);
  live_handles().erase(handle);
  delete handle;
  return CUSOLVER_STATUS_SUCCESS;
}

/* A stream that does not exist is reported when work is queued on it. */
cusolverStatus_t cusolverDnSetStream(cusolverDnHandle_t handle, cudaStream_t streamId) {
  if (!live(handle, "cusolverDnSetStream")) return CUSOLVER_STATUS_NOT_INITIALIZED;
  handle->stream = streamId;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDgesvd_bufferSize(cusolverDnHandle_t handle, int m, int n, int *lwork) {
  if (!live(handle, "cusolverDnDgesvd_bufferSize")) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || !lwork) return CUSOLVER_STATUS_INVALID_VALUE;
  *lwork = gesvd_lwork(m, n);
  return CUSOLVER_STATUS_SUCCESS;
}

/* A = U diag(S) VT for m >= n only (the documented restriction of cuSOLVER's gesvd; LAPACK
 * itself takes any shape). The leading-dimension rules are LAPACK's, which say what U and VT
 * must hold for each job. rwork (min(m,n) - 1 doubles) may be NULL; when given, it receives
 * the unconverged superdiagonal if devInfo > 0. */
cusolverStatus_t cusolverDnDgesvd(cusolverDnHandle_t handle, signed char jobu, signed char jobvt,
                                  int m, int n, double *A, int lda, double *S, double *U, int ldu,
                                  double *VT, int ldvt, double *work, int lwork, double *rwork,
                                  int *devInfo) {
  static const char fn[] = "cusolverDnDgesvd";
  if (!live(handle, fn)) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const int mn = std::min(m, n);
  const bool u_out = jobu == 'A' || jobu == 'S', vt_all = jobvt == 'A', vt_some = jobvt == 'S';
  if (!valid_job(jobu) || !valid_job(jobvt) || (jobu == 'O' && jobvt == 'O') || m < 0 || n < 0 ||
      m < n || lda < std::max(1, m) || ldu < 1 || (u_out && ldu < m) || ldvt < 1 ||
      (vt_all && ldvt < n) || (vt_some && ldvt < mn))
    return CUSOLVER_STATUS_INVALID_VALUE;
  if (lwork < gesvd_lwork(m, n)) return CUSOLVER_STATUS_INVALID_VALUE;
  require(fn, "A", A, extent(m, n, lda) * sizeof(double));
  require(fn, "S", S, std::size_t(mn) * sizeof(double));
  if (u_out) require(fn, "U", U, extent(m, jobu == 'A' ? m : mn, ldu) * sizeof(double));
  if (vt_all || vt_some) require(fn, "VT", VT, extent(vt_all ? n : mn, n, ldvt) * sizeof(double));
  require(fn, "work (lwork doubles)", work, std::size_t(lwork) * sizeof(double));
  if (rwork) require(fn, "rwork", rwork, std::size_t(std::max(mn - 1, 0)) * sizeof(double));
  require(fn, "devInfo", devInfo, sizeof(int));
  const char ju = char(jobu), jv = char(jobvt);
  cudasim::enqueue(handle->stream, fn, [=] {
    poison(work, lwork);
    /* LAPACK's own workspace lives on the host: cuSOLVER's layout of `work` is its own. */
    double query = 0.0;
    LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, ju, jv, m, n, A, lda, S, U, ldu, VT, ldvt, &query, -1);
    std::vector<double> w(std::max<std::size_t>(1, std::size_t(query)));
    const int info = LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, ju, jv, m, n, A, lda, S, U, ldu, VT,
                                         ldvt, w.data(), lapack_int(w.size()));
    if (info > 0 && rwork && mn > 1) std::copy(w.begin() + 1, w.begin() + mn, rwork);
    *devInfo = info;
  });
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t cusolverDnDpotrf_bufferSize(cusolverDnHandle_t handle, cublasFillMode_t uplo,
                                             int n, double *A, int lda, int *Lwork) {
  (void)A; /* the size depends on n only */
  return potr_buffer_size("cusolverDnDpotrf_bufferSize", handle, uplo, n, lda, Lwork);
}

/* devInfo = i > 0: the leading minor of order i is not positive definite. */
cusolverStatus_t cusolverDnDpotrf(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n,
                                  double *A, int lda, double *Workspace, int Lwork, int *devInfo) {
  return potr("cusolverDnDpotrf", LAPACKE_dpotrf_work, handle, uplo, n, A, lda, Workspace, Lwork,
              devInfo);
}

cusolverStatus_t cusolverDnDpotri_bufferSize(cusolverDnHandle_t handle, cublasFillMode_t uplo,
                                             int n, double *A, int lda, int *lwork) {
  (void)A; /* the size depends on n only */
  return potr_buffer_size("cusolverDnDpotri_bufferSize", handle, uplo, n, lda, lwork);
}

/* The inverse from potrf's factor, written into the same triangle only; devInfo = i > 0:
 * the factor's (i,i) entry is 0. */
cusolverStatus_t cusolverDnDpotri(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n,
                                  double *A, int lda, double *work, int lwork, int *devInfo) {
  return potr("cusolverDnDpotri", LAPACKE_dpotri_work, handle, uplo, n, A, lda, work, lwork,
              devInfo);
}

} // extern "C"
