// CPU kernels of gandyn::gradient_penalty and gandyn::gradient_penalty_backward
// (float32/float64). Rows are independent: both loops run in parallel over rows;
// the per-row arithmetic is the shared code of gradient_penalty.h.
#include <ATen/AccumulateType.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>

#include "cpu/multiversion.h"
#include "gradient_penalty.h"

namespace gandyn {
namespace {

// Rows of fewer elements than this are grouped so each task has work worth a thread.
constexpr int64_t kGrainElements = 32768;

// Row sums: kLanes partial sums in the input dtype over blocks of kBlock elements.
constexpr int kLanes = 16;
constexpr int64_t kBlock = 4096;

int64_t row_grain(int64_t row_len) { return std::max<int64_t>(1, kGrainElements / std::max<int64_t>(1, row_len)); }

// Sum of squares of one row. Blocked: kLanes independent lanes in scalar_t over blocks
// of kBlock elements (the compiler vectorizes the lanes; each lane adds only
// kBlock/kLanes terms), and the blocks' sums added in acc_t (double).
template <typename scalar_t, typename acc_t>
inline acc_t row_sum_squares_impl(const scalar_t* row, int64_t row_len) {
  acc_t total = 0;
  for (int64_t b = 0; b < row_len; b += kBlock) {
    const int64_t len = std::min(kBlock, row_len - b);
    const scalar_t* x = row + b;
    scalar_t lane[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= len; j += kLanes) {
      for (int k = 0; k < kLanes; ++k) lane[k] = gp::add_square<scalar_t>(lane[k], x[j + k]);
    }
    for (; j < len; ++j) lane[0] = gp::add_square<scalar_t>(lane[0], x[j]);
    for (int k = 0; k < kLanes; ++k) total += static_cast<acc_t>(lane[k]);
  }
  return total;
}
GANDYN_CPU_HOT double row_sum_squares(const float* row, int64_t n) { return row_sum_squares_impl<float, double>(row, n); }
GANDYN_CPU_HOT double row_sum_squares(const double* row, int64_t n) {
  return row_sum_squares_impl<double, double>(row, n);
}

// orow = c * row
template <typename scalar_t, typename norm_t>
inline void scale_row_impl(const scalar_t* row, scalar_t* orow, norm_t c, int64_t n) {
  for (int64_t j = 0; j < n; ++j) orow[j] = static_cast<scalar_t>(c * static_cast<norm_t>(row[j]));
}
GANDYN_CPU_HOT void scale_row(const float* row, float* orow, float c, int64_t n) { scale_row_impl(row, orow, c, n); }
GANDYN_CPU_HOT void scale_row(const double* row, double* orow, double c, int64_t n) { scale_row_impl(row, orow, c, n); }

std::tuple<at::Tensor, at::Tensor> gradient_penalty_cpu(const at::Tensor& grad_in, double target) {
  gp::check_grad(grad_in, /*allow_reduced_precision=*/false);
  const at::Tensor grad = grad_in.contiguous();
  const int64_t rows = grad.size(0);
  const int64_t row_len = rows == 0 ? 0 : grad.numel() / rows;
  at::Tensor norms = at::empty({rows}, grad.options().dtype(gp::norms_dtype(grad.scalar_type())));
  at::Tensor penalty = at::empty({}, grad.options());
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "gradient_penalty_cpu", [&] {
    // CPU accumulation type: double for float and double (at::acc_type<float, false>).
    using acc_t = at::acc_type<scalar_t, /*is_cuda=*/false>;
    using norm_t = at::opmath_type<scalar_t>;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    norm_t* n = norms.mutable_data_ptr<norm_t>();
    at::parallel_for(0, rows, row_grain(row_len), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const acc_t total = row_sum_squares(g + i * row_len, row_len);
        n[i] = static_cast<norm_t>(std::sqrt(total));
      }
    });
    // The mean over rows: B terms, serial and deterministic.
    acc_t total = 0;
    for (int64_t i = 0; i < rows; ++i) total += gp::penalty_term<acc_t>(n[i], static_cast<acc_t>(target));
    penalty.fill_(static_cast<double>(total / static_cast<acc_t>(rows)));
  });
  return {penalty, norms};
}

at::Tensor gradient_penalty_backward_cpu(const at::Tensor& grad_output, const at::Tensor& grad_in,
                                         const at::Tensor& norms_in, double target) {
  gp::check_backward_args(grad_output, grad_in, norms_in, /*allow_reduced_precision=*/false);
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor norms = norms_in.contiguous();
  const int64_t rows = grad.size(0);
  const int64_t row_len = grad.numel() / rows;
  at::Tensor out = at::empty_like(grad, at::MemoryFormat::Contiguous);
  AT_DISPATCH_FLOATING_TYPES(grad.scalar_type(), "gradient_penalty_backward_cpu", [&] {
    using norm_t = at::opmath_type<scalar_t>;
    const norm_t scale = static_cast<norm_t>(grad_output.item<double>() * 2.0 / static_cast<double>(rows));
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const norm_t* n = norms.const_data_ptr<norm_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    at::parallel_for(0, rows, row_grain(row_len), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const norm_t c = gp::row_scale<norm_t>(n[i], static_cast<norm_t>(target), scale);
        scale_row(g + i * row_len, o + i * row_len, c, row_len);
      }
    });
  });
  return out;
}

}  // namespace
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CPU, m) {
  m.impl("gradient_penalty", &gandyn::gradient_penalty_cpu);
  m.impl("gradient_penalty_backward", &gandyn::gradient_penalty_backward_cpu);
}
