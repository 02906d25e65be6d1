// gandyn::frechet_jacobi_eigh (CPU kernel: batched parallel-order cyclic Jacobi,
// the rotation arithmetic of csrc/frechet.h) and gandyn::frechet_trace_sqrt
// (device-generic composite of ATen ops, registered for CompositeExplicitAutograd
// so CPU and CUDA share it; its autograd formula is in gandyn/ops/frechet.py).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/DispatchKey.h>
#include <torch/library.h>

#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "frechet.h"

namespace gandyn {
namespace frechet {

at::Tensor jacobi_workspace(const at::Tensor& A, int64_t max_sweeps, double tol) {
  TORCH_CHECK(A.dim() >= 2 && A.size(-1) == A.size(-2),
              "frechet_jacobi_eigh: A must be a batch of square matrices (..., d, d), got shape ", A.sizes());
  TORCH_CHECK(A.scalar_type() == at::kFloat || A.scalar_type() == at::kDouble,
              "frechet_jacobi_eigh: A must be float32 or float64, got ", A.scalar_type());
  TORCH_CHECK(A.size(-1) <= 8192, "frechet_jacobi_eigh: d must be at most 8192, got ", A.size(-1));
  TORCH_CHECK(max_sweeps >= 1, "frechet_jacobi_eigh: max_sweeps must be >= 1, got ", max_sweeps);
  TORCH_CHECK(tol >= 0, "frechet_jacobi_eigh: tol must be >= 0, got ", tol);
  const int64_t d = A.size(-1);
  // The eigenproblem of the symmetric part: defined for any square input, and
  // what the sweeps need (they read both triangles).
  return ((A + A.mT()) * 0.5).reshape({-1, d, d}).contiguous();
}

at::Tensor jacobi_identity(const at::Tensor& work) {
  const int64_t d = work.size(-1);
  return at::eye(d, work.options()).expand({work.size(0), d, d}).contiguous();
}

std::tuple<at::Tensor, at::Tensor> jacobi_finish(const at::Tensor& A, const at::Tensor& work,
                                                 const at::Tensor& vt, bool compute_vectors) {
  const int64_t d = A.size(-1);
  auto [values, order] = at::sort(work.diagonal(0, -2, -1), -1);
  std::vector<int64_t> vshape(A.sizes().begin(), A.sizes().end() - 1);
  values = values.reshape(vshape);
  if (!compute_vectors) return {values, at::empty({0}, A.options())};
  // Columns of V = rows of V^T, put in the order of the sorted eigenvalues.
  at::Tensor vectors = vt.mT().gather(-1, order.unsqueeze(-2).expand({work.size(0), d, d}));
  return {values, vectors.reshape(A.sizes()).contiguous()};
}

namespace {

// Sweeps over one matrix a (d x d, row-major) and V^T (vt, or nullptr): the
// round structure of the CUDA kernel, run serially.
template <typename T>
void jacobi_one(T* a, T* vt, int64_t d, int64_t max_sweeps, T tol) {
  if (d < 2) return;
  const int m = static_cast<int>(d + (d & 1));
  const int half = m / 2;
  std::vector<int> ps(half), qs(half);
  std::vector<T> cs(half), ss(half);
  T norm2 = 0;
  for (int64_t i = 0; i < d * d; ++i) norm2 += a[i] * a[i];
  const T threshold = tol * tol * norm2;
  for (int64_t sweep = 0; sweep < max_sweeps; ++sweep) {
    T off = 0;
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j)
        if (i != j) off += a[i * d + j] * a[i * d + j];
    if (off <= threshold) break;
    for (int round = 0; round < m - 1; ++round) {
      int n = 0;  // live pairs of this round (those without the padding index)
      for (int k = 0; k < half; ++k) {
        int p, q;
        round_robin_pair(m, round, k, &p, &q);
        if (q >= d) continue;
        ps[n] = p;
        qs[n] = q;
        jacobi_rotation<T>(a[p * d + p], a[q * d + q], a[p * d + q], &cs[n], &ss[n]);
        ++n;
      }
      // A <- J^T A (rows), V^T <- J^T V^T (rows), then A <- A J (columns).
      for (int k = 0; k < n; ++k) {
        T* rp = a + ps[k] * d;
        T* rq = a + qs[k] * d;
        for (int64_t j = 0; j < d; ++j) rotate_pair(rp + j, rq + j, cs[k], ss[k]);
        if (vt != nullptr) {
          T* vp = vt + ps[k] * d;
          T* vq = vt + qs[k] * d;
          for (int64_t j = 0; j < d; ++j) rotate_pair(vp + j, vq + j, cs[k], ss[k]);
        }
      }
      for (int64_t i = 0; i < d; ++i) {
        T* row = a + i * d;
        for (int k = 0; k < n; ++k) rotate_pair(row + ps[k], row + qs[k], cs[k], ss[k]);
      }
      // Exactly zero what the rotation annihilates, instead of rounding residue.
      for (int k = 0; k < n; ++k) a[ps[k] * d + qs[k]] = a[qs[k] * d + ps[k]] = T(0);
    }
  }
}

std::tuple<at::Tensor, at::Tensor> frechet_jacobi_eigh_cpu(const at::Tensor& A, int64_t max_sweeps, double tol,
                                                           bool compute_vectors) {
  at::Tensor work = jacobi_workspace(A, max_sweeps, tol);
  at::Tensor vt = compute_vectors ? jacobi_identity(work) : at::Tensor();
  const int64_t batch = work.size(0);
  const int64_t d = work.size(-1);
  AT_DISPATCH_FLOATING_TYPES(work.scalar_type(), "frechet_jacobi_eigh_cpu", [&] {
    scalar_t* a = work.mutable_data_ptr<scalar_t>();
    scalar_t* v = compute_vectors ? vt.mutable_data_ptr<scalar_t>() : nullptr;
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        jacobi_one<scalar_t>(a + b * d * d, v == nullptr ? nullptr : v + b * d * d, d, max_sweeps,
                             static_cast<scalar_t>(tol));
    });
  });
  return jacobi_finish(A, work, vt, compute_vectors);
}

// ---- frechet_trace_sqrt: device-generic composite ----

at::Tensor sym(const at::Tensor& x) { return (x + x.mT()) * 0.5; }

// V diag(f) V^T for eigenvectors V (columns) and a function f of the eigenvalues.
at::Tensor from_eigen(const at::Tensor& vectors, const at::Tensor& f) {
  return at::matmul(vectors * f.unsqueeze(-2), vectors.mT());
}

// Symmetric eigendecomposition by the chosen method (vectors empty when not asked).
std::tuple<at::Tensor, at::Tensor> eigen(const at::Tensor& a, const std::string& method, int64_t max_iter,
                                         bool vectors) {
  if (method == "eigh") {
    if (vectors) return at::linalg_eigh(a);
    return {at::linalg_eigvalsh(a), at::empty({0}, a.options())};
  }
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("gandyn::frechet_jacobi_eigh", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t, double, bool)>();
  const double eps = a.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon()
                                                    : static_cast<double>(std::numeric_limits<float>::epsilon());
  return op.call(a, max_iter, eps * static_cast<double>(a.size(-1)), vectors);
}

// Eigenvalues at or below this are treated as zero (rank, pseudo-inverses).
at::Tensor zero_cutoff(const at::Tensor& values) {
  const double eps = values.scalar_type() == at::kDouble
                         ? std::numeric_limits<double>::epsilon()
                         : static_cast<double>(std::numeric_limits<float>::epsilon());
  return values.abs().amax(-1, /*keepdim=*/true) * (eps * static_cast<double>(values.size(-1)));
}

// sqrt(v) on eigenvalues above the cutoff, 0 elsewhere: eigenvalues of rounding size
// (the null space of a rank-deficient covariance) would otherwise each add
// sqrt(eps * |A|) to a trace, an error far above the rounding of everything else.
at::Tensor truncated_sqrt(const at::Tensor& values) {
  return at::where(values > zero_cutoff(values), values, at::zeros_like(values)).sqrt();
}

// 1/sqrt(v) on eigenvalues above the cutoff, 0 elsewhere (pseudo-inverse square root).
at::Tensor pinv_sqrt(const at::Tensor& root) {
  return at::where(root > 0, root.reciprocal(), at::zeros_like(root));
}

// Cholesky factor of a symmetric positive-definite a, or a ValueError naming `what`.
// (Solves go through Cholesky: SPD systems, and batched LU solves misbehave with some
// MKL builds.)
at::Tensor cholesky_or_throw(const at::Tensor& a, const char* what) {
  auto [l, info] = at::linalg_cholesky_ex(a);
  TORCH_CHECK_VALUE(!(info != 0).any().item<bool>(), "frechet_trace_sqrt(method='newton-schulz'): ", what,
                    " must be positive definite; use method='eigh' for singular (rank-deficient) covariances");
  return l;
}

// (X, chol(X)) with X = sqrt(a) of a symmetric positive-definite a: coupled
// Newton-Schulz iterations in float32 on a / ||a||_F (eigenvalues in (0, 1], where
// they converge), then one Newton step X <- (X + X^{-1} a) / 2 in a's dtype: with
// X = sqrt(a) + E, Tr X_1 = Tr sqrt(a) + O(|E|^2), so the trace gets a's precision back.
std::tuple<at::Tensor, at::Tensor> newton_schulz_sqrt(const at::Tensor& a, int64_t iters) {
  const int64_t d = a.size(-1);
  const at::Tensor norm = at::linalg_matrix_norm(a, "fro", {-2, -1}, /*keepdim=*/true)
                              .clamp_min(std::numeric_limits<float>::min());
  const at::Tensor eye = at::eye(d, a.options().dtype(at::kFloat));
  at::Tensor y = (a / norm).to(at::kFloat);
  at::Tensor z = eye.expand_as(y);
  for (int64_t k = 0; k < iters; ++k) {
    const at::Tensor t = (eye * 3.0 - at::matmul(z, y)) * 0.5;
    y = at::matmul(y, t);
    z = at::matmul(t, z);
  }
  const at::Tensor x0 = sym(y.to(a.scalar_type()) * norm.sqrt());
  const at::Tensor x = sym((x0 + at::cholesky_solve(a, cholesky_or_throw(x0, "sigma2"))) * 0.5);
  return {x, cholesky_or_throw(x, "sigma2")};
}

// A factor F of sigma1 (F F^T = sigma1): then F^T sigma2 F is symmetric PSD with the
// eigenvalues of sigma1 sigma2. Cholesky (F = L, cheap, no eigenvectors) when every
// matrix of the batch is numerically positive definite (smallest pivot^2 above
// d * eps * max diag); otherwise F = S1 = sqrt(sigma1) from an eigendecomposition,
// its eigenvalues of rounding size truncated to 0 (rank-deficient covariances).
struct Factor {
  at::Tensor f;        // L or S1
  at::Tensor clamped;  // negative eigenvalue mass of sigma1 dropped (0 for Cholesky)
  bool cholesky;
  at::Tensor v1, r1;   // eigenvectors and sqrt-eigenvalues of sigma1 (S1 only)
};

Factor factor_sigma1(const at::Tensor& a1, const std::string& method, int64_t max_iter) {
  auto [l, info] = at::linalg_cholesky_ex(a1);
  const double eps = a1.scalar_type() == at::kDouble ? std::numeric_limits<double>::epsilon()
                                                     : static_cast<double>(std::numeric_limits<float>::epsilon());
  const at::Tensor pivots = l.diagonal(0, -2, -1);
  const at::Tensor floor = a1.diagonal(0, -2, -1).amax(-1) * (eps * static_cast<double>(a1.size(-1)));
  const bool definite = !(info != 0).any().item<bool>() &&  // any/all: an empty batch is fine
                        (pivots.square().amin(-1) > floor).all().item<bool>();
  if (definite) return {l, at::zeros(a1.sizes().slice(0, a1.dim() - 2), a1.options()), true, {}, {}};
  auto [w1, v1] = eigen(a1, method, max_iter, /*vectors=*/true);
  const at::Tensor r1 = truncated_sqrt(w1);
  return {from_eigen(v1, r1), (-w1).clamp_min(0).sum(-1), false, v1, r1};
}

// F^{+T} P F^{+} for symmetric P (L^{-T} P L^{-1}, or S1^+ P S1^+ with the pseudo-inverse).
at::Tensor inverse_sandwich(const Factor& f, const at::Tensor& p) {
  if (f.cholesky) {
    const at::Tensor y = at::linalg_solve_triangular(f.f.mT(), p, /*upper=*/true);  // L^{-T} P
    return at::linalg_solve_triangular(f.f.mT(), y.mT(), /*upper=*/true).mT();
  }
  const at::Tensor s1_pinv = from_eigen(f.v1, pinv_sqrt(f.r1));
  return at::matmul(at::matmul(s1_pinv, p), s1_pinv);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> frechet_trace_sqrt(const at::Tensor& sigma1,
                                                                              const at::Tensor& sigma2,
                                                                              c10::string_view method_view,
                                                                              int64_t max_iter, bool with_grad) {
  const std::string method(method_view);
  TORCH_CHECK(method == "eigh" || method == "jacobi" || method == "newton-schulz",
              "frechet_trace_sqrt: method must be 'eigh', 'jacobi' or 'newton-schulz', got '", method, "'");
  TORCH_CHECK(sigma1.dim() >= 2 && sigma1.size(-1) == sigma1.size(-2),
              "frechet_trace_sqrt: sigma1 must be (..., d, d), got shape ", sigma1.sizes());
  TORCH_CHECK(sigma2.sizes() == sigma1.sizes(), "frechet_trace_sqrt: sigma2 must have sigma1's shape ",
              sigma1.sizes(), ", got ", sigma2.sizes());
  TORCH_CHECK(sigma1.scalar_type() == sigma2.scalar_type() &&
                  (sigma1.scalar_type() == at::kFloat || sigma1.scalar_type() == at::kDouble),
              "frechet_trace_sqrt: sigma1 and sigma2 must both be float32 or both float64, got ",
              sigma1.scalar_type(), " and ", sigma2.scalar_type());
  TORCH_CHECK(sigma1.device() == sigma2.device(), "frechet_trace_sqrt: sigma1 and sigma2 must be on one device");
  TORCH_CHECK(max_iter >= 1, "frechet_trace_sqrt: max_iter must be >= 1, got ", max_iter);
  const at::Tensor a1 = sym(sigma1);
  const at::Tensor a2 = sym(sigma2);
  // Distinct empty outputs when no gradient is asked (outputs must not alias).
  const auto none = [&] { return at::empty({0}, sigma1.options()); };

  if (method == "newton-schulz") {
    // Any factor L with L L^T = sigma1 gives L^T sigma2 L the eigenvalues of sigma1 sigma2:
    // Cholesky is exact and cheap, so only sqrt(M) is iterated, and the Newton step
    // makes its trace accurate to second order in the float32 error.
    const at::Tensor l = cholesky_or_throw(a1, "sigma1");
    auto [x, lx] = newton_schulz_sqrt(sym(at::matmul(at::matmul(l.mT(), a2), l)), max_iter);
    const at::Tensor trace = x.diagonal(0, -2, -1).sum(-1);
    // No eigenvalues, so no diagnostics: an empty tensor.
    const at::Tensor diagnostics = none();
    if (!with_grad) return {trace, diagnostics, none(), none()};
    // d/dsigma2 = L X^{-1} L^T / 2,  d/dsigma1 = L^{-T} X L^{-1} / 2  (X = sqrt(L^T sigma2 L)).
    const at::Tensor grad2 = sym(at::matmul(l, at::cholesky_solve(l.mT(), lx)) * 0.5);
    const at::Tensor grad1 = sym(inverse_sandwich(Factor{l, {}, true, {}, {}}, x) * 0.5);
    return {trace, diagnostics, grad1, grad2};
  }

  const Factor f = factor_sigma1(a1, method, max_iter);
  // The symmetric form F^T sigma2 F (never the non-symmetric product sigma1 sigma2):
  // its eigenvalues are those of sigma1 sigma2, real and >= 0 up to rounding.
  const at::Tensor m = sym(at::matmul(at::matmul(f.f.mT(), a2), f.f));
  auto [wm, vm] = eigen(m, method, max_iter, with_grad);
  const at::Tensor rm = truncated_sqrt(wm);
  const at::Tensor trace = rm.sum(-1);
  const at::Tensor clamped = f.clamped + (-wm).clamp_min(0).sum(-1);
  const at::Tensor rank = (wm > zero_cutoff(wm)).sum(-1).to(wm.scalar_type());
  const at::Tensor diagnostics = at::stack({std::get<0>(wm.min(-1)), clamped, rank}, -1);
  if (!with_grad) return {trace, diagnostics, none(), none()};
  // d/dsigma2 = F M^{-1/2} F^T / 2,  d/dsigma1 = F^{+T} M^{1/2} F^{+} / 2  (M = F^T sigma2 F);
  // pseudo-inverses on singular inputs, where the trace is not differentiable.
  const at::Tensor grad2 = sym(at::matmul(at::matmul(f.f, from_eigen(vm, pinv_sqrt(rm))), f.f.mT()) * 0.5);
  const at::Tensor grad1 = sym(inverse_sandwich(f, from_eigen(vm, rm)) * 0.5);
  return {trace, diagnostics, grad1, grad2};
}

}  // namespace
}  // namespace frechet
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CPU, m) {
  m.impl("frechet_jacobi_eigh", &gandyn::frechet::frechet_jacobi_eigh_cpu);
}

TORCH_LIBRARY_IMPL(gandyn, CompositeExplicitAutograd, m) {
  m.impl("frechet_trace_sqrt", &gandyn::frechet::frechet_trace_sqrt);
}
