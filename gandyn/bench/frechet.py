"""Benchmark suite "frechet": the Fréchet distance (FID formula) against its usual references.

Rows:
  fid d=D <method>        frechet_distance (float64) vs pytorch-fid's formula
                          (scipy.linalg.sqrtm of Σ₁Σ₂, real part), with their relative difference.
  batch BxD <method>      B pairs at once vs a Python loop over torch.linalg.eigvals(Σ₁Σ₂)
                          (the non-symmetric product); rel_err of both against a float64
                          scipy.linalg.sqrtm reference, computed once, untimed.
  trace_sqrt fwd+bwd BxD  Tr sqrt(Σ₁Σ₂) and its gradient in both covariances (our closed form)
                          vs autograd through eigh of sqrt(Σ₁) Σ₂ sqrt(Σ₁); rel_err of the gradients.
  reference BxD           FrechetReference.score (sqrt(Σ_ref) cached) vs frechet_distance.
  features n=N d=D        frechet_distance_from_features (n < d) vs the covariance form.

Sizes: D = 2048 and B x D = 64 x 256 (quick: 64 and 8 x 32). On CPU the Jacobi and
Newton–Schulz methods (GPU fast paths) run at the batched size only; at d = 2048
Newton–Schulz is timed on CUDA, and Jacobi nowhere: its CUDA kernel gives each matrix one
thread block, which is the batched case's design and would take minutes for one 2048 x 2048
matrix. Ratios are printed, never asserted.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg
import torch

from gandyn.bench import timing
from gandyn.metrics import FrechetReference, frechet_distance, frechet_distance_from_features
from gandyn.ops.frechet import METHODS, trace_sqrt

SUITE = "frechet"


def pytorch_fid(mu1, sigma1, mu2, sigma2) -> float:
    """pytorch-fid's calculate_frechet_distance, float64 NumPy + scipy.linalg.sqrtm."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean.real))


def _stats(batch: int, n: int, d: int, seed: int, shift: float):
    """Means and N−1 covariances of n Gaussian features with per-axis scales (well conditioned)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, dtype=torch.float64, generator=g) * torch.linspace(0.5, 2.0, d, dtype=torch.float64)
    x = x + shift
    mu = x.mean(1)
    c = x - mu[:, None]
    return mu, c.mT @ c / (n - 1)


def _rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def _trace_sqrt_by_autograd(s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """Tr sqrt(S1 S2) in differentiable torch ops (positive-definite inputs): what autograd makes of it."""
    w, v = torch.linalg.eigh(s1)
    root = (v * w.clamp_min(0).sqrt().unsqueeze(-2)) @ v.mT
    return torch.linalg.eigvalsh(root @ s2 @ root).clamp_min(0).sqrt().sum(-1)


def _eigvals_loop(mu1, s1, mu2, s2) -> torch.Tensor:
    out = []
    for m1, a, m2, b in zip(mu1, s1, mu2, s2):
        tr = torch.linalg.eigvals(a @ b).sqrt().real.sum()
        out.append(((m1 - m2) ** 2).sum() + a.trace() + b.trace() - 2 * tr)
    return torch.stack(out)


def run(device: str, quick: bool) -> list[dict]:
    rows: list[dict] = []
    slow = dict(warmup=0, repeat=1) if not quick else dict(warmup=1, repeat=3)
    on_cuda = torch.device(device).type == "cuda"

    # ---- one FID-sized pair vs pytorch-fid (scipy sqrtm)
    d = 64 if quick else 2048
    mu, sig = _stats(2, 2 * d, d, seed=0, shift=0.0)
    mu[1] += 0.1
    ref_val = pytorch_fid(mu[0].numpy(), sig[0].numpy(), mu[1].numpy(), sig[1].numpy())
    ref_ms = timing.median_ms(lambda: pytorch_fid(mu[0].numpy(), sig[0].numpy(), mu[1].numpy(), sig[1].numpy()),
                              **slow)
    args = [t.to(device) for t in (mu[0], sig[0], mu[1], sig[1])]
    single_pair_methods = METHODS if quick else (("eigh", "newton-schulz") if on_cuda else ("eigh",))
    for method in single_pair_methods:
        val = frechet_distance(*args, method=method).item()
        ms = timing.median_ms(lambda: frechet_distance(*args, method=method), device=device, **slow)
        rows.append(timing.row(SUITE, f"fid d={d} {method}", ours_ms=ms, ref_ms=ref_ms,
                               ref="pytorch-fid (scipy sqrtm)", rel_err=_rel(val, ref_val)))

    # ---- a batch of pairs vs a Python loop over eigvals of the product
    b, d = (8, 32) if quick else (64, 256)
    mu1, s1 = _stats(b, 2 * d, d, seed=1, shift=0.0)
    mu2, s2 = _stats(b, 3 * d, d, seed=2, shift=0.05)
    exact = np.array([pytorch_fid(*(t[i].numpy() for t in (mu1, s1, mu2, s2))) for i in range(b)])
    dev = [t.to(device) for t in (mu1, s1, mu2, s2)]
    loop_ms = timing.median_ms(lambda: _eigvals_loop(*dev), device=device, **slow)
    loop_err = float(np.max(np.abs(_eigvals_loop(*dev).cpu().numpy() - exact) / np.abs(exact)))
    rows.append(timing.row(SUITE, f"batch {b}x{d} eigvals-loop", ours_ms=loop_ms, ref_ms=loop_ms,
                           ref="itself", rel_err=loop_err))
    for method in METHODS:
        val = frechet_distance(*dev, method=method).cpu().numpy()
        ms = timing.median_ms(lambda: frechet_distance(*dev, method=method), device=device, **slow)
        rows.append(timing.row(SUITE, f"batch {b}x{d} {method}", ours_ms=ms, ref_ms=loop_ms,
                               ref="loop of eigvals(S1 S2)",
                               rel_err=float(np.max(np.abs(val - exact) / np.abs(exact)))))

    # ---- forward + backward: the gradient in both covariances, against autograd through eigh
    s1g, s2g = dev[1].clone().requires_grad_(True), dev[3].clone().requires_grad_(True)

    def ours_fwd_bwd():
        return torch.autograd.grad(trace_sqrt(s1g, s2g)[0].sum(), (s1g, s2g))

    def autograd_fwd_bwd():
        return torch.autograd.grad(_trace_sqrt_by_autograd(s1g, s2g).sum(), (s1g, s2g))

    grad_err = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(ours_fwd_bwd(), autograd_fwd_bwd()))
    rows.append(timing.row(SUITE, f"trace_sqrt fwd+bwd {b}x{d} eigh",
                           ours_ms=timing.median_ms(ours_fwd_bwd, device=device, **slow),
                           ref_ms=timing.median_ms(autograd_fwd_bwd, device=device, **slow),
                           ref="autograd through eigh of sqrt(S1) S2 sqrt(S1)", rel_err=grad_err))

    # ---- many candidates against one cached reference
    reference = FrechetReference(dev[0][0], dev[1][0])
    ref_mu, ref_sig = dev[0][:1].expand(b, d), dev[1][:1].expand(b, d, d)
    direct_ms = timing.median_ms(lambda: frechet_distance(ref_mu, ref_sig, dev[2], dev[3]), device=device, **slow)
    cached_ms = timing.median_ms(lambda: reference.score(dev[2], dev[3]), device=device, **slow)
    diff = (reference.score(dev[2], dev[3]) - frechet_distance(ref_mu, ref_sig, dev[2], dev[3])).abs().max().item()
    rows.append(timing.row(SUITE, f"reference {b}x{d}", ours_ms=cached_ms, ref_ms=direct_ms,
                           ref="frechet_distance eigh", abs_diff=diff))

    # ---- n < d: the feature form against the covariance form
    n, d = (16, 64) if quick else (256, 2048)
    g = torch.Generator().manual_seed(3)
    x1 = torch.randn(n, d, dtype=torch.float64, generator=g).to(device)
    x2 = (torch.randn(n, d, dtype=torch.float64, generator=g) + 0.1).to(device)

    def covariance_form():
        return frechet_distance(x1.mean(0), torch.cov(x1.T), x2.mean(0), torch.cov(x2.T))

    feat_ms = timing.median_ms(lambda: frechet_distance_from_features(x1, x2), device=device, **slow)
    cov_ms = timing.median_ms(covariance_form, device=device, **slow)
    rows.append(timing.row(SUITE, f"features n={n} d={d}", ours_ms=feat_ms, ref_ms=cov_ms,
                           ref="covariance form (eigh)",
                           rel_err=_rel(frechet_distance_from_features(x1, x2).item(), covariance_form().item())))
    return rows
