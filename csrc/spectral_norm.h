// Arithmetic of the multi-tensor spectral normalization, shared by the CPU loops
// (csrc/cpu/spectral_norm.cpp) and the CUDA kernels (csrc/cuda/spectral_norm.cu),
// so the CPU tests exercise the very per-element and per-row formulas the GPU runs.
//
// Each weight W (shape (h, ...)) is read as the h x w matrix W.flatten(1); u has h
// entries, v has w. One power-iteration step (Miyato et al. 2018; the order and eps
// of torch.nn.utils.parametrizations.spectral_norm):
//   s = W v,   u = s / max(||s||, eps),   t = W^T u,   v = t / max(||t||, eps)
// and the normalization, with u, v held constant:
//   sigma = u^T W v,   W_sn = W / sigma,
//   dL/dW = G / sigma + (g_sigma - <G, W> / sigma^2) u v^T
// where G = dL/dW_sn and g_sigma = dL/dsigma (sigma is an output too).
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/isfinite.h>
#include <c10/macros/Macros.h>
#include <c10/util/Exception.h>

#include <cmath>
#include <utility>
#include <vector>

namespace gandyn {
namespace sn {

// The denominator of F.normalize: max(||x||, eps), from the sum of squares of x.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t norm_denominator(acc_t sum_squares, acc_t eps) {
  const acc_t n = ::sqrt(sum_squares);
  return n > eps ? n : eps;
}

// One entry of a normalized vector (u = s / max(||s||, eps), v likewise).
template <typename acc_t>
C10_HOST_DEVICE inline acc_t normalized_entry(acc_t x, acc_t denominator) {
  return x / denominator;
}

// One entry of W / sigma.
template <typename scalar_t, typename acc_t>
C10_HOST_DEVICE inline scalar_t scaled_weight(scalar_t w, acc_t sigma) {
  return static_cast<scalar_t>(static_cast<acc_t>(w) / sigma);
}

// The rank-one coefficient of the backward: g_sigma - <G, W> / sigma^2.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t backward_coefficient(acc_t grad_sigma, acc_t grad_dot_weight, acc_t sigma) {
  return grad_sigma - grad_dot_weight / (sigma * sigma);
}

// One entry of dL/dW: G_ij / sigma + (coefficient * u_i) * v_j.
template <typename scalar_t, typename acc_t>
C10_HOST_DEVICE inline scalar_t weight_grad_entry(scalar_t g, acc_t sigma, acc_t coefficient_times_u_i, acc_t v_j) {
  return static_cast<scalar_t>(static_cast<acc_t>(g) / sigma + coefficient_times_u_i * v_j);
}

// Partial dot product sum_{k = begin, begin + step, ... < n} a_k b_k: one CUDA lane's
// share of a row (step = warp size); the CPU calls dot() below.
template <typename acc_t, typename scalar_t>
C10_HOST_DEVICE inline acc_t partial_dot(const scalar_t* a, const scalar_t* b, int64_t begin, int64_t n,
                                         int64_t step) {
  acc_t s = 0;
  for (int64_t k = begin; k < n; k += step) s += static_cast<acc_t>(a[k]) * static_cast<acc_t>(b[k]);
  return s;
}

// Full dot product with 32 independent partial sums: the CPU's vector unit keeps
// several accumulators in flight instead of waiting on one add chain.
template <typename acc_t, typename scalar_t>
C10_HOST_DEVICE inline acc_t dot(const scalar_t* a, const scalar_t* b, int64_t n) {
  constexpr int kLanes = 32;
  acc_t s[kLanes] = {};
  int64_t k = 0;
  for (; k + kLanes <= n; k += kLanes) {
    for (int r = 0; r < kLanes; ++r) s[r] += static_cast<acc_t>(a[k + r]) * static_cast<acc_t>(b[k + r]);
  }
  for (; k < n; ++k) s[0] += static_cast<acc_t>(a[k]) * static_cast<acc_t>(b[k]);
  for (int width = kLanes / 2; width > 0; width /= 2) {
    for (int r = 0; r < width; ++r) s[r] += s[r + width];
  }
  return s[0];
}

// ---- argument checks shared by the CPU and CUDA entry points (host only) ----

// Rows (h) and columns (w) of a weight read as W.flatten(1).
inline int64_t rows_of(const at::Tensor& w) { return w.size(0); }
inline int64_t cols_of(const at::Tensor& w) { return w.numel() / w.size(0); }

// Checks one list against the weights: same length, one dtype and device, float32/float64.
inline void check_weights(const char* op, const at::TensorList& weights) {
  TORCH_CHECK(!weights.empty(), op, ": weights must be a non-empty list of tensors");
  const auto dtype = weights[0].scalar_type();
  const auto device = weights[0].device();
  TORCH_CHECK(dtype == at::kFloat || dtype == at::kDouble, op, ": weights must be float32 or float64, got weights[0] of ",
              dtype);
  for (size_t i = 0; i < weights.size(); ++i) {
    const at::Tensor& w = weights[i];
    TORCH_CHECK(w.dim() >= 2, op, ": weights[", i, "] must have at least 2 dimensions (read as W.flatten(1)), got shape ",
                w.sizes());
    TORCH_CHECK(w.numel() > 0, op, ": weights[", i, "] must be non-empty, got shape ", w.sizes());
    TORCH_CHECK(w.scalar_type() == dtype, op, ": all weights must share one dtype: weights[0] is ", dtype,
                ", weights[", i, "] is ", w.scalar_type());
    TORCH_CHECK(w.device() == device, op, ": all weights must be on one device: weights[0] is on ", device,
                ", weights[", i, "] on ", w.device());
  }
}

// The power iteration's scalars.
inline void check_scalars(const char* op, int64_t n_power_iterations, double eps) {
  TORCH_CHECK(n_power_iterations >= 0, op, ": n_power_iterations must be >= 0, got ", n_power_iterations);
  TORCH_CHECK(std::isfinite(eps) && eps >= 0, op, ": eps must be finite and >= 0, got ", eps);
}

// `vecs` (named `name`) must hold, for each weight, a 1-D vector of rows (u) or columns (v).
inline void check_vectors(const char* op, const char* name, const at::TensorList& vecs, const at::TensorList& weights,
                          bool rows) {
  TORCH_CHECK(vecs.size() == weights.size(), op, ": ", name, " must have one vector per weight: len(weights) = ",
              weights.size(), ", len(", name, ") = ", vecs.size());
  for (size_t i = 0; i < vecs.size(); ++i) {
    const int64_t n = rows ? rows_of(weights[i]) : cols_of(weights[i]);
    TORCH_CHECK(vecs[i].dim() == 1 && vecs[i].size(0) == n, op, ": ", name, "[", i, "] must have shape (", n, ",) = ",
                rows ? "weights[i].shape[0]" : "weights[i].numel() / weights[i].shape[0]", " for weights[", i,
                "] of shape ", weights[i].sizes(), ", got ", vecs[i].sizes());
    TORCH_CHECK(vecs[i].scalar_type() == weights[i].scalar_type(), op, ": ", name, "[", i, "] must have dtype ",
                weights[i].scalar_type(), " like weights[", i, "], got ", vecs[i].scalar_type());
    TORCH_CHECK(vecs[i].device() == weights[i].device(), op, ": ", name, "[", i, "] must be on ", weights[i].device(),
                " like weights[", i, "], got ", vecs[i].device());
  }
}

// After a kernel produced a non-finite result for layer i: name the input that holds
// non-finite values (host-side, on the error path only).
[[noreturn]] inline void report_non_finite(const char* op, size_t i, const at::Tensor& w, const at::Tensor& u,
                                           const at::Tensor& v) {
  TORCH_CHECK(at::isfinite(w).all().item<bool>(), op, ": weights[", i, "] contains non-finite values (NaN or Inf)");
  TORCH_CHECK(at::isfinite(u).all().item<bool>(), op, ": us[", i, "] contains non-finite values (NaN or Inf)");
  TORCH_CHECK(at::isfinite(v).all().item<bool>(), op, ": vs[", i, "] contains non-finite values (NaN or Inf)");
  TORCH_CHECK(false, op, ": the result for weights[", i, "] overflowed (|W v|, |W^T u| or u^T W v exceeds the range of ",
              w.scalar_type(), ")");
}

// Per-layer sums of squares of s = W v and t = W^T u (host copy): all must be finite.
inline void check_power_iteration(const char* op, const std::vector<double>& sum_squares_s,
                                  const std::vector<double>& sum_squares_t, const at::TensorList& weights,
                                  const at::TensorList& us, const at::TensorList& vs) {
  for (size_t i = 0; i < weights.size(); ++i) {
    if (!std::isfinite(sum_squares_s[i]) || !std::isfinite(sum_squares_t[i])) {
      report_non_finite(op, i, weights[i], us[i], vs[i]);
    }
  }
}

// sigma must be finite and non-zero (W / 0 would be a silent NaN/Inf).
inline void check_sigmas(const char* op, const at::Tensor& sigmas, const at::TensorList& weights,
                         const at::TensorList& us, const at::TensorList& vs) {
  const at::Tensor s = sigmas.to(at::kDouble).cpu();
  const double* sp = s.const_data_ptr<double>();
  for (size_t i = 0; i < weights.size(); ++i) {
    const double sigma = sp[i];
    if (!std::isfinite(sigma)) report_non_finite(op, i, weights[i], us[i], vs[i]);
    TORCH_CHECK(sigma != 0.0, op, ": sigma = u^T W v is 0 for weights[", i,
                "] (an all-zero weight, or u, v orthogonal to its range); W / sigma is undefined");
  }
}

// The backward's extra arguments: one gradient per weight (same shape), and sigmas,
// grad_sigmas of shape (len(weights),).
inline void check_backward_args(const char* op, const at::TensorList& grads, const at::TensorList& weights,
                                const at::Tensor& sigmas, const at::Tensor& grad_sigmas) {
  TORCH_CHECK(grads.size() == weights.size(), op, ": grads must have one tensor per weight: len(weights) = ",
              weights.size(), ", len(grads) = ", grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    TORCH_CHECK(grads[i].sizes() == weights[i].sizes(), op, ": grads[", i, "] must have the shape of weights[", i,
                "], ", weights[i].sizes(), ", got ", grads[i].sizes());
    TORCH_CHECK(grads[i].scalar_type() == weights[i].scalar_type() && grads[i].device() == weights[i].device(), op,
                ": grads[", i, "] must have the dtype and device of weights[", i, "] (", weights[i].scalar_type(), ", ",
                weights[i].device(), "), got ", grads[i].scalar_type(), ", ", grads[i].device());
  }
  const int64_t L = static_cast<int64_t>(weights.size());
  for (const auto& [name, t] : {std::pair<const char*, const at::Tensor&>{"sigmas", sigmas},
                                std::pair<const char*, const at::Tensor&>{"grad_sigmas", grad_sigmas}}) {
    TORCH_CHECK(t.dim() == 1 && t.size(0) == L, op, ": ", name, " must have shape (", L, ",) = (len(weights),), got ",
                t.sizes());
    TORCH_CHECK(t.scalar_type() == weights[0].scalar_type() && t.device() == weights[0].device(), op, ": ", name,
                " must have the dtype and device of the weights (", weights[0].scalar_type(), ", ",
                weights[0].device(), "), got ", t.scalar_type(), ", ", t.device());
  }
}

// The checks every op makes of its weights, us and vs.
inline void check_layers(const char* op, const at::TensorList& weights, const at::TensorList& us,
                         const at::TensorList& vs) {
  check_weights(op, weights);
  check_vectors(op, "us", us, weights, /*rows=*/true);
  check_vectors(op, "vs", vs, weights, /*rows=*/false);
}

// Every tensor of a list, contiguous.
inline std::vector<at::Tensor> contiguous_all(const at::TensorList& ts) {
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(t.contiguous());
  return out;
}

// The layers' weights, u and v as the kernels read them (contiguous).
struct Layers {
  std::vector<at::Tensor> w, u, v;
};
inline Layers contiguous_layers(const at::TensorList& weights, const at::TensorList& us, const at::TensorList& vs) {
  return {contiguous_all(weights), contiguous_all(us), contiguous_all(vs)};
}

}  // namespace sn
}  // namespace gandyn
