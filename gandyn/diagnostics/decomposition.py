"""How rotational is a game: J = S + A with S = (J + Jᵀ)/2 and A = (J − Jᵀ)/2.

S is the potential part (a gradient field's Jacobian is symmetric) and A the
rotational, Hamiltonian part (Balduzzi et al. 2018, "The Mechanics of n-Player
Differentiable Games"; Letcher et al. 2019). A potential game has A = 0, a
bilinear zero-sum game has S = 0. The number reported is the ratio ‖A‖_F/‖S‖_F
(∞ for a purely rotational game) with both Frobenius norms, and the bounded
rotation_fraction ‖A‖_F/‖J‖_F ∈ [0, 1] (‖J‖_F² = ‖S‖_F² + ‖A‖_F²), handier for logs.

For networks the norms are Hutchinson estimates: for Rademacher probes z,
E‖Sz‖² = ‖S‖_F² and E‖Az‖² = ‖A‖_F², with Sz = (Jz + Jᵀz)/2 and Az = (Jz − Jᵀz)/2
(one J and one Jᵀ product per probe).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gandyn.diagnostics.jacobian import JacobianOperator
from gandyn.games.base import Game


def decompose(J: Tensor) -> tuple[Tensor, Tensor]:
    """(S, A): symmetric and antisymmetric parts of a square matrix."""
    if not isinstance(J, Tensor) or J.dim() != 2 or J.shape[0] != J.shape[1]:
        raise ValueError(f"J: expected a square matrix, got {getattr(J, 'shape', type(J).__name__)}")
    Jt = J.transpose(0, 1)
    return (J + Jt) / 2, (J - Jt) / 2


def _norms(s: float, a: float, probes: int) -> dict[str, float]:
    j = math.hypot(s, a)
    return {"symmetric_norm": s, "antisymmetric_norm": a,
            "rotation_ratio": a / s if s > 0 else (math.inf if a > 0 else math.nan),
            "rotation_fraction": a / j if j > 0 else math.nan, "probes": probes}


def rotation(game: Game | JacobianOperator | Tensor, *, probes: int | None = None, max_dense: int = 1024,
             seed: int = 0) -> dict[str, float]:
    """{"symmetric_norm", "antisymmetric_norm", "rotation_ratio", "rotation_fraction", "probes"}.

    Exact from the dense J (for a matrix, or a game of at most `max_dense`
    parameters, unless `probes` is given); else a Hutchinson estimate with
    `probes` Rademacher vectors (default 8), and "probes" says how many.
    """
    if isinstance(game, Tensor):
        S, A = decompose(game.double())
        return _norms(float(S.norm()), float(A.norm()), 0)
    from gandyn.diagnostics.eigen import as_operator
    op = as_operator(game)
    if probes is None and op.n <= max_dense:
        return rotation(op.dense())
    probes = 8 if probes is None else probes
    if not (isinstance(probes, int) and probes >= 1):
        raise ValueError(f"probes: expected a positive integer, got {probes!r}")
    g = torch.Generator().manual_seed(seed)
    s2 = a2 = 0.0
    for _ in range(probes):
        z = (torch.randint(0, 2, (op.n,), generator=g) * 2 - 1).to(op.dtype).to(op.device)
        jz, jtz = op.matvec(z), op.rmatvec(z)
        s2 += float(((jz + jtz) / 2).double().pow(2).sum())
        a2 += float(((jz - jtz) / 2).double().pow(2).sum())
    return _norms(math.sqrt(s2 / probes), math.sqrt(a2 / probes), probes)
