"""The one check of the metrics' sample/feature inputs: a finite float matrix (n, d), as float64."""
from __future__ import annotations

from torch import Tensor


def float_matrix(op: str, name: str, x, min_rows: int, what: str = "feature matrix",
                 need: str | None = None) -> Tensor:
    """`x` as float64 if it is a finite floating-point tensor (n, d) with n ≥ `min_rows`, d ≥ 1;
    else TypeError/ValueError naming `op`, the argument `name`, and (`need`) why n ≥ `min_rows`."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got {x.dtype}")
    if x.dim() != 2 or x.shape[0] < min_rows or x.shape[1] < 1:
        need = need or f"{min_rows} {'samples' if what == 'feature matrix' else 'rows'}"
        raise ValueError(f"{op}: {name} must be a {what} (n, d) with n >= {need}, got shape {tuple(x.shape)}")
    if not bool(x.isfinite().all()):
        raise ValueError(f"{op}: {name} contains non-finite values (NaN or Inf)")
    return x.double()
