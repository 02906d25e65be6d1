// Arithmetic of the batched parallel-order Jacobi eigensolver behind the
// Frechet trace-sqrt op ("jacobi" method). The CPU loop (csrc/cpu/frechet.cpp)
// and the CUDA kernel (csrc/cuda/frechet.cu) both call these functions, so the
// CPU tests exercise the very arithmetic the GPU runs; only the launch and the
// reductions differ.
//
// One sweep of the solver is m-1 rounds (m = d rounded up to even). A round
// rotates m/2 disjoint index pairs (p, q) at once (round-robin "circle"
// ordering, every pair exactly once per sweep): because the pairs are disjoint
// the rotations commute, their angles can all be computed from the matrix
// before the round, and A <- J^T A J splits into a row pass then a column pass.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <tuple>

namespace gandyn {
namespace frechet {

// Pair k (0 <= k < m/2) of round `round` (0 <= round < m-1), m even; p < q.
// Index m-1 stays fixed while the other m-1 indices rotate around a circle.
// A q >= d means the pair involves the padding index of an odd d: skip it.
C10_HOST_DEVICE inline void round_robin_pair(int m, int round, int k, int* p, int* q) {
  int a, b;
  if (k == 0) {
    a = m - 1;
    b = round;
  } else {
    a = (round + k) % (m - 1);
    b = (round - k + (m - 1)) % (m - 1);
  }
  *p = a < b ? a : b;
  *q = a < b ? b : a;
}

// Rotation J (J_pp = J_qq = c, J_pq = s, J_qp = -s) that zeroes entry (p, q)
// of J^T A J, from a_pp, a_qq, a_pq (Golub & Van Loan, Alg. 8.5.1): the smaller
// of the two angles, so |s| <= c and the iteration converges quadratically.
template <typename T>
C10_HOST_DEVICE inline void jacobi_rotation(T app, T aqq, T apq, T* c, T* s) {
  if (apq == T(0)) {
    *c = T(1);
    *s = T(0);
    return;
  }
  const T tau = (aqq - app) / (T(2) * apq);
  // For huge |tau| the square root overflows to inf and t becomes 0: no rotation.
  const T t = (tau >= T(0) ? T(1) : T(-1)) / (std::fabs(tau) + std::sqrt(T(1) + tau * tau));
  *c = T(1) / std::sqrt(T(1) + t * t);
  *s = t * *c;
}

// Rows (or columns) p and q of J^T A (or A J): x <- c x - s y, y <- s x + c y.
template <typename T>
C10_HOST_DEVICE inline void rotate_pair(T* x, T* y, T c, T s) {
  const T xv = *x;
  const T yv = *y;
  *x = c * xv - s * yv;
  *y = s * xv + c * yv;
}

}  // namespace frechet
}  // namespace gandyn

// Host-side steps of frechet_jacobi_eigh shared by the CPU and CUDA launchers
// (defined in csrc/cpu/frechet.cpp; the kernels in between are per device).

namespace gandyn {
namespace frechet {

// Checks A and returns a contiguous (batch, d, d) copy of its symmetric part,
// the working matrix the sweeps rotate in place.
at::Tensor jacobi_workspace(const at::Tensor& A, int64_t max_sweeps, double tol);
// Identity matrices (batch, d, d): V^T, which the sweeps rotate by rows.
at::Tensor jacobi_identity(const at::Tensor& work);
// (eigenvalues ascending (..., d), eigenvectors as columns (..., d, d) or empty
// (0,)) from the converged working matrix and V^T, in A's batch shape.
std::tuple<at::Tensor, at::Tensor> jacobi_finish(const at::Tensor& A, const at::Tensor& work,
                                                 const at::Tensor& vt, bool compute_vectors);

}  // namespace frechet
}  // namespace gandyn
