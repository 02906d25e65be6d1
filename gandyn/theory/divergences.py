"""Divergences of 1-D densities by SciPy quadrature, and the optimal discriminator.

    JSD(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m),  m = (p + q)/2,   0 ≤ JSD ≤ log 2
    D*(x) = p(x) / (p(x) + q(x))

Natural logarithms throughout (so V(G, D*) = −log 4 + 2·JSD).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from scipy import integrate

Density = Callable[[float], float]


def _xlog_ratio(a: float, b: float) -> float:
    """a·log(a/b), with 0·log 0 = 0."""
    return a * math.log(a / b) if a > 0 else 0.0


def jensen_shannon(p: Density, q: Density, lo: float = -np.inf, hi: float = np.inf,
                   points: tuple[float, ...] = ()) -> float:
    """JSD(p ‖ q) in nats by adaptive quadrature over [lo, hi] (`points`: where the integrand has
    kinks, e.g. the ends of a uniform's support; they need a finite interval)."""
    def integrand(x: float) -> float:
        a, b = p(x), q(x)
        m = 0.5 * (a + b)
        return 0.5 * (_xlog_ratio(a, m) + _xlog_ratio(b, m)) if m > 0 else 0.0

    kw = {"points": list(points)} if points else {}
    value, _ = integrate.quad(integrand, lo, hi, limit=500, epsabs=1e-10, epsrel=1e-8, **kw)
    return float(min(max(value, 0.0), math.log(2)))


def optimal_discriminator(p: Density, q: Density, x) -> np.ndarray:
    """D*(x) = p(x)/(p(x) + q(x)) at each x (½ where both vanish)."""
    a = np.array([p(float(t)) for t in np.ravel(x)])
    b = np.array([q(float(t)) for t in np.ravel(x)])
    s = a + b
    return np.where(s > 0, a / np.where(s > 0, s, 1.0), 0.5).reshape(np.shape(x))
