"""Streaming feature statistics (mean, covariance) for Fréchet distances.

State: the count n, the mean μ (as shift K + relative mean) and the centred scatter M2 = Σᵢ (xᵢ − μ)(xᵢ − μ)ᵀ, all in
float64 whatever the features' dtype. Batches and shards combine with the pairwise
update of Chan, Golub & LeVeque (1979):

    n = n_a + n_b,   δ = μ_b − μ_a,   μ = μ_a + δ·n_b/n,   M2 = M2_a + M2_b + δδᵀ·n_a·n_b/n

which never forms Σ xxᵀ − n μμᵀ, the naive formula that loses every digit the mean's
magnitude takes (features with a large common offset). Means are also kept relative to a
shift K (the first sample seen), so δ is computed from numbers of the data's spread, not
of its offset ("shifted data", Chan et al.): a large common offset then costs no digits
in the merge term either. Merging is exact in arithmetic and order-independent up to
rounding.

Convention: `cov` = M2 / (n − 1) (unbiased, N−1; numpy.cov's default, pytorch-fid's).
Across processes, `all_reduce()` gathers every rank's (n, μ, M2) with torch.distributed
and merges them in rank order, so every rank ends with the same statistics.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor

from gandyn.distributed import collective_device

__all__ = ["FeatureStats"]


class FeatureStats:
    """Running mean and covariance (N−1) of d-dimensional features, in float64."""

    def __init__(self, dim: int, device: torch.device | str = "cpu"):
        if not isinstance(dim, int) or dim < 1:
            raise ValueError(f"FeatureStats: dim must be a positive int, got {dim!r}")
        self.dim = dim
        self.n = 0
        self.shift = torch.zeros(dim, dtype=torch.float64, device=device)
        self.rel_mean = torch.zeros(dim, dtype=torch.float64, device=device)  # mean - shift
        self.m2 = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    @property
    def device(self) -> torch.device:
        return self.m2.device

    @torch.no_grad()
    def update(self, x: Tensor) -> "FeatureStats":
        """Add the rows of x (n, d) (any floating dtype; accumulated in float64)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"FeatureStats.update: x must be a feature matrix (n, {self.dim}), got {shape}")
        if not x.is_floating_point():
            raise TypeError(f"FeatureStats.update: x must be floating point, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("FeatureStats.update: x contains non-finite values (NaN or Inf)")
        if x.shape[0] == 0:
            return self
        x = x.to(device=self.device, dtype=torch.float64)
        if self.n == 0:
            self.shift = x[0].clone()
        xs = x - self.shift
        mean = xs.mean(0)
        c = xs - mean
        self._merge(x.shape[0], self.shift, mean, c.T @ c)
        return self

    def merge(self, other: "FeatureStats") -> "FeatureStats":
        """Fold other's statistics into self (Chan's pairwise update); returns self."""
        if not isinstance(other, FeatureStats) or other.dim != self.dim:
            raise ValueError(f"FeatureStats.merge: other must be a FeatureStats of dim {self.dim}, got "
                             f"{getattr(other, 'dim', type(other).__name__)}")
        self._merge(other.n, other.shift.to(self.device), other.rel_mean.to(self.device), other.m2.to(self.device))
        return self

    def _merge(self, n_b: int, shift_b: Tensor, rel_mean_b: Tensor, m2_b: Tensor) -> None:
        if n_b == 0:
            return
        if self.n == 0:
            self.n, self.shift, self.rel_mean, self.m2 = n_b, shift_b.clone(), rel_mean_b.clone(), m2_b.clone()
            return
        n_a = self.n
        n = n_a + n_b
        # Shifts of nearby data differ exactly (Sterbenz), so δ keeps the spread's digits.
        delta = (shift_b - self.shift) + (rel_mean_b - self.rel_mean)
        self.rel_mean = self.rel_mean + delta * (n_b / n)
        self.m2 = self.m2 + m2_b + torch.outer(delta, delta) * (n_a * n_b / n)
        self.n = n

    @property
    def mean(self) -> Tensor:
        if self.n == 0:
            raise ValueError("FeatureStats.mean: no samples yet")
        return self.shift + self.rel_mean

    @property
    def cov(self) -> Tensor:
        """M2 / (n − 1): the unbiased (N−1) sample covariance, float64 (d, d)."""
        if self.n < 2:
            raise ValueError(f"FeatureStats.cov: the N-1 covariance needs n >= 2 samples, have {self.n}")
        return self.m2 / (self.n - 1)

    def pack(self) -> Tensor:
        """(n, K, μ − K, M2) as one float64 vector of 1 + 2d + d² entries (what all_reduce sends)."""
        return torch.cat([torch.tensor([float(self.n)], dtype=torch.float64, device=self.device),
                          self.shift, self.rel_mean, self.m2.reshape(-1)])

    @classmethod
    def unpack(cls, packed: Tensor, dim: int) -> "FeatureStats":
        size = 1 + 2 * dim + dim * dim
        if packed.shape != (size,):
            raise ValueError(f"FeatureStats.unpack: expected {size} entries for dim {dim}, "
                             f"got shape {tuple(packed.shape)}")
        packed = packed.to(torch.float64)
        s = cls(dim, device=packed.device)
        s.n = int(round(float(packed[0])))
        s.shift = packed[1:1 + dim].clone()
        s.rel_mean = packed[1 + dim:1 + 2 * dim].clone()
        s.m2 = packed[1 + 2 * dim:].reshape(dim, dim).clone()
        return s

    @classmethod
    def merge_all(cls, parts: list["FeatureStats"]) -> "FeatureStats":
        """One FeatureStats from shards, merged in list order."""
        if not parts:
            raise ValueError("FeatureStats.merge_all: parts must be a non-empty list")
        out = cls(parts[0].dim, device=parts[0].device)
        for p in parts:
            out.merge(p)
        return out

    def all_reduce(self, group=None) -> "FeatureStats":
        """Replace self by the merge of every rank's statistics (in rank order) when
        torch.distributed is initialized; a no-op otherwise. Returns self."""
        if not (dist.is_available() and dist.is_initialized()):
            return self
        packed = self.pack().to(collective_device(group))  # NCCL gathers CUDA tensors only
        parts = [torch.empty_like(packed) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, packed, group=group)
        merged = FeatureStats.merge_all([FeatureStats.unpack(p.to(self.shift.device), self.dim) for p in parts])
        self.n, self.shift, self.rel_mean, self.m2 = merged.n, merged.shift, merged.rel_mean, merged.m2
        return self
