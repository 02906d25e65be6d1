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
  // --- spectral normalization ---
  // --- Frechet trace-sqrt ---
}
