"""Matrix-free conjugate gradients on lists of tensors, for CGD's inner solve.

Solves M x = b for a symmetric positive definite M given only u ↦ M u.
Robust in the ways CGD needs:
  * warm start: x0 (e.g. the previous step's solution) — one extra matvec;
  * stops when ‖r‖ ≤ max(rtol·‖b‖, atol): a relative AND an absolute tolerance,
    so b = 0 (or a warm start that already solves the system) returns at once
    with zero iterations instead of dividing 0 by 0;
  * a 1-dim system converges in one iteration (the first residual update);
  * a non-positive curvature pᵀMp ≤ 0 or a non-finite value raises instead of
    returning garbage.
Arithmetic is out-of-place, so the solve is differentiable by autograd when M's
products are (gandyn.diagnostics.update_map differentiates through it).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from gandyn.optim.base import dot

Vec = list[Tensor]


def conjugate_gradient(matvec: Callable[[Vec], Vec], b: Sequence[Tensor], x0: Sequence[Tensor] | None = None,
                       *, rtol: float = 1e-6, atol: float = 1e-12, max_iter: int = 100) -> tuple[Vec, int]:
    """(x, iterations) with M x ≈ b; `iterations` counts the matvecs after the initial residual."""
    b = list(b)
    if x0 is None:
        x, r = [torch.zeros_like(t) for t in b], list(b)
    else:
        x = list(x0)
        r = torch._foreach_sub(b, matvec(x))
    tol = max(rtol * math.sqrt(float(dot(b, b).detach())), atol)
    rr = dot(r, r)
    if math.sqrt(float(rr.detach())) <= tol:
        return x, 0
    p = r
    for it in range(1, max_iter + 1):
        mp = matvec(p)
        pmp = dot(p, mp)
        curvature = float(pmp.detach())
        if not math.isfinite(curvature) or curvature <= 0:
            raise RuntimeError(f"conjugate_gradient: the matrix is not positive definite along the search "
                               f"direction (pᵀMp = {curvature:.3g}) at iteration {it}")
        alpha = rr / pmp
        x = torch._foreach_add(x, torch._foreach_mul(p, alpha))
        r = torch._foreach_sub(r, torch._foreach_mul(mp, alpha))
        rr_new = dot(r, r)
        if math.sqrt(float(rr_new.detach())) <= tol:
            return x, it
        p = torch._foreach_add(r, torch._foreach_mul(p, rr_new / rr))
        rr = rr_new
    return x, max_iter
