"""Dynamic loss scaling for float16 games: torch.amp.GradScaler's rule, applied to the field.

float16 keeps 5 exponent bits: a backward's adjoints under 2⁻²⁴ flush to zero and those
over 65504 overflow. GradScaler hooks `.backward()` and `optimizer.step()`, which game
optimizers do not use (they take the field with `torch.autograd.grad` and differentiate
through it), so the same rule lives here, in the one place every game optimizer goes
through (GameOptimizer.field and grad_or_zeros, gandyn/optim/base.py):

- the losses are multiplied by the scale S before the field is taken, so the float16
  adjoints of the backward sit S times higher;
- the field (float32, the parameters' dtype) is multiplied by 1/S; a Jacobian–vector
  product u ↦ Jᵀu of it is taken as Jᵀ(S·u)/S, so its own backward also runs scaled
  (the recipe of PyTorch's AMP notes for gradient penalties). S is a power of two: the
  unscaling is exact;
- if any entry of a field or product is inf or NaN, the evaluation raises `Overflow` at
  once, and GameOptimizer.step skips the whole step: parameters and optimizer state are
  put back as they were at its start, S ← S·backoff_factor, and the skip is counted;
- after `growth_interval` consecutive steps without a skip, S ← S·growth_factor;
- a scale that falls below 2⁻²⁴ means the field overflows at any scale: a ValueError says
  so ("non-finite", which `gandyn run` records as divergence) instead of halving forever.

Batch norm runs in float32 inside float16 games (GANGame's hook), as NVIDIA Apex's O2 keeps
it: its second derivative (a gradient penalty on D; consensus, SGA, CGD) overflows float16
at any scale otherwise.

The defaults are GradScaler's (init_scale 2¹⁶, growth ×2, backoff ×½, interval 2000).
Undoing a step needs its starting point: a scaled step first copies the parameters and the
optimizer state (into buffers reused from step to step), one pass over them, and each
evaluation's finiteness check is one host synchronization.
A game that carries a `loss_scaler` (GANGame(precision="float16")) has its steps scaled:
`opt.step(game)` does everything, and the scaler's state is part of the game's state dict.
"""
from __future__ import annotations

import contextlib
import math
from typing import Sequence

import torch
from torch import Tensor

from gandyn import distributed


class Overflow(Exception):
    """An inf/NaN in a scaled field or product: the step is skipped (caught by GameOptimizer.step)."""


class LossScaler:
    """The scale S and its dynamics; `update(skipped)` once per optimizer step."""

    def __init__(self, init_scale: float = 2.0 ** 16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000):
        for name, value, ok, want in (
                ("init_scale", init_scale, lambda x: x > 0, "a positive finite number"),
                ("growth_factor", growth_factor, lambda x: x > 1, "a finite number > 1"),
                ("backoff_factor", backoff_factor, lambda x: 0 < x < 1, "a number in (0, 1)")):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                    or not ok(value):
                raise ValueError(f"loss_scaling.{name}: expected {want}, got {value!r}")
        if isinstance(growth_interval, bool) or not isinstance(growth_interval, int) or growth_interval < 1:
            raise ValueError(f"loss_scaling.growth_interval: expected a positive integer, got {growth_interval!r}")
        self.scale = float(init_scale)
        self.growth_factor, self.backoff_factor = float(growth_factor), float(backoff_factor)
        self.growth_interval = growth_interval
        self.good_steps = 0      # consecutive steps without a skip since the scale last changed
        self.skipped_steps = 0   # steps skipped for an overflow, in all

    def update(self, skipped: bool) -> None:
        if skipped:
            self.scale *= self.backoff_factor
            self.good_steps = 0
            self.skipped_steps += 1
            if self.scale < MIN_SCALE:
                raise ValueError(
                    f"loss_scaling: the loss scale fell to {self.scale:.3g} (below 2⁻²⁴, float16's smallest "
                    f"number) after {self.skipped_steps} skipped steps: the field is non-finite at any "
                    "scale, so the losses or the models' float16 arithmetic overflow; use precision "
                    "\"bfloat16\" (float32's range) or \"float32\"")
            return
        self.good_steps += 1
        if self.good_steps == self.growth_interval:
            self.scale *= self.growth_factor
            self.good_steps = 0

    def state_dict(self) -> dict:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped_steps": self.skipped_steps}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != {"scale", "good_steps", "skipped_steps"}:
            raise ValueError(f"state: expected a LossScaler state dict with 'scale', 'good_steps', "
                             f"'skipped_steps', got {state!r}")
        self.scale = float(state["scale"])
        self.good_steps, self.skipped_steps = int(state["good_steps"]), int(state["skipped_steps"])


#: below it every scaled adjoint of float16 is zero: scaling down further cannot help
MIN_SCALE = 2.0 ** -24

_active: list[LossScaler] = []


@contextlib.contextmanager
def scaling(scaler: LossScaler | None):
    """Within the block, fields and products are taken scaled by `scaler` (None: unscaled)."""
    if scaler is None:
        yield
        return
    _active.append(scaler)
    try:
        yield
    finally:
        _active.pop()


def current_scale() -> float | None:
    return _active[-1].scale if _active else None


def scaled(tensors: Sequence[Tensor]) -> list[Tensor]:
    """S · tensors (losses before a field, grad_outputs before a product); as is when unscaled."""
    s = current_scale()
    return list(tensors) if s is None else [t * s for t in tensors]


def unscaled(grads: Sequence[Tensor]) -> list[Tensor]:
    """grads / S, or Overflow if any entry is inf or NaN (on any rank under torchrun: every
    rank skips the same steps). Out of place, so that a field with a graph keeps it."""
    s = current_scale()
    grads = list(grads)
    if s is None or not grads:
        return grads
    # ‖g‖₁ is inf or NaN iff an entry is; one fused pass over the tensors
    norms = torch._foreach_norm([g.detach() for g in grads], 1)
    finite = bool(torch.isfinite(torch.stack(norms)).all())
    if not distributed.all_true(finite):
        raise Overflow
    return torch._foreach_mul(grads, 1.0 / s)
