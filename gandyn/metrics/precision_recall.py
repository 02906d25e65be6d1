"""k-NN precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

Real features X = {x_i} (N), fake features Y = {y_j} (M), Euclidean distances. Each sample's
k-NN ball is the closed ball B(x_i, r_i) around it with radius r_i = distance to its k-th
nearest OTHER sample of the same set (the sample itself excluded by index; duplicates
count as neighbours at distance 0):

    precision = (1/M) Σ_j 1[ ∃ i : ‖y_j − x_i‖ ≤ r_i(X) ]     fake samples on the real manifold
    recall    = (1/N) Σ_i 1[ ∃ j : ‖x_i − y_j‖ ≤ r_j(Y) ]     real samples on the fake manifold
    density   = (1/(kM)) Σ_j Σ_i 1[ ‖y_j − x_i‖ ≤ r_i(X) ]    (Naeem et al.; can exceed 1)
    coverage  = (1/N) Σ_i 1[ ∃ j : ‖x_i − y_j‖ ≤ r_i(X) ]     real balls holding a fake sample

Papers: T. Kynkäänniemi, T. Karras, S. Laine, J. Lehtinen, T. Aila, "Improved precision
and recall metric for assessing generative models", NeurIPS 2019 (k = 3 recommended);
M. F. Naeem, S. J. Oh, Y. Uh, Y. Choi, J. Yoo, "Reliable fidelity and diversity metrics
for generative models", ICML 2020 (k = 5 in their experiments).

Balls are closed (≤), as in Kynkäänniemi et al.'s definition; Naeem et al.'s `prdc` code
uses strict < — the two differ only on exact distance ties.

Computation, float64 throughout, on blocks of `chunk_size` rows (memory O(chunk_size · N),
so 10k × 10k sets never form a full distance matrix): both sets are centred on the real
mean (distances do not change), squared distances of a block come from one matrix product,
‖a‖² + ‖b‖² − 2aᵀb (torch.cdist's fast "mm" path), and every comparison that this rounding
could decide wrongly — |d² − r²| within the rounding bound 4(d + 2)·eps·(‖a‖² + ‖b‖²) — is
redone with torch.cdist's direct formula sqrt(Σ(aₖ − bₖ)²) (compute_mode=
"donot_use_mm_for_euclid_dist"), which also gives the k-th-neighbour radii. Ties therefore
resolve consistently: a duplicate is at distance exactly 0 and d(a, b) = d(b, a) bit for bit,
so identical sets (in any order) without other ties give precision = recall = coverage = 1
and density = (k + 1)/k exactly. Typical sets need a handful of direct distances per row;
collapsed sets (many near-duplicates) fall back to direct blocks, about 5× the mm cost on CPU.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor

from gandyn.metrics.checks import float_matrix

__all__ = ["precision_recall", "knn_radii"]


def _need(k: int) -> str:
    return f"k + 1 = {k + 1} samples (each needs k other samples)"


def _check_k(op: str, k, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"{op}: {name} must be an int >= 1, got {k!r}")
    return int(k)


_DIRECT = "donot_use_mm_for_euclid_dist"
_EPS = torch.finfo(torch.float64).eps


def _bound(d: int) -> float:
    """Rounding bound on ‖a‖² + ‖b‖² − 2aᵀb in float64, relative to ‖a‖² + ‖b‖² (dot products of
    length d: |error| <= d·u·Σ|aₖbₖ| <= d·u·(‖a‖² + ‖b‖²)/2, u = eps/2), with a factor 4 to spare
    that also covers the direct formula's own rounding."""
    return 4 * (d + 2) * _EPS


def _mm_sq(a: Tensor, b: Tensor, na: Tensor, nb: Tensor) -> Tensor:
    return (na[:, None] + nb[None, :] - 2 * (a @ b.T)).clamp_min_(0)


def _direct(a: Tensor, b: Tensor) -> Tensor:
    """torch.cdist's direct formula sqrt(Σₖ(aₖ − bₖ)²): exactly 0 for equal rows and, pair by pair,
    the same bits whatever the block shape or argument order (the basis of the tie handling)."""
    return torch.cdist(a, b, compute_mode=_DIRECT)


def _direct_pairs(a: Tensor, ia: Tensor, b: Tensor, ib: Tensor, pieces: int = 1 << 21) -> Tensor:
    """_direct distance of each pair (a[ia[p]], b[ib[p]]), gathered in pieces of ~`pieces` numbers."""
    out = torch.empty(ia.shape[0], dtype=a.dtype, device=a.device)
    step = max(1, pieces // a.shape[1])
    for s in range(0, ia.shape[0], step):
        out[s:s + step] = _direct(a[ia[s:s + step], None, :], b[ib[s:s + step], None, :]).flatten()
    return out


def _refine(block: Tensor, mask: Tensor, a: Tensor, a0: int, b: Tensor) -> Tensor:
    """Direct distances of the masked entries of a block of rows a[a0:a0 + c] × b (inf elsewhere);
    the whole block directly when the mask holds more than an eighth of it."""
    if int(mask.sum()) * 8 > mask.numel():
        return _direct(a[a0:a0 + block.shape[0]], b).masked_fill_(~mask, float("inf"))
    out = torch.full_like(block, float("inf"))
    ii, jj = mask.nonzero(as_tuple=True)
    out[ii, jj] = _direct_pairs(a, ii + a0, b, jj)
    return out


def _radii(x: Tensor, nx: Tensor, k: int, chunk_size: int) -> Tensor:
    """Distance (n,) of each row of x to its k-th nearest other row, by the direct formula.

    The mm k-th squared distance of row i is within e_i = bound·(‖xᵢ‖² + max‖x‖²) of the direct
    one, so every row among the true k nearest has an mm value <= mm k-th + 2e_i: those
    candidates (typically about k per row) are recomputed directly and their k-th smallest taken."""
    n, d = x.shape
    tol = _bound(d)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for start in range(0, n, chunk_size):
        stop = min(start + chunk_size, n)
        rows = torch.arange(stop - start, device=x.device)
        dm = _mm_sq(x[start:stop], x, nx[start:stop], nx)
        dm[rows, rows + start] = float("inf")                  # the sample itself, by index
        kth = dm.kthvalue(k, dim=1, keepdim=True).values
        candidates = dm <= kth + 2 * tol * (nx[start:stop, None] + nx.max())
        candidates[rows, rows + start] = False
        out[start:stop] = _refine(dm, candidates, x, start, x).kthvalue(k, dim=1).values
    return out


def _prepare(x: Tensor, center: Tensor) -> tuple[Tensor, Tensor]:
    x = x - center
    return x, (x * x).sum(1)


def knn_radii(features: Tensor, k: int = 3, *, chunk_size: int = 1024) -> Tensor:
    """Distance (n,) float64 of each row of features (n, d) to its k-th nearest other row."""
    op = "knn_radii"
    k = _check_k(op, k)
    chunk_size = _check_k(op, chunk_size, "chunk_size")
    x = float_matrix(op, "features", features, k + 1, need=_need(k))
    x, nx = _prepare(x, x.mean(0))
    return _radii(x, nx, k, chunk_size)


@torch.no_grad()
def precision_recall(real_feats: Tensor, fake_feats: Tensor, k: int = 3, *, chunk_size: int = 1024) -> dict:
    """{"precision", "recall", "density", "coverage"} (floats) of fake_feats (M, d) against
    real_feats (N, d) with k-NN balls (see the module docstring); float64, chunked cdist.

    N and M must both exceed k. chunk_size: rows of each distance block.
    """
    op = "precision_recall"
    k = _check_k(op, k)
    chunk_size = _check_k(op, chunk_size, "chunk_size")
    real = float_matrix(op, "real_feats", real_feats, k + 1, need=_need(k))
    fake = float_matrix(op, "fake_feats", fake_feats, k + 1, need=_need(k))
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"{op}: real_feats and fake_feats must have the same feature dimension d, got "
                         f"{real.shape[1]} and {fake.shape[1]}")
    if real.device != fake.device:
        raise ValueError(f"{op}: fake_feats must be on real_feats' device {real.device}, got {fake.device}")
    center = real.mean(0)
    real, n_real = _prepare(real, center)
    fake, n_fake = _prepare(fake, center)
    r_real = _radii(real, n_real, k, chunk_size)
    r_fake = _radii(fake, n_fake, k, chunk_size)
    r2_real, r2_fake = r_real * r_real, r_fake * r_fake
    tol = _bound(real.shape[1])
    n, m = real.shape[0], fake.shape[0]
    precise = torch.zeros((), dtype=torch.int64, device=real.device)
    density = torch.zeros((), dtype=torch.int64, device=real.device)
    covered = torch.zeros(n, dtype=torch.bool, device=real.device)
    recalled = torch.zeros(n, dtype=torch.bool, device=real.device)
    for start in range(0, m, chunk_size):
        stop = min(start + chunk_size, m)
        d2 = _mm_sq(fake[start:stop], real, n_fake[start:stop], n_real)        # (c, N): ‖y_j − x_i‖²
        in_real = d2 <= r2_real[None, :]                       # y_j ∈ B(x_i, r_i(X))
        in_fake = d2 <= r2_fake[start:stop, None]              # x_i ∈ B(y_j, r_j(Y))
        # Comparisons the rounding of d2 (or of r²) could flip are redone with direct distances.
        slack = tol * (n_fake[start:stop, None] + n_real.max())                # (c, 1), per fake row
        unsure_real = (d2 - r2_real[None, :]).abs() <= slack + 8 * _EPS * r2_real[None, :]
        unsure_fake = (d2 - r2_fake[start:stop, None]).abs() <= slack + 8 * _EPS * r2_fake[start:stop, None]
        unsure = unsure_real | unsure_fake
        if bool(unsure.any()):
            exact = _refine(d2, unsure, fake, start, real)
            in_real = torch.where(unsure_real, exact <= r_real[None, :], in_real)
            in_fake = torch.where(unsure_fake, exact <= r_fake[start:stop, None], in_fake)
        precise += in_real.any(1).sum()
        density += in_real.sum()
        covered |= in_real.any(0)
        recalled |= in_fake.any(0)
    return {"precision": int(precise) / m, "recall": float(recalled.double().mean()),
            "density": int(density) / (k * m), "coverage": float(covered.double().mean())}
