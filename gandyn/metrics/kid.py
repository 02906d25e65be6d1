"""Kernel Inception Distance (Bińkowski, Sutherland, Arbel & Gretton 2018, "Demystifying MMD GANs").

KID is the squared maximum mean discrepancy between real and fake features under the
polynomial kernel

    k(x, y) = (γ xᵀy + c₀)^degree,   default γ = 1/d, c₀ = 1, degree = 3,

estimated by the unbiased U-statistic (X: m rows, Y: n rows)

    MMD²_u = Σ_{i≠i'} k(xᵢ, xᵢ')/(m(m−1)) + Σ_{j≠j'} k(yⱼ, yⱼ')/(n(n−1)) − 2 Σ_{i,j} k(xᵢ, yⱼ)/(mn),

whose expectation is the population MMD² (it can be negative). Convention of
torch-fidelity and of the paper's code: `subsets` times, draw `subset_size` real and
`subset_size` fake rows without replacement (independently for each subset), compute
MMD²_u on them; report (mean, std) over the subsets, std with ddof = 0 (numpy's default,
what torch-fidelity reports as kernel_inception_distance_std). That std is the spread of
one subset's estimate, not the standard error of the mean (the subsets overlap, so the
mean's error is not std/sqrt(subsets)).

Subsets are drawn with torch.randperm from `generator`; without one, a fresh CPU
generator seeded with 2020 (torch-fidelity's default seed; the streams differ from its
numpy ones) keeps the result reproducible. Kernels are evaluated in float64.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from gandyn.metrics.checks import float_matrix

__all__ = ["kid", "mmd2_unbiased", "polynomial_kernel"]

DEFAULT_SEED = 2020


def _check_pair(op: str, x: Tensor, y: Tensor, names=("real_feats", "fake_feats")) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"{op}: {names[0]} and {names[1]} must have the same feature dimension d, got "
                         f"{x.shape[1]} and {y.shape[1]}")
    if x.device != y.device:
        raise ValueError(f"{op}: {names[1]} must be on {names[0]}'s device {x.device}, got {y.device}")


def _check_int(op: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_kernel(op: str, d: int, degree, gamma, coef0) -> tuple[int, float, float]:
    degree = _check_int(op, "degree", degree, 1)
    if gamma is None:
        gamma = 1.0 / d
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not math.isfinite(gamma) or gamma <= 0:
        raise ValueError(f"{op}: gamma must be a finite number > 0 or None (1/d), got {gamma!r}")
    if isinstance(coef0, bool) or not isinstance(coef0, numbers.Real) or not math.isfinite(coef0):
        raise ValueError(f"{op}: coef0 must be a finite number, got {coef0!r}")
    return degree, float(gamma), float(coef0)


def polynomial_kernel(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> Tensor:
    """(γ x yᵀ + c₀)^degree, float64 (m, n), γ = 1/d by default."""
    op = "polynomial_kernel"
    x = float_matrix(op, "x", x, 1)
    y = float_matrix(op, "y", y, 1)
    _check_pair(op, x, y, ("x", "y"))
    degree, gamma, coef0 = _check_kernel(op, x.shape[1], degree, gamma, coef0)
    return (x @ y.T * gamma + coef0) ** degree


def _kernel_sums(a: Tensor, b: Tensor, degree: int, gamma: float, coef0: float, same: bool) -> Tensor:
    """Σ k(aᵢ, bⱼ) over all pairs, or over i ≠ j when `same` (a is b); in place, float64."""
    base = torch.addmm(torch.full((), coef0, dtype=a.dtype, device=a.device), a, b.T, beta=1, alpha=gamma)
    k = base.clone() if degree > 1 else base
    for _ in range(degree - 1):
        k.mul_(base)
    total = k.sum()
    return total - k.diagonal().sum() if same else total


def _mmd2(x: Tensor, y: Tensor, degree: int, gamma: float, coef0: float) -> Tensor:
    m, n = x.shape[0], y.shape[0]
    sxx = _kernel_sums(x, x, degree, gamma, coef0, True)
    syy = _kernel_sums(y, y, degree, gamma, coef0, True)
    sxy = _kernel_sums(x, y, degree, gamma, coef0, False)
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


@torch.no_grad()
def mmd2_unbiased(x: Tensor, y: Tensor, degree: int = 3, gamma: float | None = None, coef0: float = 1.0) -> float:
    """The unbiased MMD²_u of x (m, d) and y (n, d), m, n >= 2, under the polynomial kernel
    (γ xᵀy + c₀)^degree (γ = 1/d by default): one KID subset, all rows used."""
    op = "mmd2_unbiased"
    x = float_matrix(op, "x", x, 2)
    y = float_matrix(op, "y", y, 2)
    _check_pair(op, x, y, ("x", "y"))
    degree, gamma, coef0 = _check_kernel(op, x.shape[1], degree, gamma, coef0)
    return float(_mmd2(x, y, degree, gamma, coef0))


@torch.no_grad()
def kid(real_feats: Tensor, fake_feats: Tensor, subsets: int = 100, subset_size: int = 1000, degree: int = 3,
        gamma: float | None = None, coef0: float = 1.0,
        generator: torch.Generator | None = None) -> tuple[float, float]:
    """(mean, std over subsets, ddof = 0) of MMD²_u on `subsets` random subsets of `subset_size`
    real and fake rows each (torch-fidelity's KID; see the module docstring).

    real_feats (N, d), fake_feats (M, d) with 2 <= subset_size <= min(N, M). generator: the
    torch.Generator of the subsets' permutations, drawn on its device (default: a new CPU one
    seeded with 2020). Each subset draws randperm(N)[:subset_size], then randperm(M)[:subset_size].
    """
    op = "kid"
    real = float_matrix(op, "real_feats", real_feats, 2)
    fake = float_matrix(op, "fake_feats", fake_feats, 2)
    _check_pair(op, real, fake)
    subsets = _check_int(op, "subsets", subsets, 1)
    subset_size = _check_int(op, "subset_size", subset_size, 2)
    if subset_size > min(real.shape[0], fake.shape[0]):
        raise ValueError(f"{op}: subset_size must be at most the number of samples of each set "
                         f"(real_feats: {real.shape[0]}, fake_feats: {fake.shape[0]}), got {subset_size}")
    degree, gamma, coef0 = _check_kernel(op, real.shape[1], degree, gamma, coef0)
    if generator is None:
        generator = torch.Generator().manual_seed(DEFAULT_SEED)
    elif not isinstance(generator, torch.Generator):
        raise TypeError(f"{op}: generator must be a torch.Generator or None, got {type(generator).__name__}")
    dev = generator.device
    mmds = torch.empty(subsets, dtype=torch.float64)
    for s in range(subsets):
        i = torch.randperm(real.shape[0], generator=generator, device=dev)[:subset_size].to(real.device)
        j = torch.randperm(fake.shape[0], generator=generator, device=dev)[:subset_size].to(real.device)
        mmds[s] = _mmd2(real[i], fake[j], degree, gamma, coef0)
    return float(mmds.mean()), float(mmds.std(correction=0))
