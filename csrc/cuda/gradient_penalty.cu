// CUDA kernels of gandyn::gradient_penalty and gandyn::gradient_penalty_backward
// (float32/float64/float16/bfloat16; half and bfloat16 accumulate in float).
//
// Forward is a memory-bound row reduction in three launches:
//   1. sum-of-squares partials: one warp per (row, segment), 16-byte vector
//      loads; long rows are cut into segments so that a small batch of huge
//      rows still fills every SM;
//   2. per row: add its segments' partials, sqrt -> norms, and one partial sum
//      of (n - t)^2 per block (these short sums in double);
//   3. one block adds those and writes the mean.
// Every sum has a fixed order: the result is deterministic (no atomics).
// Backward is an elementwise row scaling, grid-stride with vector loads/stores.
// The per-element and per-row arithmetic is gradient_penalty.h, shared with the CPU.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <tuple>

#include "gradient_penalty.h"

namespace gandyn {
namespace {

constexpr int kWarp = 32;
constexpr int kThreads = 256;                    // threads per block, every kernel
constexpr int kWarpsPerBlock = kThreads / kWarp;
constexpr int kVecBytes = 16;                    // one 128-bit load per thread

template <typename scalar_t>
struct alignas(kVecBytes) Vec {
  static constexpr int kSize = kVecBytes / sizeof(scalar_t);
  scalar_t v[kSize];
};

template <typename acc_t>
__device__ __forceinline__ acc_t warp_sum(acc_t x) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_down_sync(0xffffffffu, x, offset);
  return x;
}

// Sum over the block; the result is valid in thread 0.
template <typename acc_t>
__device__ __forceinline__ acc_t block_sum(acc_t x) {
  __shared__ acc_t warp_sums[kWarpsPerBlock];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  x = warp_sum(x);
  if (lane == 0) warp_sums[warp] = x;
  __syncthreads();
  x = threadIdx.x < kWarpsPerBlock ? warp_sums[threadIdx.x] : acc_t(0);
  if (warp == 0) x = warp_sum(x);
  return x;
}

// 1. partial[r * segs + s] = sum of squares of segment s of row r (one warp each).
// kVector: row_len and seg_len are multiples of the vector width and g is 16-byte aligned.
template <typename scalar_t, typename acc_t, bool kVector>
__global__ void __launch_bounds__(kThreads) sumsq_partials_kernel(const scalar_t* __restrict__ g,
                                                                  acc_t* __restrict__ partial, int64_t rows,
                                                                  int64_t row_len, int64_t segs, int64_t seg_len) {
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (w >= rows * segs) return;  // uniform over the warp
  const int64_t row = w / segs;
  const int64_t begin = (w % segs) * seg_len;
  const int64_t end = std::min(begin + seg_len, row_len);
  const scalar_t* p = g + row * row_len;
  acc_t s = 0;
  if constexpr (kVector) {
    using V = Vec<scalar_t>;
    const V* pv = reinterpret_cast<const V*>(p);
#pragma unroll 4
    for (int64_t k = begin / V::kSize + lane; k < end / V::kSize; k += kWarp) {
      const V x = pv[k];
#pragma unroll
      for (int e = 0; e < V::kSize; ++e) s = gp::add_square<acc_t>(s, static_cast<acc_t>(x.v[e]));
    }
  } else {
#pragma unroll 4
    for (int64_t k = begin + lane; k < end; k += kWarp) s = gp::add_square<acc_t>(s, static_cast<acc_t>(p[k]));
  }
  s = warp_sum(s);
  if (lane == 0) partial[w] = s;
}

// 2. norms[r] = sqrt(sum of row r's partials); block_terms[b] = this block's sum of (n - t)^2.
// These sums have few terms per element read: they run in double whatever acc_t is.
template <typename acc_t>
__global__ void __launch_bounds__(kThreads) norms_kernel(const acc_t* __restrict__ partial, int64_t rows,
                                                         int64_t segs, double target, acc_t* __restrict__ norms,
                                                         double* __restrict__ block_terms) {
  double terms = 0;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; r < rows;
       r += static_cast<int64_t>(gridDim.x) * kThreads) {
    double s = 0;
    for (int64_t k = 0; k < segs; ++k) s += static_cast<double>(partial[r * segs + k]);
    const acc_t n = static_cast<acc_t>(sqrt(s));
    norms[r] = n;
    terms += gp::penalty_term<double>(static_cast<double>(n), target);
  }
  terms = block_sum(terms);
  if (threadIdx.x == 0) block_terms[blockIdx.x] = terms;
}

// 3. penalty = (sum of the block terms) / rows.
template <typename scalar_t>
__global__ void __launch_bounds__(kThreads) mean_kernel(const double* __restrict__ block_terms, int64_t blocks,
                                                        int64_t rows, scalar_t* __restrict__ penalty) {
  double s = 0;
  for (int64_t b = threadIdx.x; b < blocks; b += kThreads) s += block_terms[b];
  s = block_sum(s);
  if (threadIdx.x == 0) *penalty = static_cast<scalar_t>(s / static_cast<double>(rows));
}

// out_i = row_scale(n_i) * g_i, with row_scale = grad_output * (2/B) * (1 - t/n_i).
template <typename scalar_t, typename acc_t, bool kVector>
__global__ void __launch_bounds__(kThreads) backward_kernel(const acc_t* __restrict__ grad_output,
                                                            const scalar_t* __restrict__ g,
                                                            const acc_t* __restrict__ norms, acc_t target,
                                                            acc_t two_over_rows, scalar_t* __restrict__ out,
                                                            int64_t numel, int64_t row_len) {
  const acc_t scale = *grad_output * two_over_rows;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * kThreads;
  if constexpr (kVector) {
    using V = Vec<scalar_t>;
    const V* gv = reinterpret_cast<const V*>(g);
    V* ov = reinterpret_cast<V*>(out);
    // row_len is a multiple of the vector width: a vector never straddles two rows.
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; k < numel / V::kSize; k += stride) {
      const acc_t c = gp::row_scale<acc_t>(norms[k * V::kSize / row_len], target, scale);
      const V x = gv[k];
      V y;
#pragma unroll
      for (int e = 0; e < V::kSize; ++e) y.v[e] = static_cast<scalar_t>(c * static_cast<acc_t>(x.v[e]));
      ov[k] = y;
    }
  } else {
    for (int64_t k = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; k < numel; k += stride) {
      const acc_t c = gp::row_scale<acc_t>(norms[k / row_len], target, scale);
      out[k] = static_cast<scalar_t>(c * static_cast<acc_t>(g[k]));
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kVecBytes == 0; }

int sm_count() { return at::cuda::getCurrentDeviceProperties()->multiProcessorCount; }

template <typename T>
T ceil_div(T a, T b) { return (a + b - 1) / b; }

std::tuple<at::Tensor, at::Tensor> gradient_penalty_cuda(const at::Tensor& grad_in, double target) {
  gp::check_grad(grad_in, /*allow_reduced_precision=*/true);
  TORCH_CHECK(grad_in.is_cuda(), "gradient_penalty: grad must be a CUDA tensor here, got ", grad_in.device());
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const int64_t rows = grad.size(0);
  const int64_t row_len = grad.numel() / rows;
  const auto acc_dtype = gp::norms_dtype(grad.scalar_type());
  at::Tensor norms = at::empty({rows}, grad.options().dtype(acc_dtype));
  at::Tensor penalty = at::empty({}, grad.options());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "gradient_penalty_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr int64_t vec = Vec<scalar_t>::kSize;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    const bool vectorized = row_len % vec == 0 && aligned16(g);
    // Segments: enough warps for about two waves of resident warps, but at least
    // four vector loads per lane per segment so the partials stay few.
    const int64_t target_warps = static_cast<int64_t>(sm_count()) * 128;
    const int64_t min_seg = kWarp * vec * 4;
    int64_t segs = std::clamp<int64_t>(ceil_div(target_warps, rows), 1, std::max<int64_t>(1, ceil_div(row_len, min_seg)));
    int64_t seg_len = ceil_div(ceil_div(row_len, segs), vec) * vec;  // whole vectors
    segs = seg_len == 0 ? 1 : ceil_div(row_len, seg_len);
    at::Tensor partial = at::empty({rows * segs}, grad.options().dtype(acc_dtype));
    const int64_t warps = rows * segs;
    const unsigned blocks1 = static_cast<unsigned>(ceil_div<int64_t>(warps, kWarpsPerBlock));
    if (vectorized) {
      sumsq_partials_kernel<scalar_t, acc_t, true><<<blocks1, kThreads, 0, stream>>>(
          g, partial.mutable_data_ptr<acc_t>(), rows, row_len, segs, seg_len);
    } else {
      sumsq_partials_kernel<scalar_t, acc_t, false><<<blocks1, kThreads, 0, stream>>>(
          g, partial.mutable_data_ptr<acc_t>(), rows, row_len, segs, seg_len);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();

    const int64_t blocks2 = std::min<int64_t>(ceil_div<int64_t>(rows, kThreads), 1024);
    at::Tensor block_terms = at::empty({blocks2}, grad.options().dtype(at::kDouble));
    norms_kernel<acc_t><<<static_cast<unsigned>(blocks2), kThreads, 0, stream>>>(
        partial.const_data_ptr<acc_t>(), rows, segs, target, norms.mutable_data_ptr<acc_t>(),
        block_terms.mutable_data_ptr<double>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    mean_kernel<scalar_t><<<1, kThreads, 0, stream>>>(block_terms.const_data_ptr<double>(), blocks2, rows,
                                                      penalty.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {penalty, norms};
}

at::Tensor gradient_penalty_backward_cuda(const at::Tensor& grad_output, const at::Tensor& grad_in,
                                          const at::Tensor& norms_in, double target) {
  gp::check_backward_args(grad_output, grad_in, norms_in, /*allow_reduced_precision=*/true);
  TORCH_CHECK(grad_in.is_cuda(), "gradient_penalty_backward: grad must be a CUDA tensor here, got ", grad_in.device());
  const c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor norms = norms_in.contiguous();
  const auto acc_dtype = gp::norms_dtype(grad.scalar_type());
  // The 0-d grad_output stays on the device (no host sync): the kernel reads it.
  const at::Tensor gout = grad_output.to(acc_dtype);
  const int64_t rows = grad.size(0);
  const int64_t numel = grad.numel();
  const int64_t row_len = numel / rows;
  at::Tensor out = at::empty_like(grad, at::MemoryFormat::Contiguous);
  if (numel == 0) return out;
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();

  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "gradient_penalty_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr int64_t vec = Vec<scalar_t>::kSize;
    const scalar_t* g = grad.const_data_ptr<scalar_t>();
    scalar_t* o = out.mutable_data_ptr<scalar_t>();
    const bool vectorized = row_len % vec == 0 && aligned16(g) && aligned16(o);
    const int64_t items = vectorized ? numel / vec : numel;
    const unsigned blocks = static_cast<unsigned>(
        std::min<int64_t>(ceil_div<int64_t>(items, kThreads), static_cast<int64_t>(sm_count()) * 8));
    const acc_t two_over_rows = static_cast<acc_t>(2.0 / static_cast<double>(rows));
    if (vectorized) {
      backward_kernel<scalar_t, acc_t, true><<<blocks, kThreads, 0, stream>>>(
          gout.const_data_ptr<acc_t>(), g, norms.const_data_ptr<acc_t>(), static_cast<acc_t>(target), two_over_rows,
          o, numel, row_len);
    } else {
      backward_kernel<scalar_t, acc_t, false><<<blocks, kThreads, 0, stream>>>(
          gout.const_data_ptr<acc_t>(), g, norms.const_data_ptr<acc_t>(), static_cast<acc_t>(target), two_over_rows,
          o, numel, row_len);
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CUDA, m) {
  m.impl("gradient_penalty", &gandyn::gradient_penalty_cuda);
  m.impl("gradient_penalty_backward", &gandyn::gradient_penalty_backward_cuda);
}
