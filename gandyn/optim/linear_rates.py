"""Closed-form contraction rates of the linear game methods on one eigenvalue of the Jacobian.

On a linear game v(z) = Jz each method is a linear recursion; on an eigenvector of J
with eigenvalue λ it multiplies the iterate by μ (or, for two-step methods, μ solves
a quadratic), and the method converges iff the spectral radius max|μ| < 1. With
w = ηλ (step size times eigenvalue; for a bilinear game λ = ±iσ):

- "simgd"          z' = z − ηJz                         μ = 1 − w
- "extragradient"  z' = z − ηJ(z − ηJz)                 μ = 1 − w + w²
- "optimistic"     z' = z − 2ηJz + ηJz₋₁                μ² − (1 − 2w)μ − w = 0
- "extragradient-past": the extrapolated points z̃ follow the optimistic recursion
  (z̃' = z̃ − 2ηJz̃ + ηJz̃₋₁), so μ solves the same quadratic
- "consensus"      z' = z − η(J + γJᵀJ)z; for a normal J, JᵀJ = |λ|² on λ's
  eigenspace, so μ = 1 − w − (γ/η)|w|²
- "altgd"          (not a function of λ alone: it depends on who moves first) on the
  2-D game J = [[a, b], [−b, a]] (λ = a ± ib), x first, then y at the new x:
  M = [[1 − ηa, −ηb], [ηb(1 − ηa), 1 − ηa − η²b²]], so
  μ² − (2(1 − Re w) − (Im w)²)μ + (1 − Re w)² = 0.

Gidel et al. 2019 (§ 3, Table 1) and Azizian et al. 2020 (spectral-shape analysis)
give the same multipliers.
"""
from __future__ import annotations

import numpy as np

RATE_METHODS = ("simgd", "altgd", "extragradient", "extragradient-past", "optimistic", "consensus")


def _quadratic_radius(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """max |μ| over the roots of μ² + bμ + c = 0 (elementwise)."""
    disc = np.sqrt(b * b - 4 * c + 0j)
    return np.maximum(np.abs((-b + disc) / 2), np.abs((-b - disc) / 2))


def linear_rate(method: str, w, gamma_over_lr: float = 1.0) -> np.ndarray:
    """Spectral radius of `method`'s update map on the eigenvalue λ of J with w = ηλ
    (any shape of complex array). `gamma_over_lr` is consensus's γ/η."""
    if method not in RATE_METHODS:
        raise ValueError(f"method: expected one of {RATE_METHODS}, got {method!r}")
    w = np.asarray(w, dtype=complex)
    if method == "simgd":
        return np.abs(1 - w)
    if method == "extragradient":
        return np.abs(1 - w + w * w)
    if method in ("optimistic", "extragradient-past"):
        return _quadratic_radius(-(1 - 2 * w), -w)
    if method == "consensus":
        return np.abs(1 - w - gamma_over_lr * np.abs(w) ** 2)
    a, b = w.real, w.imag
    return _quadratic_radius(-(2 * (1 - a) - b * b), (1 - a) ** 2 + 0j)
