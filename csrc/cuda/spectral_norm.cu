// CUDA kernels of the multi-tensor spectral normalization (float32/float64):
//   gandyn::spectral_norm_power_iteration, spectral_norm_normalize, spectral_norm_normalize_backward.
// One launch per half-step covers every layer: the layers' pointers, sizes and
// block ranges travel in a table passed as a kernel argument (up to kMaxLayers
// layers per launch; longer lists take several), and each block finds its layer
// in the table. Reductions are deterministic: each block writes one partial sum
// to a slot, and the next kernel sums its layer's slots in order. The arithmetic
// per element and per row is spectral_norm.h's, which the CPU kernels share.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/cat.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "spectral_norm.h"

namespace gandyn {
namespace {

constexpr int kMaxLayers = 24;         // layers per launch: the table stays well under 4 KB
constexpr int kThreads = 256;          // threads per block
constexpr int kWarps = kThreads / 32;  // rows per block of the row kernels (one warp per row)
constexpr int kTileCols = 32;          // columns per block of the W^T u kernel
constexpr int kElemsPerBlock = 4096;   // entries per block of the elementwise kernels

// Everything a launch needs to know about its layers.
template <typename T>
struct Table {
  int n;                          // layers in this launch
  const T* w[kMaxLayers];         // contiguous weights (rows x cols, row-major)
  const T* u[kMaxLayers];         // u, v inputs
  const T* v[kMaxLayers];
  const T* g[kMaxLayers];         // backward: dL/dW_sn
  T* out[kMaxLayers];             // W / sigma, dL/dW, or the new v
  T* out_u[kMaxLayers];           // the new u (power iteration)
  int64_t rows[kMaxLayers];
  int64_t cols[kMaxLayers];
  int64_t row_off[kMaxLayers];    // layer's first entry in the scratch vector s (rows)
  int64_t col_off[kMaxLayers];    // layer's first entry in the scratch vector t (columns)
  int row_blocks[kMaxLayers + 1];   // block ranges (prefix sums) of the row kernels,
  int col_blocks[kMaxLayers + 1];   // of the column kernel,
  int elem_blocks[kMaxLayers + 1];  // of the elementwise kernels
};

__device__ inline int layer_of_block(const int* start, int n, int block) {
  int l = 0;
  while (l + 1 < n && block >= start[l + 1]) ++l;
  return l;
}

template <typename acc_t>
__device__ inline acc_t warp_sum(acc_t x) {
  for (int offset = 16; offset > 0; offset >>= 1) x += __shfl_down_sync(0xffffffffu, x, offset);
  return x;
}

// Sum of a layer's partial sums, in slot order (one thread; deterministic).
template <typename acc_t>
__device__ inline acc_t sum_slots(const acc_t* slots, int begin, int end) {
  acc_t s = 0;
  for (int k = begin; k < end; ++k) s += slots[k];
  return s;
}

// Sum over the block of one value per warp (lane 0's), into slot[blockIdx.x].
template <typename acc_t>
__device__ inline void block_partial_to_slot(acc_t warp_value, acc_t* warp_parts, acc_t* slots) {
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) warp_parts[warp] = warp_value;
  __syncthreads();
  if (threadIdx.x == 0) {
    acc_t s = 0;
    for (int k = 0; k < kWarps; ++k) s += warp_parts[k];
    slots[blockIdx.x] = s;
  }
}

// A non-finite ||s||^2 or ||t||^2 of any step fails the host check, as on the CPU:
// after an overflow u and v can turn 0 and later steps finite again. The layer's first
// block records it in layer_squares (zeroed; power_finalize_kernel keeps it).
template <typename acc_t>
__device__ inline void note_non_finite(acc_t square, acc_t* layer_square, bool first_block_of_layer) {
  if (first_block_of_layer && !isfinite(square)) *layer_square = square;
}

// Half-step 1: s = W v for every row of every layer (one warp per row), with v the
// input v (first step) or t / max(||t||, eps) of the previous step. Slots: ||s||^2.
template <typename T, typename acc_t>
__global__ void power_rows_kernel(const Table<T> tab, const T* __restrict__ t_prev, const acc_t* __restrict__ slots_t,
                                  T* __restrict__ s, acc_t* __restrict__ slots_s, acc_t* __restrict__ layer_squares,
                                  bool first, acc_t eps) {
  __shared__ acc_t denominator;
  __shared__ acc_t warp_parts[kWarps];
  const int l = layer_of_block(tab.row_blocks, tab.n, blockIdx.x);
  if (threadIdx.x == 0) {
    if (first) {
      denominator = acc_t(1);
    } else {
      const acc_t square = sum_slots(slots_t, tab.col_blocks[l], tab.col_blocks[l + 1]);
      note_non_finite(square, &layer_squares[2 * l + 1], static_cast<int>(blockIdx.x) == tab.row_blocks[l]);
      denominator = sn::norm_denominator<acc_t>(square, eps);
    }
  }
  __syncthreads();
  const int lane = threadIdx.x % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x - tab.row_blocks[l]) * kWarps + threadIdx.x / 32;
  const int64_t cols = tab.cols[l];
  const T* v = first ? tab.v[l] : t_prev + tab.col_off[l];
  acc_t square = 0;
  if (i < tab.rows[l]) {
    const T* row = tab.w[l] + i * cols;
    acc_t acc = 0;
    for (int64_t j = lane; j < cols; j += 32) {
      acc += static_cast<acc_t>(row[j]) * sn::normalized_entry<acc_t>(static_cast<acc_t>(v[j]), denominator);
    }
    acc = warp_sum(acc);
    const T si = static_cast<T>(acc);
    if (lane == 0) s[tab.row_off[l] + i] = si;
    square = static_cast<acc_t>(si) * static_cast<acc_t>(si);
  }
  block_partial_to_slot(square, warp_parts, slots_s);
}

// Half-step 2: t = W^T u with u = s / max(||s||, eps), a tile of kTileCols columns per
// block, the block's warps splitting the rows. Slots: ||t||^2.
template <typename T, typename acc_t>
__global__ void power_cols_kernel(const Table<T> tab, const T* __restrict__ s, const acc_t* __restrict__ slots_s,
                                  T* __restrict__ t, acc_t* __restrict__ slots_t, acc_t* __restrict__ layer_squares,
                                  acc_t eps) {
  __shared__ acc_t denominator;
  __shared__ acc_t parts[kWarps][kTileCols + 1];
  const int l = layer_of_block(tab.col_blocks, tab.n, blockIdx.x);
  if (threadIdx.x == 0) {
    const acc_t square = sum_slots(slots_s, tab.row_blocks[l], tab.row_blocks[l + 1]);
    note_non_finite(square, &layer_squares[2 * l], static_cast<int>(blockIdx.x) == tab.col_blocks[l]);
    denominator = sn::norm_denominator<acc_t>(square, eps);
  }
  __syncthreads();
  const int c = threadIdx.x % kTileCols;
  const int row_group = threadIdx.x / kTileCols;
  const int64_t j = static_cast<int64_t>(blockIdx.x - tab.col_blocks[l]) * kTileCols + c;
  const int64_t rows = tab.rows[l];
  const int64_t cols = tab.cols[l];
  acc_t acc = 0;
  if (j < cols) {
    const T* W = tab.w[l];
    const T* sl = s + tab.row_off[l];
    for (int64_t i = row_group; i < rows; i += kWarps) {
      acc += static_cast<acc_t>(W[i * cols + j]) * sn::normalized_entry<acc_t>(static_cast<acc_t>(sl[i]), denominator);
    }
  }
  parts[row_group][c] = acc;
  __syncthreads();
  if (row_group == 0) {
    acc_t tj = 0;
    for (int k = 0; k < kWarps; ++k) tj += parts[k][c];
    const T tv = static_cast<T>(tj);
    if (j < cols) t[tab.col_off[l] + j] = tv;
    const acc_t square = warp_sum(j < cols ? static_cast<acc_t>(tv) * static_cast<acc_t>(tv) : acc_t(0));
    if (c == 0) slots_t[blockIdx.x] = square;
  }
}

// u = s / max(||s||, eps), v = t / max(||t||, eps): one block per layer; also writes
// the layer's (||s||^2, ||t||^2) for the host's finiteness check, unless an earlier
// step left a non-finite one there.
template <typename T, typename acc_t>
__global__ void power_finalize_kernel(const Table<T> tab, const T* __restrict__ s, const acc_t* __restrict__ slots_s,
                                      const T* __restrict__ t, const acc_t* __restrict__ slots_t,
                                      acc_t* __restrict__ layer_squares, acc_t eps) {
  __shared__ acc_t squares[2];
  const int l = blockIdx.x;
  if (threadIdx.x == 0) {
    squares[0] = sum_slots(slots_s, tab.row_blocks[l], tab.row_blocks[l + 1]);
    squares[1] = sum_slots(slots_t, tab.col_blocks[l], tab.col_blocks[l + 1]);
    if (isfinite(layer_squares[2 * l])) layer_squares[2 * l] = squares[0];
    if (isfinite(layer_squares[2 * l + 1])) layer_squares[2 * l + 1] = squares[1];
  }
  __syncthreads();
  const acc_t ds = sn::norm_denominator<acc_t>(squares[0], eps);
  const acc_t dt = sn::norm_denominator<acc_t>(squares[1], eps);
  for (int64_t i = threadIdx.x; i < tab.rows[l]; i += blockDim.x) {
    tab.out_u[l][i] = static_cast<T>(sn::normalized_entry<acc_t>(static_cast<acc_t>(s[tab.row_off[l] + i]), ds));
  }
  for (int64_t j = threadIdx.x; j < tab.cols[l]; j += blockDim.x) {
    tab.out[l][j] = static_cast<T>(sn::normalized_entry<acc_t>(static_cast<acc_t>(t[tab.col_off[l] + j]), dt));
  }
}

// sigma's terms u_i (W v)_i, one warp per row; slots: the block's sum.
template <typename T, typename acc_t>
__global__ void sigma_rows_kernel(const Table<T> tab, acc_t* __restrict__ slots) {
  __shared__ acc_t warp_parts[kWarps];
  const int l = layer_of_block(tab.row_blocks, tab.n, blockIdx.x);
  const int lane = threadIdx.x % 32;
  const int64_t i = static_cast<int64_t>(blockIdx.x - tab.row_blocks[l]) * kWarps + threadIdx.x / 32;
  const int64_t cols = tab.cols[l];
  acc_t term = 0;
  if (i < tab.rows[l]) {
    acc_t acc = sn::partial_dot<acc_t>(tab.w[l] + i * cols, tab.v[l], lane, cols, 32);
    acc = warp_sum(acc);
    term = static_cast<acc_t>(tab.u[l][i]) * acc;
  }
  block_partial_to_slot(term, warp_parts, slots);
}

// The block's range of a layer's entries in the elementwise kernels.
template <typename T>
__device__ inline void element_range(const Table<T>& tab, int l, int64_t* begin, int64_t* end) {
  *begin = static_cast<int64_t>(blockIdx.x - tab.elem_blocks[l]) * kElemsPerBlock;
  *end = ::min(*begin + kElemsPerBlock, tab.rows[l] * tab.cols[l]);
}

// W / sigma, sigma summed from the layer's slots (also written to sigmas[l]).
template <typename T, typename acc_t>
__global__ void scale_kernel(const Table<T> tab, const acc_t* __restrict__ slots, T* __restrict__ sigmas) {
  __shared__ acc_t sigma;
  const int l = layer_of_block(tab.elem_blocks, tab.n, blockIdx.x);
  if (threadIdx.x == 0) {
    const T rounded = static_cast<T>(sum_slots(slots, tab.row_blocks[l], tab.row_blocks[l + 1]));
    sigma = static_cast<acc_t>(rounded);
    if (static_cast<int>(blockIdx.x) == tab.elem_blocks[l]) sigmas[l] = rounded;
  }
  __syncthreads();
  int64_t begin, end;
  element_range(tab, l, &begin, &end);
  const T* W = tab.w[l];
  T* O = tab.out[l];
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) O[k] = sn::scaled_weight<T, acc_t>(W[k], sigma);
}

// Partial sums of <G, W> over each block's range of entries.
template <typename T, typename acc_t>
__global__ void grad_dot_weight_kernel(const Table<T> tab, acc_t* __restrict__ slots) {
  __shared__ acc_t warp_parts[kWarps];
  const int l = layer_of_block(tab.elem_blocks, tab.n, blockIdx.x);
  int64_t begin, end;
  element_range(tab, l, &begin, &end);
  acc_t acc = sn::partial_dot<acc_t>(tab.g[l], tab.w[l], begin + threadIdx.x, end, blockDim.x);
  acc = warp_sum(acc);
  block_partial_to_slot(acc, warp_parts, slots);
}

// dL/dW = G / sigma + (g_sigma - <G, W> / sigma^2) u v^T.
template <typename T, typename acc_t>
__global__ void weight_grad_kernel(const Table<T> tab, const acc_t* __restrict__ slots, const T* __restrict__ sigmas,
                                   const T* __restrict__ grad_sigmas) {
  __shared__ acc_t coefficient;
  const int l = layer_of_block(tab.elem_blocks, tab.n, blockIdx.x);
  const acc_t sigma = static_cast<acc_t>(sigmas[l]);
  if (threadIdx.x == 0) {
    const acc_t c = sum_slots(slots, tab.elem_blocks[l], tab.elem_blocks[l + 1]);
    coefficient = sn::backward_coefficient<acc_t>(static_cast<acc_t>(grad_sigmas[l]), c, sigma);
  }
  __syncthreads();
  int64_t begin, end;
  element_range(tab, l, &begin, &end);
  const int64_t cols = tab.cols[l];
  const T* G = tab.g[l];
  const T* U = tab.u[l];
  const T* V = tab.v[l];
  T* O = tab.out[l];
  for (int64_t k = begin + threadIdx.x; k < end; k += blockDim.x) {
    const int64_t i = k / cols;
    const int64_t j = k - i * cols;
    O[k] = sn::weight_grad_entry<T, acc_t>(G[k], sigma, coefficient * static_cast<acc_t>(U[i]),
                                           static_cast<acc_t>(V[j]));
  }
}

// ---------------------------------------------------------------- host side

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The table of layers [first, first + n) with their block ranges; totals of the
// scratch sizes and block counts are read from its last prefix entries.
template <typename T>
Table<T> make_table(const std::vector<at::Tensor>& w, size_t first, int n) {
  Table<T> tab{};
  tab.n = n;
  int64_t row_off = 0, col_off = 0, rb = 0, cb = 0, eb = 0;
  for (int k = 0; k < n; ++k) {
    const at::Tensor& W = w[first + k];
    tab.w[k] = W.const_data_ptr<T>();
    tab.rows[k] = sn::rows_of(W);
    tab.cols[k] = sn::cols_of(W);
    tab.row_off[k] = row_off;
    tab.col_off[k] = col_off;
    tab.row_blocks[k] = static_cast<int>(rb);
    tab.col_blocks[k] = static_cast<int>(cb);
    tab.elem_blocks[k] = static_cast<int>(eb);
    row_off += tab.rows[k];
    col_off += tab.cols[k];
    rb += ceil_div(tab.rows[k], kWarps);
    cb += ceil_div(tab.cols[k], kTileCols);
    eb += ceil_div(W.numel(), kElemsPerBlock);
  }
  // Each total is a launch's gridDim.x and an int in the table.
  TORCH_CHECK(std::max({rb, cb, eb}) < (int64_t{1} << 31) - 1,
              "spectral_norm (CUDA): too many weight rows, columns or entries for one launch");
  tab.row_blocks[n] = static_cast<int>(rb);
  tab.col_blocks[n] = static_cast<int>(cb);
  tab.elem_blocks[n] = static_cast<int>(eb);
  return tab;
}

template <typename T>
int64_t total_rows(const Table<T>& tab) {
  return tab.row_off[tab.n - 1] + tab.rows[tab.n - 1];
}

template <typename T>
int64_t total_cols(const Table<T>& tab) {
  return tab.col_off[tab.n - 1] + tab.cols[tab.n - 1];
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>> power_iteration_cuda(at::TensorList weights,
                                                                                  at::TensorList us, at::TensorList vs,
                                                                                  int64_t n_power_iterations,
                                                                                  double eps) {
  const char* op = "spectral_norm_power_iteration";
  sn::check_layers(op, weights, us, vs);
  sn::check_scalars(op, n_power_iterations, eps);
  const c10::cuda::CUDAGuard guard(weights[0].device());
  const sn::Layers layers = sn::contiguous_layers(weights, us, vs);
  const std::vector<at::Tensor>& w = layers.w;
  const std::vector<at::Tensor>& u = layers.u;
  const std::vector<at::Tensor>& v = layers.v;
  const size_t L = w.size();
  std::vector<at::Tensor> u_out, v_out;
  for (size_t l = 0; l < L; ++l) {
    u_out.push_back(at::empty({sn::rows_of(w[l])}, w[l].options()));
    v_out.push_back(at::empty({sn::cols_of(w[l])}, w[l].options()));
  }
  if (n_power_iterations == 0) {
    for (size_t l = 0; l < L; ++l) {
      u_out[l].copy_(u[l]);
      v_out[l].copy_(v[l]);
    }
    return {u_out, v_out};
  }
  const auto acc_dtype = at::toOpMathType(w[0].scalar_type());
  std::vector<at::Tensor> squares;  // per launch: (||s||^2, ||t||^2) of each layer
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_power_iteration_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    for (size_t first = 0; first < L; first += kMaxLayers) {
      const int n = static_cast<int>(std::min<size_t>(kMaxLayers, L - first));
      Table<scalar_t> tab = make_table<scalar_t>(w, first, n);
      for (int k = 0; k < n; ++k) {
        tab.v[k] = v[first + k].const_data_ptr<scalar_t>();
        tab.out_u[k] = u_out[first + k].mutable_data_ptr<scalar_t>();
        tab.out[k] = v_out[first + k].mutable_data_ptr<scalar_t>();
      }
      at::Tensor s = at::empty({total_rows(tab)}, w[0].options());
      at::Tensor t = at::empty({total_cols(tab)}, w[0].options());
      const int row_blocks = tab.row_blocks[n];
      const int col_blocks = tab.col_blocks[n];
      at::Tensor slots = at::empty({row_blocks + col_blocks}, w[0].options().dtype(acc_dtype));
      at::Tensor layer_squares = at::zeros({2 * n}, w[0].options().dtype(acc_dtype));
      acc_t* slots_s = slots.mutable_data_ptr<acc_t>();
      acc_t* slots_t = slots_s + row_blocks;
      const acc_t e = static_cast<acc_t>(eps);
      for (int64_t it = 0; it < n_power_iterations; ++it) {
        power_rows_kernel<scalar_t, acc_t><<<row_blocks, kThreads, 0, stream>>>(
            tab, t.const_data_ptr<scalar_t>(), slots_t, s.mutable_data_ptr<scalar_t>(), slots_s,
            layer_squares.mutable_data_ptr<acc_t>(), it == 0, e);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
        power_cols_kernel<scalar_t, acc_t><<<col_blocks, kThreads, 0, stream>>>(
            tab, s.const_data_ptr<scalar_t>(), slots_s, t.mutable_data_ptr<scalar_t>(), slots_t,
            layer_squares.mutable_data_ptr<acc_t>(), e);
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      }
      power_finalize_kernel<scalar_t, acc_t><<<n, kThreads, 0, stream>>>(
          tab, s.const_data_ptr<scalar_t>(), slots_s, t.const_data_ptr<scalar_t>(), slots_t,
          layer_squares.mutable_data_ptr<acc_t>(), e);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      squares.push_back(layer_squares);
    }
  });
  // One device-to-host copy: every layer's norms must be finite.
  const at::Tensor host = at::cat(squares).to(at::kDouble).cpu();
  const double* h = host.const_data_ptr<double>();
  std::vector<double> ss_s(L), ss_t(L);
  for (size_t l = 0; l < L; ++l) {
    ss_s[l] = h[2 * l];
    ss_t[l] = h[2 * l + 1];
  }
  sn::check_power_iteration(op, ss_s, ss_t, weights, us, vs);
  return {u_out, v_out};
}

std::tuple<std::vector<at::Tensor>, at::Tensor> normalize_cuda(at::TensorList weights, at::TensorList us,
                                                               at::TensorList vs) {
  const char* op = "spectral_norm_normalize";
  sn::check_layers(op, weights, us, vs);
  const c10::cuda::CUDAGuard guard(weights[0].device());
  const sn::Layers layers = sn::contiguous_layers(weights, us, vs);
  const std::vector<at::Tensor>& w = layers.w;
  const std::vector<at::Tensor>& u = layers.u;
  const std::vector<at::Tensor>& v = layers.v;
  const size_t L = w.size();
  at::Tensor sigmas = at::empty({static_cast<int64_t>(L)}, w[0].options());
  std::vector<at::Tensor> out;
  for (size_t l = 0; l < L; ++l) out.push_back(at::empty(w[l].sizes(), w[l].options()));
  const auto acc_dtype = at::toOpMathType(w[0].scalar_type());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_normalize_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    for (size_t first = 0; first < L; first += kMaxLayers) {
      const int n = static_cast<int>(std::min<size_t>(kMaxLayers, L - first));
      Table<scalar_t> tab = make_table<scalar_t>(w, first, n);
      for (int k = 0; k < n; ++k) {
        tab.u[k] = u[first + k].const_data_ptr<scalar_t>();
        tab.v[k] = v[first + k].const_data_ptr<scalar_t>();
        tab.out[k] = out[first + k].mutable_data_ptr<scalar_t>();
      }
      at::Tensor slots = at::empty({tab.row_blocks[n]}, w[0].options().dtype(acc_dtype));
      sigma_rows_kernel<scalar_t, acc_t><<<tab.row_blocks[n], kThreads, 0, stream>>>(tab, slots.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      scale_kernel<scalar_t, acc_t><<<tab.elem_blocks[n], kThreads, 0, stream>>>(
          tab, slots.const_data_ptr<acc_t>(), sigmas.mutable_data_ptr<scalar_t>() + first);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  sn::check_sigmas(op, sigmas, weights, us, vs);  // one device-to-host copy
  return {out, sigmas};
}

std::vector<at::Tensor> normalize_backward_cuda(at::TensorList grads, at::TensorList weights, at::TensorList us,
                                                at::TensorList vs, const at::Tensor& sigmas_in,
                                                const at::Tensor& grad_sigmas_in) {
  const char* op = "spectral_norm_normalize_backward";
  sn::check_layers(op, weights, us, vs);
  sn::check_backward_args(op, grads, weights, sigmas_in, grad_sigmas_in);
  const c10::cuda::CUDAGuard guard(weights[0].device());
  const std::vector<at::Tensor> g = sn::contiguous_all(grads);
  const sn::Layers layers = sn::contiguous_layers(weights, us, vs);
  const std::vector<at::Tensor>& w = layers.w;
  const std::vector<at::Tensor>& u = layers.u;
  const std::vector<at::Tensor>& v = layers.v;
  const at::Tensor sigmas = sigmas_in.contiguous();
  const at::Tensor grad_sigmas = grad_sigmas_in.contiguous();
  const size_t L = w.size();
  std::vector<at::Tensor> out;
  for (size_t l = 0; l < L; ++l) out.push_back(at::empty(w[l].sizes(), w[l].options()));
  const auto acc_dtype = at::toOpMathType(w[0].scalar_type());
  const cudaStream_t stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_normalize_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    for (size_t first = 0; first < L; first += kMaxLayers) {
      const int n = static_cast<int>(std::min<size_t>(kMaxLayers, L - first));
      Table<scalar_t> tab = make_table<scalar_t>(w, first, n);
      for (int k = 0; k < n; ++k) {
        tab.g[k] = g[first + k].const_data_ptr<scalar_t>();
        tab.u[k] = u[first + k].const_data_ptr<scalar_t>();
        tab.v[k] = v[first + k].const_data_ptr<scalar_t>();
        tab.out[k] = out[first + k].mutable_data_ptr<scalar_t>();
      }
      at::Tensor slots = at::empty({tab.elem_blocks[n]}, w[0].options().dtype(acc_dtype));
      grad_dot_weight_kernel<scalar_t, acc_t><<<tab.elem_blocks[n], kThreads, 0, stream>>>(
          tab, slots.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      weight_grad_kernel<scalar_t, acc_t><<<tab.elem_blocks[n], kThreads, 0, stream>>>(
          tab, slots.const_data_ptr<acc_t>(), sigmas.const_data_ptr<scalar_t>() + first,
          grad_sigmas.const_data_ptr<scalar_t>() + first);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return out;
}

}  // namespace
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CUDA, m) {
  m.impl("spectral_norm_power_iteration", &gandyn::power_iteration_cuda);
  m.impl("spectral_norm_normalize", &gandyn::normalize_cuda);
  m.impl("spectral_norm_normalize_backward", &gandyn::normalize_backward_cuda);
}
