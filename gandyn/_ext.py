"""Loading of the compiled extension gandyn._C.

Every op has a pure-PyTorch reference, so the package works without the
extension; importing gandyn then warns once and names the command that builds it.
"""
import warnings

import torch

BUILD_HINT = "pip install --no-build-isolation --no-deps -e .   (or: make build)"

try:
    from gandyn import _C  # noqa: F401  (registers the gandyn:: ops)
    AVAILABLE = True
    BACKENDS = tuple(torch.ops.gandyn.build_info())
    _ERROR = None
except ImportError as e:  # pragma: no cover - exercised in a fresh checkout
    AVAILABLE = False
    BACKENDS = ()
    _ERROR = e
    warnings.warn(
        f"gandyn: the compiled extension gandyn._C is not built ({e}); "
        f"every op falls back to its pure-PyTorch reference. Build it with: {BUILD_HINT}",
        RuntimeWarning, stacklevel=2)


def has_kernel(device: torch.device | str) -> bool:
    """True when the extension has kernels for tensors on `device`."""
    return AVAILABLE and torch.device(device).type in BACKENDS
