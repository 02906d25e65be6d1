"""Gaussian mixtures: the 2-D mode-collapse protocols of the GAN literature.

`ring` (8 modes on the unit circle, σ = 0.01), `grid` (the 5×5 grid {−4, −2, 0, 2, 4}²,
σ = 0.05) and `grid16` (the 4×4 grid {−1.5, −0.5, 0.5, 1.5}², σ = 0.02) are equal-weight
isotropic mixtures whose modes are known exactly, so mode coverage and sample quality are
measured against the truth; `Mixture.log_prob` is the exact density for the theory.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gandyn.data.digits import check_int, check_sample_size


def _positive(value, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}") from None
    if isinstance(value, bool) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    return v


class Mixture:
    """Equal-weight isotropic Gaussian mixture (1/K) Σₖ N(centers[k], sigma² I).

    `sample(n, generator)` draws the component k ~ U{0..K−1} (torch.randint) and then the
    noise (torch.randn, float64), both from `generator` alone when one is given, and returns
    (x float32 (n, d), k int64 (n,)): the label is the component index.
    """

    def __init__(self, centers, sigma: float):
        try:
            c = torch.tensor(centers, dtype=torch.float64) if not isinstance(centers, Tensor) \
                else centers.detach().to("cpu", torch.float64).clone()
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"centers: expected a (K, d) array of numbers, got {centers!r}") from None
        if c.ndim != 2 or c.shape[0] < 1 or c.shape[1] < 1:
            raise ValueError(f"centers: expected a (K, d) array with K ≥ 1 and d ≥ 1, got shape {tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError("centers: expected finite values")
        self.centers = c.contiguous()
        self.sigma = _positive(sigma, "sigma")

    @property
    def modes(self) -> Tensor:
        """The K mode locations (= centers), (K, d) float64."""
        return self.centers

    @property
    def num_classes(self) -> int:
        return self.centers.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.centers.shape[1],)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n i.i.d. samples (x float32 (n, d), component int64 (n,)), deterministic given `generator`."""
        n = check_sample_size(n)
        k = torch.randint(self.num_classes, (n,), generator=generator)
        noise = torch.randn(n, self.centers.shape[1], generator=generator, dtype=torch.float64)
        x = self.centers[k] + self.sigma * noise
        return x.to(torch.float32).contiguous(), k

    def log_prob(self, x) -> Tensor:
        """Exact log density at x (..., d) in float64: logsumexp over k of log N(x; cₖ, σ²I) − log K."""
        x = torch.as_tensor(x).to(torch.float64)
        d = self.centers.shape[1]
        if x.ndim < 1 or x.shape[-1] != d:
            raise ValueError(f"x: expected shape (..., {d}), got {tuple(x.shape)}")
        sq = ((x.unsqueeze(-2) - self.centers) ** 2).sum(-1)  # (..., K)
        s2 = self.sigma ** 2
        return (torch.logsumexp(-sq / (2 * s2), dim=-1)
                - math.log(self.num_classes) - 0.5 * d * math.log(2 * math.pi * s2))

    def __repr__(self) -> str:
        k, d = self.centers.shape
        rows = ", ".join("[" + ", ".join(f"{round(v, 4) + 0.0:g}" for v in row) + "]" for row in self.centers[:4].tolist())
        more = ", …" if k > 4 else ""
        return f"Mixture(n_modes={k}, dim={d}, sigma={self.sigma:g}, centers=[{rows}{more}])"


def ring(n_modes: int = 8, radius: float = 1.0, sigma: float = 0.01) -> Mixture:
    """K modes on a circle: center k = radius·(cos 2πk/K, sin 2πk/K), k = 0..K−1."""
    k = check_int(n_modes, "n_modes", 1)
    r = _positive(radius, "radius")
    sigma = _positive(sigma, "sigma")
    centers = [[r * math.cos(2 * math.pi * i / k), r * math.sin(2 * math.pi * i / k)] for i in range(k)]
    return Mixture(centers, sigma)


def _grid(values, sigma) -> Mixture:
    try:
        vals = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"values: expected a non-empty sequence of distinct finite numbers, got {values!r}") from None
    if not vals or not all(math.isfinite(v) for v in vals) or len(set(vals)) != len(vals):
        raise ValueError(f"values: expected a non-empty sequence of distinct finite numbers, got {values!r}")
    sigma = _positive(sigma, "sigma")
    return Mixture([[a, b] for a in vals for b in vals], sigma)


def grid(values=(-4, -2, 0, 2, 4), sigma: float = 0.05) -> Mixture:
    """The Cartesian grid values × values (25 modes by default); center i·V + j = (values[i], values[j])."""
    return _grid(values, sigma)


def grid16(values=(-1.5, -0.5, 0.5, 1.5), sigma: float = 0.02) -> Mixture:
    """The 4×4 grid of 16 modes, values × values, ordered like `grid`."""
    return _grid(values, sigma)
