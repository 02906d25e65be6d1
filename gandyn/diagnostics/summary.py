"""A few scalar diagnostics worth logging every N training steps (`diagnostics_every`)."""
from __future__ import annotations

from gandyn.diagnostics.decomposition import rotation
from gandyn.diagnostics.eigen import jacobian_eigvals
from gandyn.diagnostics.jacobian import JacobianOperator
from gandyn.diagnostics.update_map import update_spectral_radius
from gandyn.games.base import Game


def summary(game: Game, optimizer=None, k: int = 6, *, max_dense: int = 1024, probes: int = 4) -> dict[str, float]:
    """Scalars at the game's current point:

    grad_norm ‖v‖; rotation_ratio ‖A‖_F/‖S‖_F of J (∞ when S = 0) and
    rotation_fraction ‖A‖_F/‖J‖_F (exact up to `max_dense`
    parameters, else a Hutchinson estimate with `probes` probes); eig_max_abs,
    eig_min_real, eig_max_real over the eigenvalues of J (all of them for small
    games, the k of largest magnitude by Arnoldi for networks); and, when an
    optimizer is given and the game has at most `max_dense` parameters,
    update_spectral_radius of its one-step update map (< 1: locally convergent).
    """
    op = JacobianOperator(game)
    small = op.n <= max_dense
    J = op.dense() if small else op
    lam = jacobian_eigvals(J) if small else jacobian_eigvals(op, min(k, op.n - 2), "LM", method="arnoldi",
                                                              tol=1e-6)
    rot = rotation(J) if small else rotation(op, probes=probes)
    out = {"grad_norm": float(op.field().double().norm()),
           "rotation_ratio": rot["rotation_ratio"],
           "rotation_fraction": rot["rotation_fraction"],
           "eig_max_abs": float(lam.abs().max()),
           "eig_min_real": float(lam.real.min()),
           "eig_max_real": float(lam.real.max())}
    if optimizer is not None and small:
        out["update_spectral_radius"] = update_spectral_radius(optimizer, game)
    return out
