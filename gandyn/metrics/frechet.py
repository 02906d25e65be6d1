"""Fréchet distance between Gaussians (FID when the statistics are Inception features).

    d²((μ₁, Σ₁), (μ₂, Σ₂)) = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr sqrt(Σ₁Σ₂)

Three entry points:

* `frechet_distance(mu1, sigma1, mu2, sigma2)`: batched over (..., d) / (..., d, d), on the
  trace-sqrt op of gandyn.ops.frechet (symmetric form sqrt(Σ₁) Σ₂ sqrt(Σ₁), float64 by
  default, real and >= 0 on singular covariances; differentiable in both covariances).
* `frechet_distance_from_features(x1, x2)`: from the feature matrices (n, d) themselves,
  exact when n < d: with centred Xᶜ, Σᵢ = XᵢᶜᵀXᵢᶜ/(nᵢ−1) and
  Tr sqrt(Σ₁Σ₂) = ‖X₁ᶜX₂ᶜᵀ‖_* / sqrt((n₁−1)(n₂−1))   (nuclear norm of an n₁×n₂ matrix, O(d·n²)).
* `FrechetReference(mu, sigma)`: caches sqrt(Σ_ref) (one eigh) so that scoring many candidates
  against it costs one batched eigvalsh of sqrt(Σ_ref) Σ sqrt(Σ_ref) each.

Covariances use the N−1 convention (gandyn.metrics.FeatureStats, numpy.cov's default).

Inputs are checked and bad ones raise naming the argument: shapes, dtypes, devices,
non-finite values, non-symmetric covariances (|Σ − Σᵀ| > sym_tol · max|Σ|) and clearly
non-PSD ones (an eigenvalue below −psd_tol · ‖Σ‖_F, found by a Cholesky factorization
of Σ + psd_tol · ‖Σ‖_F · I).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from gandyn.ops.frechet import METHODS, trace_sqrt, truncated_sqrt

__all__ = ["FrechetDiagnostics", "FrechetReference", "frechet_distance", "frechet_distance_from_features",
           "check_covariance"]


class FrechetDiagnostics(NamedTuple):
    """Of M = sqrt(Σ₁) Σ₂ sqrt(Σ₁) (the eigenvalues of Σ₁Σ₂), each of the batch shape:
    min_eigenvalue (negative values are rounding, clamped to 0), clamped_mass (sum of the
    clamped negative eigenvalues of Σ₁ and M, in absolute value) and rank (of M)."""
    min_eigenvalue: Tensor
    clamped_mass: Tensor
    rank: Tensor


_SYM_TOL = {torch.float64: 1e-5}  # others: 1e-3


def _sym_tol(dtype: torch.dtype) -> float:
    return _SYM_TOL.get(dtype, 1e-3)


def _psd_tol(dtype: torch.dtype) -> float:
    # Rounding leaves eigenvalues of a PSD covariance near −eps·‖Σ‖; sqrt(eps) is clearly beyond.
    return torch.finfo(dtype).eps ** 0.5


def _check_tensor(op: str, name: str, x) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{op}: {name} must be a floating-point tensor, got {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{op}: {name} contains non-finite values (NaN or Inf)")


def check_covariance(op: str, name: str, sigma: Tensor, sym_tol: float | None = None,
                     psd_tol: float | None = None) -> None:
    """Raise naming `name` unless sigma is a finite, symmetric, positive semi-definite (..., d, d)."""
    _check_tensor(op, name, sigma)
    if sigma.dim() < 2 or sigma.shape[-1] != sigma.shape[-2] or sigma.shape[-1] == 0:
        raise ValueError(f"{op}: {name} must be a covariance matrix (..., d, d) with d >= 1, "
                         f"got shape {tuple(sigma.shape)}")
    scale = sigma.abs().amax((-2, -1))
    sym_tol = _sym_tol(sigma.dtype) if sym_tol is None else sym_tol
    asym = (sigma - sigma.mT).abs().amax((-2, -1))
    bad = asym > sym_tol * scale
    if bool(bad.any()):
        i = _first(bad)
        raise ValueError(f"{op}: {name} must be symmetric: at batch index {i}, max |{name} - {name}^T| = "
                         f"{float(asym[i] if asym.dim() else asym):.3g} exceeds {sym_tol:g} * max |{name}|")
    psd_tol = _psd_tol(sigma.dtype) if psd_tol is None else psd_tol
    a = ((sigma + sigma.mT) * 0.5).double()
    norm = torch.linalg.matrix_norm(a, keepdim=True)
    # An all-zero Σ (a generator collapsed to one point) is PSD; the shift must not vanish with it.
    norm = torch.where(norm > 0, norm, torch.ones_like(norm))
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    _, info = torch.linalg.cholesky_ex(a + psd_tol * norm * eye)
    bad = info != 0
    if bool(bad.any()):
        raise ValueError(f"{op}: {name} must be positive semi-definite: at batch index {_first(bad)} it has an "
                         f"eigenvalue below -{psd_tol:.3g} * ||{name}||_F")


def _first(mask: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in mask.nonzero()[0]) if mask.dim() else ()


def _check_mean(op: str, name: str, mu: Tensor, batch: torch.Size, d: int) -> None:
    _check_tensor(op, name, mu)
    if mu.shape != batch + (d,):
        raise ValueError(f"{op}: {name} must have shape {tuple(batch + (d,))} to match the covariances, "
                         f"got {tuple(mu.shape)}")


def _check_method(op: str, method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"{op}: method must be one of {METHODS}, got {method!r}")


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor, *, method: str = "eigh",
                     dtype: torch.dtype = torch.float64, max_iter: int | None = None,
                     return_diagnostics: bool = False):
    """‖μ₁−μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr sqrt(Σ₁Σ₂) of shape (...), computed in `dtype`.

    mu1, mu2: (..., d); sigma1, sigma2: (..., d, d) symmetric PSD (N−1 convention).
    method: "eigh" (exact, default), "jacobi" (our batched Jacobi kernels) or
    "newton-schulz" (GPU fast path, positive-definite covariances only; no diagnostics).
    return_diagnostics: also return a FrechetDiagnostics. Rounding can leave the result a
    few ulps below 0 for identical inputs; it is not clamped.
    """
    op = "frechet_distance"
    _check_method(op, method)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: dtype must be torch.float32 or torch.float64, got {dtype}")
    if return_diagnostics and method == "newton-schulz":
        raise ValueError(f"{op}: diagnostics need eigenvalues; method='newton-schulz' computes none "
                         f"(use 'eigh' or 'jacobi')")
    check_covariance(op, "sigma1", sigma1)
    check_covariance(op, "sigma2", sigma2)
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"{op}: sigma1 and sigma2 must have one shape, got {tuple(sigma1.shape)} and "
                         f"{tuple(sigma2.shape)}")
    batch, d = sigma1.shape[:-2], sigma1.shape[-1]
    _check_mean(op, "mu1", mu1, batch, d)
    _check_mean(op, "mu2", mu2, batch, d)
    for name, x in (("mu1", mu1), ("sigma2", sigma2), ("mu2", mu2)):
        if x.device != sigma1.device:
            raise ValueError(f"{op}: {name} must be on sigma1's device {sigma1.device}, got {x.device}")
    mu1, sigma1, mu2, sigma2 = (x.to(dtype) for x in (mu1, sigma1, mu2, sigma2))
    tr, diag = trace_sqrt(sigma1, sigma2, method, max_iter)
    diff = mu1 - mu2
    dist = (diff * diff).sum(-1) + sigma1.diagonal(0, -2, -1).sum(-1) + sigma2.diagonal(0, -2, -1).sum(-1) - 2 * tr
    if not return_diagnostics:
        return dist
    return dist, FrechetDiagnostics(diag[..., 0], diag[..., 1], diag[..., 2].round().long())


def _check_features(op: str, name: str, x: Tensor) -> None:
    _check_tensor(op, name, x)
    if x.dim() != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise ValueError(f"{op}: {name} must be a feature matrix (n, d) with n >= 2 samples, "
                         f"got shape {tuple(x.shape)}")


def frechet_distance_from_features(x1: Tensor, x2: Tensor, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """Fréchet distance between the Gaussians fitted (N−1 convention) to the rows of x1 (n₁, d)
    and x2 (n₂, d), without forming a covariance: exact for any n, cheapest when n < d.
    Differentiable in x1 and x2 where the singular values of X₁ᶜX₂ᶜᵀ are distinct and non-zero."""
    op = "frechet_distance_from_features"
    _check_features(op, "x1", x1)
    _check_features(op, "x2", x2)
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"{op}: x1 and x2 must have the same feature dimension d, got {x1.shape[1]} "
                         f"and {x2.shape[1]}")
    if x1.device != x2.device:
        raise ValueError(f"{op}: x2 must be on x1's device {x1.device}, got {x2.device}")
    x1, x2 = x1.to(dtype), x2.to(dtype)
    n1, n2 = x1.shape[0], x2.shape[0]
    m1, m2 = x1.mean(0), x2.mean(0)
    c1, c2 = x1 - m1, x2 - m2
    tr1 = (c1 * c1).sum() / (n1 - 1)
    tr2 = (c2 * c2).sum() / (n2 - 1)
    nuclear = torch.linalg.svdvals(c1 @ c2.T).sum()
    diff = m1 - m2
    return (diff * diff).sum() + tr1 + tr2 - 2 * nuclear / ((n1 - 1) * (n2 - 1)) ** 0.5


class FrechetReference:
    """Fréchet distances of many candidates to one fixed reference (μ_ref, Σ_ref).

    sqrt(Σ_ref) is computed once (eigh, eigenvalues of rounding size or negative set to 0); each `score` is then
    one batched eigvalsh of sqrt(Σ_ref) Σ sqrt(Σ_ref), whose eigenvalues are those of
    Σ_ref Σ. Gradients flow to the candidates' statistics through eigvalsh (finite where
    the candidate is positive definite on the reference's range).
    """

    def __init__(self, mu: Tensor, sigma: Tensor, *, dtype: torch.dtype = torch.float64):
        op = "FrechetReference"
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"{op}: dtype must be torch.float32 or torch.float64, got {dtype}")
        check_covariance(op, "sigma", sigma)
        if sigma.dim() != 2:
            raise ValueError(f"{op}: sigma must be one covariance matrix (d, d), got shape {tuple(sigma.shape)}")
        _check_mean(op, "mu", mu, torch.Size(), sigma.shape[-1])
        self.dtype = dtype
        self.mu = mu.detach().to(dtype)
        sigma = sigma.detach().to(dtype)
        sigma = (sigma + sigma.mT) * 0.5
        w, v = torch.linalg.eigh(sigma)
        self.clamped_mass = (-w).clamp_min(0).sum()
        self.sqrt_sigma = (v * truncated_sqrt(w)) @ v.mT
        self.trace = sigma.diagonal().sum()

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    def score(self, mu: Tensor, sigma: Tensor, *, return_diagnostics: bool = False):
        """Distances (...) of candidates mu (..., d), sigma (..., d, d) to the reference."""
        op = "FrechetReference.score"
        check_covariance(op, "sigma", sigma)
        if sigma.shape[-1] != self.dim:
            raise ValueError(f"{op}: sigma must be (..., {self.dim}, {self.dim}) like the reference, "
                             f"got shape {tuple(sigma.shape)}")
        _check_mean(op, "mu", mu, sigma.shape[:-2], self.dim)
        if sigma.device != self.mu.device or mu.device != self.mu.device:
            raise ValueError(f"{op}: mu and sigma must be on the reference's device {self.mu.device}")
        mu, sigma = mu.to(self.dtype), sigma.to(self.dtype)
        s = self.sqrt_sigma
        m = s @ ((sigma + sigma.mT) * 0.5) @ s
        w = torch.linalg.eigvalsh((m + m.mT) * 0.5)
        tr = truncated_sqrt(w).sum(-1)
        diff = mu - self.mu
        dist = (diff * diff).sum(-1) + self.trace + sigma.diagonal(0, -2, -1).sum(-1) - 2 * tr
        if not return_diagnostics:
            return dist
        cutoff = w.abs().amax(-1, keepdim=True) * (torch.finfo(w.dtype).eps * self.dim)
        return dist, FrechetDiagnostics(w.min(-1).values, self.clamped_mass + (-w).clamp_min(0).sum(-1),
                                        (w > cutoff).sum(-1))
