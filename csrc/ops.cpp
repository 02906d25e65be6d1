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
  // --- Frechet trace-sqrt ---
}
