"""Constraint sets of the players: Euclidean projections applied by every game optimizer.

In the variational-inequality view of a game (Gidel et al. 2019, §3) each player's
parameters live in a closed convex set Θ_i, and the projected methods move by
θ ← P_Θ(θ − lr·s) — the projection follows *every* move, the extrapolations of
extragradient and of extragradient-from-the-past included. A param group's
`constraint` option selects Θ:

  None                       unconstrained (the default)
  {"box": [lo, hi]}          every coordinate clipped to [lo, hi]
  {"ball": r}                the Euclidean ball of radius r around 0, the norm taken
                             over all of the group's parameters together
  a callable f               f(tensors) -> list of tensors: the user's projection of
                             the group's parameter values (out of place, so that the
                             differentiable update map can differentiate it)

The box and the ball come from configs ([players.NAME] constraint = {box = [-1.0, 1.0]});
a callable only from Python (it cannot be written to a config or a checkpoint).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor

KINDS = ("box", "ball")


def _number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    return float(value)


def check_constraint(spec, where: str = "constraint") -> None:
    """ValueError naming `where` unless spec is None, a callable, {"box": [lo, hi]} with
    lo <= hi, or {"ball": r} with r > 0."""
    if spec is None or callable(spec):
        return
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in KINDS:
        raise ValueError(f"{where}: expected None, a callable, {{'box': [lo, hi]}} or {{'ball': radius}}, "
                         f"got {spec!r}")
    (kind, arg), = spec.items()
    if kind == "box":
        if isinstance(arg, (str, bytes)) or not hasattr(arg, "__len__") or len(arg) != 2:
            raise ValueError(f"{where}.box: expected [lo, hi], got {arg!r}")
        lo, hi = _number(f"{where}.box[0]", arg[0]), _number(f"{where}.box[1]", arg[1])
        if not lo <= hi:
            raise ValueError(f"{where}.box: expected lo <= hi, got [{lo}, {hi}]")
    else:
        r = _number(f"{where}.ball", arg)
        if not math.isfinite(r) or r <= 0:
            raise ValueError(f"{where}.ball: expected a positive finite radius, got {arg!r}")


def project(spec, values: Sequence[Tensor]) -> list[Tensor]:
    """P_Θ(values) for the constraint `spec` (out of place; autograd-differentiable)."""
    values = list(values)
    if callable(spec):
        out = list(spec(values))
        if len(out) != len(values) or any(o.shape != v.shape for o, v in zip(out, values)):
            raise ValueError("constraint: the callable must return one tensor per parameter, "
                             "each of its parameter's shape")
        return out
    (kind, arg), = spec.items()
    if kind == "box":
        return [v.clamp(float(arg[0]), float(arg[1])) for v in values]
    norm = torch.sqrt(sum(torch.sum(v * v) for v in values))
    scale = torch.clamp(float(arg) / torch.clamp(norm, min=torch.finfo(norm.dtype).tiny), max=1.0)
    return [v * scale for v in values]

