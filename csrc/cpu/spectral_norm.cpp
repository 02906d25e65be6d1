// CPU kernels of the multi-tensor spectral normalization (float32/float64):
//   gandyn::spectral_norm_power_iteration   new (u, v) of every layer
//   gandyn::spectral_norm_normalize         W / sigma and sigma = u^T W v of every layer
//   gandyn::spectral_norm_normalize_backward dL/dW with u, v held constant
// All layers go through one at::parallel_for per half-step: every layer's rows (or
// columns) are cut into tasks of about equal work, and the threads share the tasks of all
// layers. The per-element and per-row arithmetic is spectral_norm.h's.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <vector>

#include "cpu/multiversion.h"
#include "spectral_norm.h"

namespace gandyn {
namespace {

// A task should hold about this many weight entries to be worth a thread.
constexpr int64_t kGrainElements = 32768;

// Every layer's rows numbered one after the other: layer l owns [start[l], start[l + 1]).
std::vector<int64_t> prefix_starts(const std::vector<at::Tensor>& w, bool rows) {
  std::vector<int64_t> start(w.size() + 1, 0);
  for (size_t l = 0; l < w.size(); ++l) start[l + 1] = start[l] + (rows ? sn::rows_of(w[l]) : sn::cols_of(w[l]));
  return start;
}

// A piece of one layer's rows (or columns) [begin, end): the unit of parallel work.
struct Task {
  size_t layer;
  int64_t begin;
  int64_t end;
};

// Splits every layer's rows (rows = true) or columns into pieces of about kGrainElements
// weight entries (at least min_len lines), so that tasks weigh about the same whatever
// the layers' shapes, and at::parallel_for can share them evenly among threads.
std::vector<Task> make_tasks(const std::vector<at::Tensor>& w, bool rows, int64_t min_len) {
  std::vector<Task> tasks;
  for (size_t l = 0; l < w.size(); ++l) {
    const int64_t len = rows ? sn::rows_of(w[l]) : sn::cols_of(w[l]);
    const int64_t other = rows ? sn::cols_of(w[l]) : sn::rows_of(w[l]);
    const int64_t piece = std::max<int64_t>(min_len, kGrainElements / other);
    for (int64_t b = 0; b < len; b += piece) tasks.push_back({l, b, std::min(len, b + piece)});
  }
  return tasks;
}

// Calls f(layer, begin, end) for every task, in parallel over all layers at once.
template <typename F>
void parallel_tasks(const std::vector<Task>& tasks, const F& f) {
  at::parallel_for(0, static_cast<int64_t>(tasks.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) f(tasks[k].layer, tasks[k].begin, tasks[k].end);
  });
}

// The hot loops, built for AVX2 and the baseline target (multiversion.h); each inlines
// the shared arithmetic of spectral_norm.h.

// sum_k a_k b_k
GANDYN_CPU_HOT float row_dot(const float* a, const float* b, int64_t n) { return sn::dot<float>(a, b, n); }
GANDYN_CPU_HOT double row_dot(const double* a, const double* b, int64_t n) { return sn::dot<double>(a, b, n); }

// t[0:n] += sum_i u_i W[i, 0:n] over `rows` rows of stride ld: one column piece of t = W^T u.
// Four rows per sweep, so t is loaded and stored once per four rows rather than per row.
template <typename T>
inline void transposed_matvec_impl(const T* W, int64_t ld, const T* u, int64_t rows, T* t, int64_t n) {
  int64_t i = 0;
  for (; i + 4 <= rows; i += 4) {
    const T u0 = u[i], u1 = u[i + 1], u2 = u[i + 2], u3 = u[i + 3];
    const T* w0 = W + i * ld;
    const T* w1 = w0 + ld;
    const T* w2 = w1 + ld;
    const T* w3 = w2 + ld;
    for (int64_t j = 0; j < n; ++j) t[j] += ((u0 * w0[j] + u1 * w1[j]) + (u2 * w2[j] + u3 * w3[j]));
  }
  for (; i < rows; ++i) {
    const T ui = u[i];
    const T* wi = W + i * ld;
    for (int64_t j = 0; j < n; ++j) t[j] += ui * wi[j];
  }
}
GANDYN_CPU_HOT void transposed_matvec(const float* W, int64_t ld, const float* u, int64_t rows, float* t, int64_t n) {
  transposed_matvec_impl(W, ld, u, rows, t, n);
}
GANDYN_CPU_HOT void transposed_matvec(const double* W, int64_t ld, const double* u, int64_t rows, double* t,
                                     int64_t n) {
  transposed_matvec_impl(W, ld, u, rows, t, n);
}

// out = w / sigma
template <typename T>
inline void scale_impl(const T* w, T* out, T sigma, int64_t n) {
  for (int64_t k = 0; k < n; ++k) out[k] = sn::scaled_weight<T, T>(w[k], sigma);
}
GANDYN_CPU_HOT void scale(const float* w, float* out, float sigma, int64_t n) { scale_impl(w, out, sigma, n); }
GANDYN_CPU_HOT void scale(const double* w, double* out, double sigma, int64_t n) { scale_impl(w, out, sigma, n); }

// One row of dL/dW: out_j = g_j / sigma + (coefficient u_i) v_j
template <typename T>
inline void weight_grad_row_impl(const T* g, const T* v, T* out, T sigma, T coefficient_times_u_i, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = sn::weight_grad_entry<T, T>(g[j], sigma, coefficient_times_u_i, v[j]);
}
GANDYN_CPU_HOT void weight_grad_row(const float* g, const float* v, float* out, float sigma, float cu, int64_t n) {
  weight_grad_row_impl(g, v, out, sigma, cu, n);
}
GANDYN_CPU_HOT void weight_grad_row(const double* g, const double* v, double* out, double sigma, double cu,
                                   int64_t n) {
  weight_grad_row_impl(g, v, out, sigma, cu, n);
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>> power_iteration_cpu(at::TensorList weights,
                                                                                 at::TensorList us, at::TensorList vs,
                                                                                 int64_t n_power_iterations,
                                                                                 double eps) {
  const char* op = "spectral_norm_power_iteration";
  sn::check_layers(op, weights, us, vs);
  sn::check_scalars(op, n_power_iterations, eps);
  const std::vector<at::Tensor> w = sn::contiguous_all(weights);
  const size_t L = w.size();
  // u and v are updated in fresh tensors: s = W v is written into u, then normalized;
  // t = W^T u into v.
  std::vector<at::Tensor> u_out, v_out;
  for (size_t l = 0; l < L; ++l) {
    u_out.push_back(us[l].clone(at::MemoryFormat::Contiguous));
    v_out.push_back(vs[l].clone(at::MemoryFormat::Contiguous));
  }
  std::vector<double> worst_s(L, 0.0), worst_t(L, 0.0);  // a non-finite sum of squares, if any, sticks
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_power_iteration_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    std::vector<const scalar_t*> W(L);
    std::vector<scalar_t*> U(L), V(L);
    std::vector<int64_t> cols(L), rows(L);
    for (size_t l = 0; l < L; ++l) {
      W[l] = w[l].const_data_ptr<scalar_t>();
      U[l] = u_out[l].mutable_data_ptr<scalar_t>();
      V[l] = v_out[l].mutable_data_ptr<scalar_t>();
      rows[l] = sn::rows_of(w[l]);
      cols[l] = sn::cols_of(w[l]);
    }
    // Normalizes x (n entries) in place; returns the sum of squares it divided by.
    const auto normalize = [&](scalar_t* x, int64_t n) {
      acc_t ss = 0;
      for (int64_t k = 0; k < n; ++k) ss += static_cast<acc_t>(x[k]) * static_cast<acc_t>(x[k]);
      const acc_t d = sn::norm_denominator<acc_t>(ss, static_cast<acc_t>(eps));
      for (int64_t k = 0; k < n; ++k) x[k] = static_cast<scalar_t>(sn::normalized_entry<acc_t>(x[k], d));
      return static_cast<double>(ss);
    };
    const auto note = [](double& worst, double ss) {
      if (std::isfinite(worst)) worst = ss;
    };
    const std::vector<Task> row_tasks = make_tasks(w, /*rows=*/true, 1);
    // Column pieces of >= 1024 entries: each row contributes one long contiguous run.
    const std::vector<Task> col_tasks = make_tasks(w, /*rows=*/false, 1024);
    for (int64_t it = 0; it < n_power_iterations; ++it) {
      // Half-step 1, all layers: s = W v (one dot per row), then u = s / max(||s||, eps).
      parallel_tasks(row_tasks, [&](size_t l, int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) U[l][i] = row_dot(W[l] + i * cols[l], V[l], cols[l]);
      });
      for (size_t l = 0; l < L; ++l) note(worst_s[l], normalize(U[l], rows[l]));
      // Half-step 2, all layers: t = W^T u over column blocks (row-major sweeps), then v = t / max(||t||, eps).
      parallel_tasks(col_tasks, [&](size_t l, int64_t j0, int64_t j1) {
        scalar_t* t = V[l];
        std::fill(t + j0, t + j1, scalar_t(0));
        transposed_matvec(W[l] + j0, cols[l], U[l], rows[l], t + j0, j1 - j0);
      });
      for (size_t l = 0; l < L; ++l) note(worst_t[l], normalize(V[l], cols[l]));
    }
  });
  sn::check_power_iteration(op, worst_s, worst_t, weights, us, vs);
  return {u_out, v_out};
}

std::tuple<std::vector<at::Tensor>, at::Tensor> normalize_cpu(at::TensorList weights, at::TensorList us,
                                                              at::TensorList vs) {
  const char* op = "spectral_norm_normalize";
  sn::check_layers(op, weights, us, vs);
  const sn::Layers layers = sn::contiguous_layers(weights, us, vs);
  const std::vector<at::Tensor>& w = layers.w;
  const std::vector<at::Tensor>& u = layers.u;
  const std::vector<at::Tensor>& v = layers.v;
  const size_t L = w.size();
  const std::vector<int64_t> row_start = prefix_starts(w, /*rows=*/true);
  const std::vector<Task> row_tasks = make_tasks(w, /*rows=*/true, 1);
  at::Tensor sigmas = at::empty({static_cast<int64_t>(L)}, w[0].options());
  std::vector<at::Tensor> out;
  for (size_t l = 0; l < L; ++l) out.push_back(at::empty(w[l].sizes(), w[l].options()));
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_normalize_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    // sigma_l = sum_i u_i (W v)_i: per-row terms in parallel, summed per layer in order.
    std::vector<acc_t> terms(static_cast<size_t>(row_start.back()));
    parallel_tasks(row_tasks, [&](size_t l, int64_t i0, int64_t i1) {
      const scalar_t* W = w[l].const_data_ptr<scalar_t>();
      const scalar_t* U = u[l].const_data_ptr<scalar_t>();
      const scalar_t* V = v[l].const_data_ptr<scalar_t>();
      const int64_t cols = sn::cols_of(w[l]);
      for (int64_t i = i0; i < i1; ++i) {
        terms[row_start[l] + i] = static_cast<acc_t>(U[i]) * static_cast<acc_t>(row_dot(W + i * cols, V, cols));
      }
    });
    scalar_t* S = sigmas.mutable_data_ptr<scalar_t>();
    for (size_t l = 0; l < L; ++l) {
      acc_t s = 0;
      for (int64_t r = row_start[l]; r < row_start[l + 1]; ++r) s += terms[r];
      S[l] = static_cast<scalar_t>(s);
    }
    sn::check_sigmas(op, sigmas, weights, us, vs);
    parallel_tasks(row_tasks, [&](size_t l, int64_t i0, int64_t i1) {
      const int64_t cols = sn::cols_of(w[l]);
      const acc_t sigma = static_cast<acc_t>(S[l]);
      const scalar_t* W = w[l].const_data_ptr<scalar_t>() + i0 * cols;
      scalar_t* O = out[l].mutable_data_ptr<scalar_t>() + i0 * cols;
      const int64_t n = (i1 - i0) * cols;
      scale(W, O, static_cast<scalar_t>(sigma), n);
    });
  });
  return {out, sigmas};
}

std::vector<at::Tensor> normalize_backward_cpu(at::TensorList grads, at::TensorList weights, at::TensorList us,
                                               at::TensorList vs, const at::Tensor& sigmas_in,
                                               const at::Tensor& grad_sigmas_in) {
  const char* op = "spectral_norm_normalize_backward";
  sn::check_layers(op, weights, us, vs);
  sn::check_backward_args(op, grads, weights, sigmas_in, grad_sigmas_in);
  const std::vector<at::Tensor> g = sn::contiguous_all(grads);
  const sn::Layers layers = sn::contiguous_layers(weights, us, vs);
  const std::vector<at::Tensor>& w = layers.w;
  const std::vector<at::Tensor>& u = layers.u;
  const std::vector<at::Tensor>& v = layers.v;
  const at::Tensor sigmas = sigmas_in.contiguous();
  const at::Tensor grad_sigmas = grad_sigmas_in.contiguous();
  const size_t L = w.size();
  const std::vector<int64_t> row_start = prefix_starts(w, /*rows=*/true);
  const std::vector<Task> row_tasks = make_tasks(w, /*rows=*/true, 1);
  std::vector<at::Tensor> out;
  for (size_t l = 0; l < L; ++l) out.push_back(at::empty(w[l].sizes(), w[l].options()));
  AT_DISPATCH_FLOATING_TYPES(w[0].scalar_type(), "spectral_norm_normalize_backward_cpu", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    // <G, W> per layer: per-row dots in parallel, summed per layer in order.
    std::vector<acc_t> terms(static_cast<size_t>(row_start.back()));
    parallel_tasks(row_tasks, [&](size_t l, int64_t i0, int64_t i1) {
      const int64_t cols = sn::cols_of(w[l]);
      const scalar_t* G = g[l].const_data_ptr<scalar_t>();
      const scalar_t* W = w[l].const_data_ptr<scalar_t>();
      for (int64_t i = i0; i < i1; ++i) terms[row_start[l] + i] = row_dot(G + i * cols, W + i * cols, cols);
    });
    const scalar_t* S = sigmas.const_data_ptr<scalar_t>();
    const scalar_t* GS = grad_sigmas.const_data_ptr<scalar_t>();
    std::vector<acc_t> coef(L);
    for (size_t l = 0; l < L; ++l) {
      acc_t c = 0;
      for (int64_t r = row_start[l]; r < row_start[l + 1]; ++r) c += terms[r];
      coef[l] = sn::backward_coefficient<acc_t>(GS[l], c, S[l]);
    }
    parallel_tasks(row_tasks, [&](size_t l, int64_t i0, int64_t i1) {
      const int64_t cols = sn::cols_of(w[l]);
      const acc_t sigma = static_cast<acc_t>(S[l]);
      const scalar_t* U = u[l].const_data_ptr<scalar_t>();
      const scalar_t* V = v[l].const_data_ptr<scalar_t>();
      for (int64_t i = i0; i < i1; ++i) {
        const scalar_t* G = g[l].const_data_ptr<scalar_t>() + i * cols;
        scalar_t* O = out[l].mutable_data_ptr<scalar_t>() + i * cols;
        weight_grad_row(G, V, O, static_cast<scalar_t>(sigma), static_cast<scalar_t>(coef[l] * static_cast<acc_t>(U[i])),
                        cols);
      }
    });
  });
  return out;
}

}  // namespace
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CPU, m) {
  m.impl("spectral_norm_power_iteration", &gandyn::power_iteration_cpu);
  m.impl("spectral_norm_normalize", &gandyn::normalize_cpu);
  m.impl("spectral_norm_normalize_backward", &gandyn::normalize_backward_cpu);
}
