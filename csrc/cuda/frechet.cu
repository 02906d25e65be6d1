// CUDA kernel of gandyn::frechet_jacobi_eigh: one thread block per matrix of the
// batch runs the parallel-order cyclic Jacobi sweeps of csrc/frechet.h. A round's
// m/2 disjoint rotations are computed by m/2 threads, then the row pass
// (A <- J^T A, V^T <- J^T V^T) and the column pass (A <- A J) spread the (pair,
// index) updates over the whole block. Working matrices live in global memory
// (L2-resident for the small and medium d this path is for); the host steps
// before and after are shared with the CPU kernel (csrc/cpu/frechet.cpp).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>

#include "frechet.h"

namespace gandyn {
namespace frechet {
namespace {

constexpr int kThreads = 256;
// The rotations of a round sit in shared memory: (c, s, p, q) for m/2 pairs.
constexpr int64_t kMaxDim = 2048;

// Sum of v over the block; every thread gets the total. `scratch` holds kThreads / 32 values.
template <typename T>
__device__ T block_sum(T v, T* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  __syncthreads();  // scratch may still be read by the previous call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = T(0);
  for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  return total;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    jacobi_sweeps_kernel(T* __restrict__ work, T* __restrict__ vt, int d, int max_sweeps, T tol) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ T scratch[kThreads / 32];
  const int m = d + (d & 1);
  const int half = m / 2;
  T* cs = reinterpret_cast<T*>(smem_raw);
  T* ss = cs + half;
  int* ps = reinterpret_cast<int*>(ss + half);
  int* qs = ps + half;
  const int64_t dd = static_cast<int64_t>(d) * d;
  T* a = work + blockIdx.x * dd;
  T* v = vt == nullptr ? nullptr : vt + blockIdx.x * dd;

  T part = T(0);
  for (int64_t i = threadIdx.x; i < dd; i += kThreads) part += a[i] * a[i];
  const T threshold = tol * tol * block_sum(part, scratch);

  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    part = T(0);
    for (int64_t i = threadIdx.x; i < dd; i += kThreads) {
      if (i / d != i % d) part += a[i] * a[i];
    }
    // Every thread sees the same total, so the whole block leaves together.
    if (block_sum(part, scratch) <= threshold) break;
    for (int round = 0; round < m - 1; ++round) {
      for (int k = threadIdx.x; k < half; k += kThreads) {
        int p, q;
        round_robin_pair(m, round, k, &p, &q);
        ps[k] = p;
        qs[k] = q;
        if (q < d) {
          jacobi_rotation<T>(a[p * d + p], a[q * d + q], a[p * d + q], &cs[k], &ss[k]);
        }
      }
      __syncthreads();
      // Row pass: consecutive threads walk one row pair, so accesses coalesce.
      for (int64_t idx = threadIdx.x; idx < static_cast<int64_t>(half) * d; idx += kThreads) {
        const int k = static_cast<int>(idx / d);
        const int j = static_cast<int>(idx % d);
        const int p = ps[k], q = qs[k];
        if (q >= d) continue;
        rotate_pair(a + p * d + j, a + q * d + j, cs[k], ss[k]);
        if (v != nullptr) rotate_pair(v + p * d + j, v + q * d + j, cs[k], ss[k]);
      }
      __syncthreads();
      // Column pass: consecutive threads take the pairs of one row.
      for (int64_t idx = threadIdx.x; idx < static_cast<int64_t>(half) * d; idx += kThreads) {
        const int i = static_cast<int>(idx / half);
        const int k = static_cast<int>(idx % half);
        const int p = ps[k], q = qs[k];
        if (q >= d) continue;
        rotate_pair(a + i * d + p, a + i * d + q, cs[k], ss[k]);
      }
      __syncthreads();
      // Exactly zero what the rotation annihilates, instead of rounding residue.
      for (int k = threadIdx.x; k < half; k += kThreads) {
        const int p = ps[k], q = qs[k];
        if (q < d) a[p * d + q] = a[q * d + p] = T(0);
      }
      __syncthreads();
    }
  }
}

std::tuple<at::Tensor, at::Tensor> frechet_jacobi_eigh_cuda(const at::Tensor& A, int64_t max_sweeps, double tol,
                                                            bool compute_vectors) {
  const c10::cuda::CUDAGuard guard(A.device());
  at::Tensor work = jacobi_workspace(A, max_sweeps, tol);
  const int64_t batch = work.size(0);
  const int64_t d = work.size(-1);
  TORCH_CHECK(d <= kMaxDim, "frechet_jacobi_eigh: the CUDA kernel handles d <= ", kMaxDim, ", got d = ", d,
              " (use method='eigh' for larger matrices)");
  TORCH_CHECK(batch <= 2147483647, "frechet_jacobi_eigh: batch too large for one launch: ", batch);
  at::Tensor vt = compute_vectors ? jacobi_identity(work) : at::Tensor();
  if (batch > 0 && d > 1) {
    const int64_t half = (d + (d & 1)) / 2;
    AT_DISPATCH_FLOATING_TYPES(work.scalar_type(), "frechet_jacobi_eigh_cuda", [&] {
      const size_t smem = static_cast<size_t>(half) * (2 * sizeof(scalar_t) + 2 * sizeof(int));
      jacobi_sweeps_kernel<scalar_t><<<static_cast<unsigned int>(batch), kThreads, smem,
                                       at::cuda::getCurrentCUDAStream()>>>(
          work.mutable_data_ptr<scalar_t>(), compute_vectors ? vt.mutable_data_ptr<scalar_t>() : nullptr,
          static_cast<int>(d), static_cast<int>(std::min<int64_t>(max_sweeps, 1 << 30)),
          static_cast<scalar_t>(tol));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return jacobi_finish(A, work, vt, compute_vectors);
}

}  // namespace
}  // namespace frechet
}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CUDA, m) {
  m.impl("frechet_jacobi_eigh", &gandyn::frechet::frechet_jacobi_eigh_cuda);
}
