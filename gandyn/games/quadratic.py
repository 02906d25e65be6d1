"""General two-player quadratic game.

With z = (x, y) the vector field is affine, v(z) = J z + d, and J = S + K̃
splits into its symmetric part S (the potential part) and an antisymmetric
coupling K̃ = [[0, K], [−Kᵀ, 0]] (the rotational part). Player x minimizes
½xᵀS_xx x + xᵀ(S_xy + K)y + d_xᵀx and player y minimizes
½yᵀS_yy y + yᵀ(S_yx − Kᵀ)x + d_yᵀy; their own Hessian blocks S_xx, S_yy are
symmetric, as every player's Hessian is. The game is monotone iff S ⪰ 0 and
strongly monotone iff S ≻ 0; choosing S indefinite builds non-monotone games.
S, K and d may carry leading batch dimensions (a batch of independent games).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gandyn.games.base import Game


class Quadratic(Game):
    player_names = ("x", "y")

    def __init__(self, S: Tensor, K: Tensor, d: Tensor | None = None, *,
                 z0: Tensor | None = None, seed: int = 0):
        if S.dim() < 2 or S.shape[-1] != S.shape[-2]:
            raise ValueError(f"S: expected a symmetric matrix of shape (..., m+n, m+n), got {tuple(S.shape)}")
        if K.dim() < 2:
            raise ValueError(f"K: expected a coupling matrix of shape (..., m, n), got {tuple(K.shape)}")
        m, n = K.shape[-2:]
        if S.shape[-1] != m + n:
            raise ValueError(f"S: expected shape (..., {m + n}, {m + n}) for K of shape (..., {m}, {n}), "
                             f"got {tuple(S.shape)}")
        if not torch.allclose(S, S.transpose(-1, -2), atol=1e-12, rtol=1e-10):
            raise ValueError("S: expected a symmetric matrix")
        if not (torch.isfinite(S).all() and torch.isfinite(K).all()):
            raise ValueError("S, K: contain NaN or Inf")
        self.m, self.n = m, n
        batch = torch.broadcast_shapes(S.shape[:-2], K.shape[:-2])
        self.S = S.detach().expand(*batch, m + n, m + n)
        self.K = K.detach().to(S.dtype).expand(*batch, m, n)
        Kt = torch.zeros_like(self.S)
        Kt[..., :m, m:] = self.K
        Kt[..., m:, :m] = -self.K.transpose(-1, -2)
        self.J = self.S + Kt
        if d is None:
            d = torch.zeros(*batch, m + n, dtype=S.dtype, device=S.device)
        if d.shape != (*batch, m + n):
            raise ValueError(f"d: expected shape {(*batch, m + n)}, got {tuple(d.shape)}")
        self.d = d.detach().to(S.dtype)
        if z0 is None:
            g = torch.Generator().manual_seed(seed)
            z0 = torch.randn(*batch, m + n, generator=g, dtype=S.dtype).to(S.device)
        self.x = z0[..., :m].clone().requires_grad_(True)
        self.y = z0[..., m:].clone().requires_grad_(True)
        self.players = [[self.x], [self.y]]

    @classmethod
    def random(cls, m: int, n: int | None = None, *, mu: float = 0.5, L: float = 1.0,
               coupling: float = 1.0, batch: tuple[int, ...] = (), seed: int = 0,
               dtype: torch.dtype = torch.float64) -> "Quadratic":
        """S with eigenvalues uniform in [mu, L] (mu < 0 gives a non-monotone game), K with
        i.i.d. N(0, coupling²/(m+n)) entries, and a random offset d."""
        n = m if n is None else n
        g = torch.Generator().manual_seed(seed)
        Q, _ = torch.linalg.qr(torch.randn(*batch, m + n, m + n, generator=g, dtype=dtype))
        lam = mu + (L - mu) * torch.rand(*batch, m + n, generator=g, dtype=dtype)
        S = Q @ torch.diag_embed(lam) @ Q.transpose(-1, -2)
        S = (S + S.transpose(-1, -2)) / 2
        K = coupling * torch.randn(*batch, m, n, generator=g, dtype=dtype) / (m + n) ** 0.5
        d = torch.randn(*batch, m + n, generator=g, dtype=dtype)
        return cls(S, K, d, seed=seed + 1)

    def losses(self) -> list[Tensor]:
        m = self.m
        x, y = self.x.unsqueeze(-1), self.y.unsqueeze(-1)
        J, d = self.J, self.d.unsqueeze(-1)

        def quad(a, M, b):
            return (a.transpose(-1, -2) @ M @ b).squeeze(-1).squeeze(-1)

        lx = 0.5 * quad(x, J[..., :m, :m], x) + quad(x, J[..., :m, m:], y) + (d[..., :m, :] * x).sum((-1, -2))
        ly = 0.5 * quad(y, J[..., m:, m:], y) + quad(y, J[..., m:, :m], x) + (d[..., m:, :] * y).sum((-1, -2))
        return [lx.sum(), ly.sum()]

    def equilibrium(self) -> Tensor:
        """z* = −J⁻¹d (J must be invertible)."""
        return -torch.linalg.solve(self.J, self.d.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def distances(self) -> Tensor:
        z = torch.cat([self.x, self.y], -1)
        return (z - self.equilibrium()).norm(dim=-1)

    def distance_to_equilibrium(self) -> float:
        return float(self.distances().norm())
