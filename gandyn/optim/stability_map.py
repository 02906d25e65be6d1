"""Stability-region map: for a grid of step sizes and a set of optimizers, the fraction
of random bilinear games on which each optimizer converges.

Vectorized twice over: the games are one batch (A of shape (num_games, m, m)), and
the step-size grid is a set of param groups — copy j of the players' parameters
is its own tensor in a group with lr = lrs[j] — so one optimizer step advances
every (game, lr) pair at once. The optimizers in `METHODS` do not couple batch
entries or groups (see gandyn/optim/*.py), so this is exactly
num_games × len(lrs) independent runs. A is square with σ ∈ [0.5, 2]
(Bilinear.random), hence invertible: the unique equilibrium is 0, and a run
counts as converged when ‖z_T‖ ≤ rtol·‖z_0‖ (NaN/Inf count as diverged).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from gandyn.games import Bilinear
from gandyn.games.base import Game
from gandyn.optim import OPTIMIZERS
from gandyn.optim.base import check_positive

METHODS = ("simgd", "altgd", "extragradient", "optimistic", "consensus", "hgd")


class StepSizeGridBilinear(Game):
    """`copies` independent copies of a batch of bilinear games xᵀAy (player x minimizes,
    y maximizes), copy j's parameters in tensors of their own (one param group each).

    Layout for speed: the game index is the innermost (contiguous) dimension — x_j has
    shape (m, B), A is kept as (m, n, B) — and the payoff is contracted by hand, one
    multiply-add per column of A, so every kernel runs over long contiguous rows
    instead of rows of length m (for m = 2 that is many times faster than a batched
    matmul or a broadcast product over (..., m, n))."""

    player_names = ("x", "y")

    def __init__(self, A: Tensor, x0: Tensor, y0: Tensor, copies: int):
        """A: (B, m, n); x0: (B, m); y0: (B, n) — the usual batched Bilinear layout."""
        self.A_t = A.detach().permute(1, 2, 0).contiguous()
        self.xs = [x0.detach().t().contiguous().requires_grad_(True) for _ in range(copies)]
        self.ys = [y0.detach().t().contiguous().requires_grad_(True) for _ in range(copies)]
        self.players = [self.xs, self.ys]

    def losses(self) -> list[Tensor]:
        x, y = torch.stack(self.xs), torch.stack(self.ys)  # (copies, m, B), (copies, n, B)
        Ay = sum(self.A_t[:, j, :] * y[:, j:j + 1, :] for j in range(self.A_t.shape[1]))
        f = (x * Ay).sum()
        return [f, -f]

    @torch.no_grad()
    def norms(self) -> Tensor:
        """‖(x, y)‖ per (copy, game), shape (copies, B): the distance to the equilibrium 0."""
        return torch.sqrt((torch.stack(self.xs) ** 2).sum(-2) + (torch.stack(self.ys) ** 2).sum(-2))


def stability_map(lrs: Sequence[float], methods: Sequence[str] = METHODS, *, num_games: int = 10_000,
                  m: int = 2, steps: int = 500, rtol: float = 1e-3, gamma: float = 1.0, seed: int = 0,
                  device: str = "cpu", dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Fraction of games converged, shape (len(methods), len(lrs)).

    Every cell uses the same games (A = U diag(σ) Vᵀ, Haar U, V, σ ~ U[0.5, 2]) and
    starting points (N(0, I)). `gamma` is consensus's γ.
    """
    unknown = [k for k in methods if k not in METHODS]
    if unknown or not methods:
        raise ValueError(f"methods: expected a non-empty subset of {METHODS} (optimizers that keep "
                         f"batch entries independent), got {list(methods)}")
    lrs = [check_positive("lrs", lr) for lr in lrs]
    if not lrs:
        raise ValueError("lrs: expected at least one step size")
    for name, val in (("num_games", num_games), ("m", m), ("steps", steps)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ValueError(f"{name}: expected a positive int, got {val!r}")
    check_positive("rtol", rtol)
    proto = Bilinear.random(m, batch=(num_games,), seed=seed, dtype=dtype)
    A, x0, y0 = proto.A.to(device), proto.x.detach().to(device), proto.y.detach().to(device)
    out = np.zeros((len(methods), len(lrs)))
    # Each kernel touches ~1e5 numbers: one thread is as fast as two, and on a loaded
    # machine an OpenMP team that waits for a busy core makes every op 100× slower.
    # Converging runs underflow into denormals, which x86 computes at a crawl: flush them.
    threads = torch.get_num_threads()
    torch.set_flush_denormal(True)
    torch.set_num_threads(1)
    try:
        _sweep(out, lrs, methods, A, x0, y0, steps, rtol, gamma)
    finally:
        torch.set_num_threads(threads)
        torch.set_flush_denormal(False)
    return out


def _sweep(out, lrs, methods, A, x0, y0, steps, rtol, gamma) -> None:
    for i, name in enumerate(methods):
        game = StepSizeGridBilinear(A, x0, y0, len(lrs))
        groups = [{"params": [p], "player": k, "lr": lr}
                  for j, lr in enumerate(lrs) for k, p in ((0, game.xs[j]), (1, game.ys[j]))]
        opt = OPTIMIZERS[name](groups, lr=lrs[0], **({"gamma": gamma} if name == "consensus" else {}))
        d0 = game.norms()
        for _ in range(steps):
            opt.step(game)
        converged = game.norms() <= rtol * d0  # NaN compares False
        out[i] = converged.double().mean(-1).cpu().numpy()


class RotationGames(Game):
    """A batch of 2-D linear games, one per entry of `a`, `b`: player x minimizes
    a·x²/2 + b·xy, player y minimizes a·y²/2 − b·xy. The field is v = (ax + by, ay − bx),
    J = [[a, b], [−b, a]], eigenvalues a ± ib: every eigenvalue angle from potential
    (b = 0) to bilinear (a = 0) games."""

    player_names = ("x", "y")

    def __init__(self, a: Tensor, b: Tensor):
        self.a, self.b = a.detach(), b.detach()
        self.x = torch.ones_like(self.a).requires_grad_(True)
        self.y = torch.ones_like(self.a).requires_grad_(True)
        self.players = [[self.x], [self.y]]

    def losses(self) -> list[Tensor]:
        xy = self.b * self.x * self.y
        return [(self.a * self.x ** 2 / 2 + xy).sum(), (self.a * self.y ** 2 / 2 - xy).sum()]

    @torch.no_grad()
    def norms(self) -> Tensor:
        return torch.hypot(self.x, self.y)  # no squares: they underflow long before the norm does


RATE_MEASURED = ("simgd", "altgd", "extragradient", "extragradient-past", "optimistic", "consensus")


def contraction_rates(method: str, scaled_steps: Sequence[float], angles: Sequence[float], *,
                      steps: int = 160, gamma: float = 1.0) -> np.ndarray:
    """Measured per-step contraction rate (‖z_T‖ / ‖z_{T/2}‖)^{2/T} (on envelopes, see below) of `method` (lr = 1, so
    consensus's `gamma` is its γ/η) on the linear game whose Jacobian has eigenvalues
    η|λ|·e^{±iφ}, for every φ in `angles` (radians; 0: potential, π/2: bilinear) and η|λ| in
    `scaled_steps`; shape (len(angles), len(scaled_steps)). A run that underflows to 0
    reads 0; one that overflows, inf. Compare with `gandyn.optim.linear_rates.linear_rate`."""
    if method not in RATE_MEASURED:
        raise ValueError(f"method: expected one of {RATE_MEASURED}, got {method!r}")
    r = np.asarray([check_positive("scaled_steps", s) for s in scaled_steps], dtype=float)
    phi = np.asarray(angles, dtype=float)
    if r.size == 0 or phi.size == 0 or not np.all(np.isfinite(phi)):
        raise ValueError("scaled_steps, angles: expected non-empty lists of finite numbers")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 2:
        raise ValueError(f"steps: expected an int >= 2, got {steps!r}")
    R, P = np.meshgrid(r, phi)
    game = RotationGames(torch.from_numpy(R * np.cos(P)), torch.from_numpy(R * np.sin(P)))
    opt = OPTIMIZERS[method](game.players, lr=1.0, **({"gamma": gamma} if method == "consensus" else {}))
    # Non-normal maps (AltGD) rotate the iterate along an ellipse, so ‖z_t‖ oscillates
    # around ρᵗ: compare the envelopes, the largest norms of two windows `half` steps apart.
    half, window = steps // 2, max(1, steps // 8)
    norms = []
    for _ in range(steps):
        opt.step(game)
        norms.append(game.norms())
    norms = torch.stack(norms).numpy()
    late, early = norms[-window:].max(0), norms[-half - window:-half].max(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(early == 0, 0.0, (late / early) ** (1.0 / half))
    return np.nan_to_num(rate, nan=np.inf)
