"""Adam's step out of place, a function of its inputs for autograd, with √v guarded at 0.

Two places differentiate through Adam's update: the base optimizers' differentiable mode
(`GameOptimizer.base_step` under update maps, gandyn.diagnostics.update_map) and the
unrolled GAN's unrolled D steps (gandyn.optim.unrolled). Both call `adam_step`. Training
steps outside them use torch's fused kernel in place (`GameOptimizer._fused_adam`) and
build no graph.

Why the guard: a gradient entry that has been exactly 0 so far (a dead unit, a coordinate
the loss does not reach) has v = 0, and √v has an infinite derivative there, which autograd
multiplies by ∂v/∂θ = 2(1 − β₂)·d·∂d/∂θ = 0: NaN. Yet the step m̂/(√v̂ + ε) is differentiable
there: v = 0 means every past d was 0, so m = 0 too and the √v̂ term enters only through
m·∂√v̂ = 0, while the kink of √v̂ = |d|/… is bounded on both sides. Its derivative is
(∂m̂/∂θ)/ε, which the guard gives by taking the root only where v > 0 (0 there, with
derivative 0). The forward values are those of the plain √: √0 = 0.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def sqrt0(x: Tensor) -> Tensor:
    """√x for x ≥ 0 whose derivative at x = 0 is 0 rather than inf (to any order of autograd)."""
    pos = x > 0
    return torch.where(pos, torch.where(pos, x, torch.ones_like(x)).sqrt(), torch.zeros_like(x))


def adam_step(m: Sequence[Tensor], v: Sequence[Tensor], vmax: Sequence[Tensor] | None,
              d: Sequence[Tensor], t: int, betas: tuple[float, float], eps: float
              ) -> tuple[list[Tensor], list[Tensor], list[Tensor] | None, list[Tensor]]:
    """One Adam update of moments (m, v) — and AMSGrad's running max vmax, when not None —
    for direction d at step count t (≥ 1, this step's); returns the new (m, v, vmax) and the
    step s = m̂/(√v̂ + ε), all new tensors (the inputs are not written).

    s is written as (bc₂/bc₁)·m/(√v + ε·bc₂) with bc₁ = 1 − β₁ᵗ, bc₂ = √(1 − β₂ᵗ): torch's
    own arrangement, one pass fewer than dividing each moment by its correction."""
    b1, b2 = betas
    m = [torch.lerp(mi, di, 1 - b1) for mi, di in zip(m, d)]
    v = [torch.addcmul(vi * b2, di, di, value=1 - b2) for vi, di in zip(v, d)]
    if vmax is not None:
        vmax = [torch.maximum(a, b) for a, b in zip(vmax, v)]
    bc1, bc2 = 1 - b1 ** t, math.sqrt(1 - b2 ** t)
    s = [mi / (sqrt0(vi) + eps * bc2) * (bc2 / bc1) for mi, vi in zip(m, v if vmax is None else vmax)]
    return m, v, vmax, s
