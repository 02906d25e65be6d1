// gandyn::build_info: which dispatch keys this build of the extension has kernels for.
#include <torch/library.h>

#include <string>
#include <vector>

namespace gandyn {

std::vector<std::string> build_info() {
  std::vector<std::string> keys{"cpu"};
#ifdef GANDYN_WITH_CUDA
  keys.emplace_back("cuda");
#endif
  return keys;
}

}  // namespace gandyn

TORCH_LIBRARY_IMPL(gandyn, CompositeExplicitAutograd, m) {
  m.impl("build_info", &gandyn::build_info);
}
