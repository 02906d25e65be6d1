// Op schemas of the extension gandyn._C: every op of the library is declared
// here, in one place. Kernels register per dispatch key in csrc/cpu/<op>.cpp
// (CPU) and csrc/cuda/<op>.cu (CUDA); autograd formulas and fake kernels live
// in gandyn/ops/<op>.py beside each op's pure-PyTorch reference.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing gandyn._C loads this library and so runs the registrations below.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(gandyn, m) {
  // Reports what this build holds, so Python can tell a CPU-only build apart.
  m.def("build_info() -> str[]");
  // --- gradient penalty ---
  // (penalty, norms) for grad of shape (B, ...): norms_i = ||grad_i|| over all
  // non-batch dims (op-math dtype), penalty = mean_i (norms_i - target)^2 (grad's dtype).
  m.def("gradient_penalty(Tensor grad, float target) -> (Tensor, Tensor)");
  // d penalty / d grad = grad_output * (2/B) * (1 - target/norms_i) * grad_i.
  m.def("gradient_penalty_backward(Tensor grad_output, Tensor grad, Tensor norms, float target) -> Tensor");
  // --- spectral normalization ---
  // Multi-tensor: every list holds one entry per layer; weights[i] (float32/float64,
  // one dtype and device) is read as the matrix W_i = weights[i].flatten(1), us[i] has
  // W_i.shape[0] entries and vs[i] W_i.shape[1]. See csrc/spectral_norm.h.
  // New (us, vs) after n power-iteration steps u = Wv/max(|Wv|,eps), v = W^T u/max(|W^T u|,eps).
  m.def("spectral_norm_power_iteration(Tensor[] weights, Tensor[] us, Tensor[] vs, int n_power_iterations, "
        "float eps) -> (Tensor[], Tensor[])");
  // (weights[i] / sigma_i for each i, sigmas) with sigma_i = us[i]^T W_i vs[i].
  m.def("spectral_norm_normalize(Tensor[] weights, Tensor[] us, Tensor[] vs) -> (Tensor[], Tensor)");
  // dL/dweights[i] = grads[i]/sigma_i + (grad_sigmas[i] - <grads[i], W_i>/sigma_i^2) us[i] vs[i]^T.
  m.def("spectral_norm_normalize_backward(Tensor[] grads, Tensor[] weights, Tensor[] us, Tensor[] vs, "
        "Tensor sigmas, Tensor grad_sigmas) -> Tensor[]");
  // --- Frechet trace-sqrt ---
  // Batched symmetric eigendecomposition of the symmetric part of A (..., d, d)
  // by parallel-order cyclic Jacobi (our kernels, CPU and CUDA): eigenvalues
  // ascending (..., d) and eigenvectors as columns (..., d, d) (empty (0,) when
  // compute_vectors is false). Stops when ||offdiag|| <= tol * ||A||_F or after
  // max_sweeps sweeps.
  m.def("frechet_jacobi_eigh(Tensor A, int max_sweeps, float tol, bool compute_vectors) -> (Tensor, Tensor)");
  // (trace, diagnostics, grad1, grad2) for symmetric PSD sigma1, sigma2 (..., d, d)
  // (symmetric parts are used): trace = Tr sqrt(S1 sigma2 S1), S1 = sqrt(sigma1),
  // eigenvalues clamped at 0. method: "eigh" (ATen/LAPACK eigh), "jacobi"
  // (frechet_jacobi_eigh; max_iter = sweeps) or "newton-schulz" (Cholesky of
  // sigma1, float32 Newton-Schulz iterations for sqrt(L^T sigma2 L) and one Newton
  // step in the input dtype; positive definite inputs; max_iter = iterations).
  // diagnostics (..., 3) = (min eigenvalue of S1 sigma2 S1, clamped negative
  // eigenvalue mass of sigma1 and of S1 sigma2 S1, rank of S1 sigma2 S1); empty
  // (0,) for newton-schulz, which computes no eigenvalues. grad1/grad2 (..., d, d):
  // d trace / d sigma1, sigma2 when with_grad, else empty (0,).
  m.def("frechet_trace_sqrt(Tensor sigma1, Tensor sigma2, str method, int max_iter, bool with_grad) -> (Tensor, Tensor, Tensor, Tensor)");
}
