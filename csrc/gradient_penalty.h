// Arithmetic of the fused gradient penalty, shared by the CPU loop
// (csrc/cpu/gradient_penalty.cpp) and the CUDA kernels
// (csrc/cuda/gradient_penalty.cu), so the CPU tests exercise the very
// per-element and per-row formulas the GPU runs.
//
// For a gradient g of shape (B, ...) with rows g_i (all non-batch dims flattened):
//   n_i     = ||g_i||_2
//   penalty = (1/B) sum_i (n_i - t)^2        (t = 0 gives the R1/R2 form E||g||^2)
//   d penalty / d g_i = (2/B) (1 - t/n_i) g_i
// At a zero row (n_i = 0) we take 1/n_i := 0: the gradient there is 0 (g_i = 0),
// as with torch.linalg.vector_norm's subgradient, and the second derivative's
// t/n^3 term is 0 rather than Inf.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <c10/macros/Macros.h>
#include <c10/util/Exception.h>

namespace gandyn {
namespace gp {

// 1/n with the zero-row convention above.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t inv_norm(acc_t n) {
  return n > acc_t(0) ? acc_t(1) / n : acc_t(0);
}

// One row's term of the penalty sum: (n - t)^2.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t penalty_term(acc_t n, acc_t target) {
  const acc_t d = n - target;
  return d * d;
}

// Adds x^2 to a running sum of squares.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t add_square(acc_t acc, acc_t x) {
  return acc + x * x;
}

// Row factor of the backward: d penalty / d g_i = row_scale(...) * g_i, where
// scale = grad_output * 2 / B.
template <typename acc_t>
C10_HOST_DEVICE inline acc_t row_scale(acc_t n, acc_t target, acc_t scale) {
  return scale * (acc_t(1) - target * inv_norm(n));
}

// ---- argument checks shared by the CPU and CUDA entry points (host only) ----

// Dtype of the per-row norms: the op-math type (float for half/bfloat16/float,
// double for double), so the backward's 1 - t/n keeps its precision.
inline at::ScalarType norms_dtype(at::ScalarType grad_dtype) {
  return at::toOpMathType(grad_dtype);
}

inline void check_grad(const at::Tensor& grad, bool allow_reduced_precision) {
  TORCH_CHECK(grad.dim() >= 1, "gradient_penalty: grad must have rank >= 1 (batch first), got a 0-d tensor");
  TORCH_CHECK(grad.size(0) > 0,
              "gradient_penalty: grad has an empty batch (size 0 along dim 0); the mean over samples is undefined");
  const auto t = grad.scalar_type();
  const bool ok = t == at::kFloat || t == at::kDouble ||
                  (allow_reduced_precision && (t == at::kHalf || t == at::kBFloat16));
  TORCH_CHECK(ok, "gradient_penalty: grad must be float32 or float64",
              allow_reduced_precision ? " (or float16/bfloat16 on CUDA)" : " on CPU", ", got ", t);
}

inline void check_backward_args(const at::Tensor& grad_output, const at::Tensor& grad, const at::Tensor& norms,
                                bool allow_reduced_precision) {
  check_grad(grad, allow_reduced_precision);
  TORCH_CHECK(grad_output.numel() == 1 && grad_output.dim() == 0,
              "gradient_penalty_backward: grad_output must be a 0-d tensor (the penalty is a scalar), got shape ",
              grad_output.sizes());
  TORCH_CHECK(norms.dim() == 1 && norms.size(0) == grad.size(0),
              "gradient_penalty_backward: norms must have shape (", grad.size(0), ",) = (grad.size(0),), got ",
              norms.sizes());
  TORCH_CHECK(norms.scalar_type() == norms_dtype(grad.scalar_type()),
              "gradient_penalty_backward: norms must have dtype ", norms_dtype(grad.scalar_type()),
              " for grad of dtype ", grad.scalar_type(), ", got ", norms.scalar_type());
  TORCH_CHECK(grad_output.device() == grad.device() && norms.device() == grad.device(),
              "gradient_penalty_backward: grad_output, grad and norms must be on one device, got ",
              grad_output.device(), ", ", grad.device(), ", ", norms.device());
}

}  // namespace gp
}  // namespace gandyn
