"""Quantile functions of 1-D Gaussian mixtures (the generator a GAN with a U[0, 1] latent should learn).

Q(u) = F⁻¹(u) with F(x) = (1/K) Σₖ Φ((x − cₖ)/σ): F is continuous and strictly increasing, so
Q(u) is the unique root of F(x) − u, found by Brent's method in a bracket that holds it.
"""
from __future__ import annotations

import numpy as np
from scipy import optimize
from scipy.stats import norm

from gandyn.data import Mixture


def mixture_cdf(data: Mixture, x) -> np.ndarray:
    """F(x) of a 1-D equal-weight mixture, float64."""
    c = data.centers[:, 0].numpy()
    return norm.cdf((np.asarray(x, dtype=float)[..., None] - c) / data.sigma).mean(-1)


def mixture_quantile(data: Mixture, u) -> np.ndarray:
    """Q(u) = F⁻¹(u) for u in (0, 1), each by scipy.optimize.brentq on F(x) − u (xtol 1e-12)."""
    if data.shape != (1,):
        raise ValueError(f"data: expected a 1-D mixture, got samples of shape {data.shape}")
    u = np.asarray(u, dtype=float)
    if not np.all((u > 0) & (u < 1)):
        raise ValueError("u: expected levels strictly inside (0, 1)")
    c = data.centers[:, 0].numpy()
    # Q(u) lies between the smallest centre's and the largest centre's component quantiles.
    lo = c.min() + data.sigma * norm.ppf(np.minimum(u, 0.5)) - 1.0
    hi = c.max() + data.sigma * norm.ppf(np.maximum(u, 0.5)) + 1.0
    out = [optimize.brentq(lambda x, t=t: float(mixture_cdf(data, x)) - t, a, b, xtol=1e-12)
           for t, a, b in zip(u.ravel(), lo.ravel(), hi.ravel())]
    return np.array(out).reshape(u.shape)
