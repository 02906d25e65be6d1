"""Build of the extension gandyn._C.

CPU kernels are always built.  CUDA kernels are built when torch is a CUDA
build and nvcc is found; GANDYN_CUDA=0 / GANDYN_CUDA=1 forces either way.
GANDYN_NO_EXT=1 skips the extension. A CUDA build of torch imports on machines without a GPU, so the CUDA code is
compiled and linked wherever nvcc exists, even where it can never run.
"""
import glob
import os
import re
import shutil
import site
import sys

from setuptools import setup


def _real_nvcc(path):
    """Follow a shell wrapper such as `exec /usr/local/cuda-13.0/bin/nvcc "$@"`."""
    path = os.path.realpath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return path
    if head.startswith(b"#!"):
        m = re.search(rb"exec\s+(\S+/bin/nvcc)\b", head)
        if m:
            return os.path.realpath(m.group(1).decode())
    return path


def _guess_cuda_home():
    if os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH"):
        return os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    nvcc = shutil.which("nvcc")
    if nvcc:
        return os.path.dirname(os.path.dirname(_real_nvcc(nvcc)))
    for cand in sorted(glob.glob("/usr/local/cuda*"), reverse=True):
        if os.path.exists(os.path.join(cand, "bin", "nvcc")):
            return cand
    return None


# torch.utils.cpp_extension reads CUDA_HOME when it is imported: set it first.
_cuda_home = _guess_cuda_home()
if _cuda_home:
    os.environ["CUDA_HOME"] = _cuda_home

import torch  # noqa: E402
from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension  # noqa: E402


def _want_cuda():
    flag = os.environ.get("GANDYN_CUDA")
    if flag is not None and flag not in ("0", "1"):
        sys.exit(f"GANDYN_CUDA must be 0 or 1, got {flag!r}")
    available = torch.version.cuda is not None and _cuda_home is not None and os.path.exists(
        os.path.join(_cuda_home, "bin", "nvcc"))
    if flag == "1" and not available:
        sys.exit("GANDYN_CUDA=1 but torch is not a CUDA build or nvcc was not found "
                 f"(torch.version.cuda={torch.version.cuda}, CUDA_HOME={_cuda_home})")
    return available if flag is None else flag == "1"


def _nvidia_wheel_includes():
    """cuBLAS/cuSPARSE headers that ATen's CUDA headers include ship in the nvidia wheels."""
    dirs = []
    for sp in site.getsitepackages() + [site.getusersitepackages()]:
        dirs += glob.glob(os.path.join(sp, "nvidia", "*", "include"))
    return sorted(d for d in set(dirs) if os.path.isdir(d))


here = os.path.dirname(os.path.abspath(__file__))
use_cuda = _want_cuda()
sources = ["csrc/ops.cpp"] + sorted(glob.glob("csrc/cpu/*.cpp"))
# Our own sources build warning-free: warnings are errors.
# -fopenmp: at::parallel_for is an inline OpenMP region in ATen's headers; without
# the flag our CPU loops would silently run on one thread.
cxx_flags = ["-O3", "-Wall", "-Werror", "-Wno-unused-function", "-fopenmp"]
link_flags = ["-fopenmp"]
define_macros = []
if use_cuda:
    sources += sorted(glob.glob("csrc/cuda/*.cu"))
    define_macros.append(("GANDYN_WITH_CUDA", None))
    if not os.environ.get("TORCH_CUDA_ARCH_LIST") and not torch.cuda.is_available():
        # Nothing to detect here: A100 and H100 natively, PTX for newer parts.
        os.environ["TORCH_CUDA_ARCH_LIST"] = "8.0;9.0+PTX"
    ext = CUDAExtension(
        "gandyn._C", sources,
        include_dirs=[os.path.join(here, "csrc")] + _nvidia_wheel_includes(),
        define_macros=define_macros,
        extra_link_args=link_flags,
        extra_compile_args={
            "cxx": cxx_flags,
            # No --use_fast_math: it flushes float32 subnormals to zero and approximates
            # division and sqrt, so GPU and CPU results would part beyond rounding.
            "nvcc": ["-O3", "--Werror", "all-warnings",
                     "-Xcompiler", "-Wall", "-Xcompiler", "-Wno-unused-function",
                     # torch's own headers trip these nvcc diagnostics; ours do not.
                     "-diag-suppress", "20012,20013,20014,20015,1394,3189,186,177"],
        },
    )
else:
    ext = CppExtension(
        "gandyn._C", sources,
        include_dirs=[os.path.join(here, "csrc")],
        extra_link_args=link_flags,
        extra_compile_args={"cxx": cxx_flags},
    )

# GANDYN_NO_EXT=1 installs the Python package alone (the Makefile does that once,
# then builds the extension in place, incrementally, with `build_ext --inplace`).
setup(
    ext_modules=[] if os.environ.get("GANDYN_NO_EXT") == "1" else [ext],
    cmdclass={"build_ext": BuildExtension.with_options(use_ninja=True)},
)
