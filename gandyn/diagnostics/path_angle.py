"""The path-angle of Berard et al. (ICLR 2020), "A Closer Look at the Optimization
Landscapes of Generative Adversarial Networks", for a finished run.

Along the segment θ_α = θ_0 + α(θ_1 − θ_0) from initialization θ_0 to the end
point θ_1, the cosine between the vector field v(θ_α) and the path direction
θ_1 − θ_0, for the whole game and for each player separately, and ‖v(θ_α)‖.
A potential (minimization) landscape gives a cosine that stays positive and
shrinks smoothly to 0 at α = 1; rotation shows as a bump of the cosine that
changes sign around α = 1 while ‖v‖ stays small. The eigenvalues of J at the
end point complete the picture.
"""
from __future__ import annotations

import torch
from torch import Tensor

from gandyn.diagnostics.eigen import jacobian_eigvals
from gandyn.games.base import Game


def _cosine(a: Tensor, b: Tensor) -> float:
    na, nb = a.norm(), b.norm()
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else float("nan")


def path_angle(game: Game, start: Tensor, end: Tensor | None = None, *, alphas=None, k: int | None = 20,
               **eig_options) -> dict:
    """{"alpha", "cosine", "player_cosines", "grad_norm", "eigvals"} along θ_0 → θ_1.

    start, end: flat parameter vectors (as `game.flat_params()`); end defaults to
    the game's current parameters. alphas: the points (default 41 in [0, 1.2],
    a little past the end as in the paper). k: how many eigenvalues of J at the
    end point (largest magnitude; None: all, dense), as [re, im] pairs. The game
    is left at its parameters from before the call.
    """
    saved = game.flat_params()
    n = saved.numel()
    end = saved if end is None else end
    for name, t in (("start", start), ("end", end)):
        if not isinstance(t, Tensor) or t.shape != (n,):
            raise ValueError(f"{name}: expected a flat tensor of shape ({n},), got "
                             f"{getattr(t, 'shape', type(t).__name__)}")
        if not torch.isfinite(t).all():
            raise ValueError(f"{name}: contains NaN or Inf")
    alphas = torch.linspace(0, 1.2, 41, dtype=torch.float64) if alphas is None else torch.as_tensor(
        alphas, dtype=torch.float64)
    direction = (end - start).double()
    sizes = [sum(p.numel() for p in ps) for ps in game.players]
    bounds = torch.tensor([0] + sizes).cumsum(0).tolist()
    out = {"alpha": alphas.tolist(), "cosine": [], "grad_norm": [], "player_cosines": [],
           "player_names": list(game.player_names)}
    try:
        for a in alphas.tolist():
            game.set_flat_params((start.double() + a * direction).to(saved.dtype))
            v = game.flat_vector_field().detach().double()
            out["cosine"].append(_cosine(v, direction))
            out["grad_norm"].append(float(v.norm()))
            out["player_cosines"].append([_cosine(v[lo:hi], direction[lo:hi])
                                          for lo, hi in zip(bounds[:-1], bounds[1:])])
        game.set_flat_params(end.to(saved.dtype))
        lam = jacobian_eigvals(game, k, "LM", **eig_options) if k is None or k < n else jacobian_eigvals(game)
        out["eigvals"] = [[float(z.real), float(z.imag)] for z in lam]
    finally:
        game.set_flat_params(saved)
    return out
