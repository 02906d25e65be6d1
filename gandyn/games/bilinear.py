"""Bilinear zero-sum game  min_x max_y  xᵀAy + bᵀx + cᵀy.

Player 0 (x) minimizes f(x, y); player 1 (y) minimizes −f(x, y). A may carry
leading batch dimensions (…, m, n): the game is then a batch of independent
games whose losses are summed, so every optimizer steps all of them at once
(the vector field of a sum of separable games is the stack of their fields).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gandyn.games.base import Game


class Bilinear(Game):
    player_names = ("x", "y")

    def __init__(self, A: Tensor, b: Tensor | None = None, c: Tensor | None = None, *,
                 x0: Tensor | None = None, y0: Tensor | None = None, seed: int = 0):
        if not isinstance(A, Tensor) or A.dim() < 2:
            raise ValueError(f"A: expected a tensor of shape (..., m, n), got "
                             f"{getattr(A, 'shape', type(A).__name__)}")
        if not A.is_floating_point():
            raise ValueError(f"A: expected a floating-point dtype, got {A.dtype}")
        if not torch.isfinite(A).all():
            raise ValueError("A: contains NaN or Inf")
        *batch, m, n = A.shape
        self.A = A.detach()
        self.b = self._vector(b, "b", (*batch, m))
        self.c = self._vector(c, "c", (*batch, n))
        g = torch.Generator().manual_seed(seed)
        x0 = torch.randn(*batch, m, generator=g, dtype=A.dtype).to(A.device) if x0 is None else x0
        y0 = torch.randn(*batch, n, generator=g, dtype=A.dtype).to(A.device) if y0 is None else y0
        self.x = self._vector(x0, "x0", (*batch, m)).clone().requires_grad_(True)
        self.y = self._vector(y0, "y0", (*batch, n)).clone().requires_grad_(True)
        self.players = [[self.x], [self.y]]

    def _vector(self, v, name, shape):
        if v is None:
            return torch.zeros(shape, dtype=self.A.dtype, device=self.A.device)
        v = torch.as_tensor(v, dtype=self.A.dtype, device=self.A.device)
        if v.shape != torch.Size(shape):
            raise ValueError(f"{name}: expected shape {tuple(shape)} to match A of shape "
                             f"{tuple(self.A.shape)}, got {tuple(v.shape)}")
        return v.detach()

    @classmethod
    def random(cls, m: int, n: int | None = None, *, batch: tuple[int, ...] = (),
               singular_values: Tensor | None = None, seed: int = 0,
               dtype: torch.dtype = torch.float64, offsets: bool = False) -> "Bilinear":
        """A = U diag(σ) Vᵀ with Haar-random U, V; σ uniform in [0.5, 2] unless given."""
        n = m if n is None else n
        g = torch.Generator().manual_seed(seed)
        k = min(m, n)
        U, _ = torch.linalg.qr(torch.randn(*batch, m, m, generator=g, dtype=dtype))
        V, _ = torch.linalg.qr(torch.randn(*batch, n, n, generator=g, dtype=dtype))
        if singular_values is None:
            s = 0.5 + 1.5 * torch.rand(*batch, k, generator=g, dtype=dtype)
        else:
            s = torch.as_tensor(singular_values, dtype=dtype).expand(*batch, k)
        A = U[..., :, :k] @ torch.diag_embed(s) @ V[..., :, :k].transpose(-1, -2)
        b = c = None
        if offsets:  # keep the game consistent: b ∈ range(A), c ∈ range(Aᵀ)
            b = A @ torch.randn(*batch, n, 1, generator=g, dtype=dtype)
            c = A.transpose(-1, -2) @ torch.randn(*batch, m, 1, generator=g, dtype=dtype)
            b, c = b.squeeze(-1), c.squeeze(-1)
        return cls(A, b, c, seed=seed + 1)

    def payoff(self) -> Tensor:
        xAy = (self.x.unsqueeze(-2) @ self.A @ self.y.unsqueeze(-1)).squeeze(-1).squeeze(-1)
        return (xAy + (self.b * self.x).sum(-1) + (self.c * self.y).sum(-1)).sum()

    def losses(self) -> list[Tensor]:
        f = self.payoff()
        return [f, -f]

    def equilibrium(self) -> tuple[Tensor, Tensor]:
        """The minimum-norm equilibrium x* = −(Aᵀ)⁺c, y* = −A⁺b."""
        At = self.A.transpose(-1, -2)
        x = -(torch.linalg.pinv(At) @ self.c.unsqueeze(-1)).squeeze(-1)
        y = -(torch.linalg.pinv(self.A) @ self.b.unsqueeze(-1)).squeeze(-1)
        return x, y

    @torch.no_grad()
    def distances(self) -> Tensor:
        """Distance of each game of the batch to its set of equilibria {Aᵀx = −c, Ay = −b}."""
        At = self.A.transpose(-1, -2)
        rx = (At @ self.x.unsqueeze(-1)).squeeze(-1) + self.c
        ry = (self.A @ self.y.unsqueeze(-1)).squeeze(-1) + self.b
        dx = (torch.linalg.pinv(At) @ rx.unsqueeze(-1)).squeeze(-1)
        dy = (torch.linalg.pinv(self.A) @ ry.unsqueeze(-1)).squeeze(-1)
        return torch.sqrt((dx ** 2).sum(-1) + (dy ** 2).sum(-1))

    def distance_to_equilibrium(self) -> float:
        return float(self.distances().norm())
