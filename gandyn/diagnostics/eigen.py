"""Eigenvalues of the game Jacobian J and of the players' own Hessian blocks J_ii.

Small games: every eigenvalue, from the dense matrix (torch.linalg.eigvals /
eigvalsh in float64). Networks: a few extreme ones, matrix-free, with ARPACK
through `scipy.sparse.linalg` on a float64 LinearOperator whose products come
from `JacobianOperator`:

- J is not symmetric: `eigs`, the implicitly restarted Arnoldi method
  (Lehoucq & Sorensen), for the k eigenvalues of largest magnitude ("LM"),
  smallest real part ("SR") or largest real part ("LR").
- J_ii = ∇²_{θ_iθ_i} L_i is symmetric: `eigsh`, implicitly restarted Lanczos
  (ARPACK keeps the Lanczos basis fully reorthogonalized), for the smallest
  ("SA") or largest ("LA") algebraic or largest-magnitude ("LM") ones.

The start vector is drawn from a seeded generator, so results are reproducible.

Caveat, inherent to Arnoldi: the largest-magnitude eigenvalues converge fast,
while "SR"/"LR" converge reliably only when those eigenvalues stand out on the
hull of the spectrum. In strongly rotational games the eigenvalue of smallest
real part may sit among others of much larger imaginary part, and ARPACK can
settle on converged Ritz values that are not the extreme ones (seen on a
55-parameter quadratic game with strong coupling, even with ncv = 40). Check
"SR" results against a dense solve or a larger `ncv` when it matters.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gandyn.diagnostics.jacobian import JacobianOperator
from gandyn.games.base import Game

WHICH = ("LM", "SR", "LR")
WHICH_SYMMETRIC = ("LM", "SA", "LA")
METHODS = ("auto", "dense", "arnoldi")


def as_operator(game_or_op: Game | JacobianOperator, mode: str = "auto") -> JacobianOperator:
    """The JacobianOperator of a game (or the operator itself)."""
    if isinstance(game_or_op, JacobianOperator):
        return game_or_op
    if isinstance(game_or_op, Game):
        return JacobianOperator(game_or_op, mode=mode)
    raise TypeError(f"game: expected a Game or a JacobianOperator, got {type(game_or_op).__name__}")


def sort_eigvals(lam: Tensor, which: str) -> Tensor:
    """Order eigenvalues by `which`, best first; conjugate pairs with positive imaginary part first."""
    lam = lam.to(torch.complex128)
    key = {"LM": -lam.abs(), "SR": lam.real, "LR": -lam.real}[which]
    # lexsort: primary key `key` (rounded to merge conjugates), then −imag.
    order = np.lexsort((-lam.imag.numpy(), np.round(key.numpy(), 12)))
    return lam[torch.from_numpy(order)]


def _check_k(k: int | None, n: int, name: str = "k") -> None:
    if k is not None and not (isinstance(k, int) and 1 <= k <= n):
        raise ValueError(f"{name}: expected an integer in [1, {n}] (the number of parameters), got {k!r}")


def _start_vector(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(n)


def jacobian_eigvals(game: Game | JacobianOperator | Tensor, k: int | None = None, which: str = "LM", *,
                     method: str = "auto", mode: str = "auto", max_dense: int = 1024, tol: float = 1e-10,
                     ncv: int | None = None, maxiter: int | None = None, seed: int = 0) -> Tensor:
    """Eigenvalues of J (complex128), ordered by `which`, best first.

    `game`: a Game, a JacobianOperator, or a dense square matrix. `k=None`: all of
    them (dense). `method="auto"` uses the dense matrix up to `max_dense`
    parameters (or when k ≥ n − 1, which ARPACK cannot do) and Arnoldi above.
    """
    if which not in WHICH:
        raise ValueError(f"which: expected one of {WHICH}, got {which!r}")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    if isinstance(game, Tensor):
        if game.dim() != 2 or game.shape[0] != game.shape[1]:
            raise ValueError(f"game: expected a square matrix, got shape {tuple(game.shape)}")
        if method == "arnoldi":
            raise ValueError("method='arnoldi' needs a Game or JacobianOperator, not a dense matrix")
        _check_k(k, game.shape[0])
        lam = sort_eigvals(torch.linalg.eigvals(game.detach().cpu().double()), which)
        return lam if k is None else lam[:k]
    op = as_operator(game, mode)
    n = op.n
    _check_k(k, n)
    dense = method == "dense" or (method == "auto" and (k is None or n <= max_dense or k >= n - 1))
    if dense:
        return jacobian_eigvals(op.dense(), k, which)
    if k is None:
        raise ValueError("k: method='arnoldi' computes a few eigenvalues; give k")
    if k >= n - 1:
        raise ValueError(f"k: Arnoldi needs k < n - 1 = {n - 1}, got {k}; use method='dense'")
    from scipy.sparse.linalg import eigs
    lam = eigs(op.to_scipy(), k=k, which=which, tol=tol, ncv=ncv, maxiter=maxiter,
               v0=_start_vector(n, seed), return_eigenvectors=False)
    return sort_eigvals(torch.from_numpy(np.asarray(lam)), which)


def hessian_eigvals(game: Game | JacobianOperator, player: int, k: int | None = None, which: str = "SA", *,
                    method: str = "auto", mode: str = "auto", max_dense: int = 1024, tol: float = 1e-10,
                    ncv: int | None = None, maxiter: int | None = None, seed: int = 0) -> Tensor:
    """Eigenvalues (float64, ascending for "SA", descending for "LA"/"LM") of player `player`'s
    own Hessian block J_ii = ∇²_{θ_iθ_i} L_i. Dense up to `max_dense`, Lanczos above."""
    if which not in WHICH_SYMMETRIC:
        raise ValueError(f"which: expected one of {WHICH_SYMMETRIC}, got {which!r}")
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    op = as_operator(game, mode)
    if not (isinstance(player, int) and 0 <= player < len(op.sizes)):
        raise ValueError(f"player: expected an index in [0, {len(op.sizes)}), got {player!r}")
    m = op.sizes[player]
    _check_k(k, m)
    dense = method == "dense" or (method == "auto" and (k is None or m <= max_dense or k >= m))
    if dense:
        H = _dense_block(op, player)
        lam = torch.linalg.eigvalsh((H + H.T) / 2)  # ascending
    else:
        if k is None:
            raise ValueError("k: Lanczos computes a few eigenvalues; give k")
        if k >= m:
            raise ValueError(f"k: Lanczos needs k < {m}, got {k}; use method='dense'")
        from scipy.sparse.linalg import eigsh
        lam = eigsh(op.to_scipy(block=player), k=k, which=which, tol=tol, ncv=ncv, maxiter=maxiter,
                    v0=_start_vector(m, seed), return_eigenvectors=False)
        lam = torch.sort(torch.from_numpy(np.asarray(lam, dtype=np.float64))).values
    if which == "LA":
        lam = lam.flip(0)
    elif which == "LM":
        lam = lam[torch.argsort(lam.abs(), descending=True, stable=True)]
    return lam if k is None else lam[:k]


def _dense_block(op: JacobianOperator, player: int) -> Tensor:
    """J_ii as a dense matrix: rows of Jᵀe_r restricted to the player's columns."""
    sl = op.player_slice(player)
    rows = []
    for r in range(sl.start, sl.stop):
        e = torch.zeros(op.n, dtype=op.dtype, device=op.device)
        e[r] = 1
        rows.append(op.rmatvec(e)[sl])
    return torch.stack(rows).double().cpu()
