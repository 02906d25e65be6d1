"""Batched Fréchet trace-sqrt: Tr sqrt(Σ₁ Σ₂) for batches of covariance pairs (..., d, d).

Computed in a symmetric form (never an eigen-solver on the non-symmetric Σ₁Σ₂): for any
factor F with F Fᵀ = Σ₁,

    M = Fᵀ Σ₂ F,   Tr sqrt(Σ₁Σ₂) = Σᵢ sqrt(max(λᵢ(M), 0))

M is symmetric PSD and has the eigenvalues of Σ₁Σ₂, so the result is real and >= 0 even
for singular (rank-deficient) covariances. F is the Cholesky factor L when every Σ₁ of
the batch is numerically positive definite (one cheap factorization, no eigenvectors:
at d = 2048 this halves the cost of the eigenvector-free eigvalsh that follows), and
otherwise S₁ = Σ₁^{1/2} from an eigendecomposition (the symmetric form S₁ Σ₂ S₁). Tiny negative eigenvalues from rounding are
clamped, and their mass is reported in the diagnostics; eigenvalues below d·eps·max|λ|
are rounding noise of a null space and count as 0 (each would add sqrt(eps·‖A‖) to the
trace otherwise). Both inputs are read through
their symmetric parts (A + Aᵀ)/2, so the op is a function on symmetric matrices and
gradcheck can perturb single entries.

Methods:
  "eigh"           ATen's linalg.eigh (LAPACK / cuSOLVER): the exact default.
  "jacobi"         our batched parallel-order cyclic Jacobi eigensolver
                   (`gandyn::frechet_jacobi_eigh`, CPU and CUDA kernels sharing
                   csrc/frechet.h); max_iter = sweeps. For batches of small and medium d
                   (one thread block per matrix on CUDA, which takes d <= 2048; the CPU
                   kernel takes d <= 8192). At d = 2048 use "eigh".
  "newton-schulz"  Σ₁ = L Lᵀ (Cholesky), then coupled Newton–Schulz in float32 for
                   sqrt(Lᵀ Σ₂ L) (same eigenvalues as Σ₁Σ₂) and one Newton step
                   X <- (X + X⁻¹A)/2 in the input dtype, after which Tr X is accurate to
                   second order in the float32 error (its gradient, built from X, keeps
                   a first-order float32 error): matmuls and one factorization,
                   for GPUs. Needs positive-definite (full-rank) covariances; computes no
                   eigenvalues (its diagnostics are empty). max_iter = iterations.

Gradient (Σ's symmetric PD; pseudo-inverses where singular, where the trace is not
differentiable):  ∂/∂Σ₂ = ½ F M^{-1/2} Fᵀ,   ∂/∂Σ₁ = ½ F⁺ᵀ M^{1/2} F⁺
(with F = S₁: ½ S₁ M^{-1/2} S₁ and ½ S₁⁺ M^{1/2} S₁⁺).
The op computes them in the forward (only when asked: `with_grad`), the backward scales
them; it is once-differentiable (double backward raises).

Public API:
    trace_sqrt(sigma1, sigma2, method="eigh", max_iter=None) -> (trace, diagnostics)
    jacobi_eigh(A, max_sweeps=30, tol=None, compute_vectors=True) -> (eigenvalues, eigenvectors)
and their pure-PyTorch references (the specification, and the fallback without the
extension). diagnostics (..., 3) = (min eigenvalue of M, clamped mass, rank of M);
empty for newton-schulz.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from gandyn import _ext

__all__ = ["METHODS", "trace_sqrt", "jacobi_eigh", "trace_sqrt_reference", "jacobi_eigh_reference",
           "default_max_iter", "truncated_sqrt"]

METHODS = ("eigh", "jacobi", "newton-schulz")
_DEFAULT_MAX_ITER = {"eigh": 1, "jacobi": 30, "newton-schulz": 30}


def default_max_iter(method: str) -> int:
    """Sweeps (jacobi) or iterations (newton-schulz) used when max_iter is None."""
    _check_method(method)
    return _DEFAULT_MAX_ITER[method]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"trace_sqrt: method must be one of {METHODS}, got {method!r}")


def _jacobi_tol(dtype: torch.dtype, d: int) -> float:
    # Off-diagonal norm at d·eps·||A||_F: eigenvalues are then exact to a few ulps of ||A||.
    return torch.finfo(dtype).eps * d


# ---------------------------------------------------------------- references (the specification)
def _round_robin_pairs(d: int) -> list[tuple[Tensor, Tensor]]:
    """(p, q) index tensors of each round of one sweep (csrc/frechet.h: round_robin_pair)."""
    m = d + (d & 1)
    rounds = []
    for r in range(m - 1):
        ps, qs = [], []
        for k in range(m // 2):
            a, b = (m - 1, r) if k == 0 else ((r + k) % (m - 1), (r - k + m - 1) % (m - 1))
            p, q = min(a, b), max(a, b)
            if q < d:
                ps.append(p)
                qs.append(q)
        rounds.append((torch.tensor(ps), torch.tensor(qs)))
    return rounds


def jacobi_eigh_reference(A: Tensor, max_sweeps: int = 30, tol: float | None = None,
                          compute_vectors: bool = True) -> tuple[Tensor, Tensor]:
    """The Jacobi kernel's algorithm, vectorized over batch and the pairs of a round."""
    _check_square("jacobi_eigh", "A", A)
    d = A.shape[-1]
    tol = _jacobi_tol(A.dtype, d) if tol is None else tol
    a = ((A + A.mT) * 0.5).reshape(-1, d, d).clone()
    vt = torch.eye(d, dtype=A.dtype, device=A.device).expand_as(a).clone()
    threshold = tol * tol * (a * a).sum((-2, -1))
    eye = torch.eye(d, dtype=torch.bool, device=A.device)
    rounds = [(p.to(A.device), q.to(A.device)) for p, q in _round_robin_pairs(d)] if d > 1 else []
    for _ in range(max_sweeps if d > 1 else 0):
        off = (a * a).masked_fill(eye, 0).sum((-2, -1))
        if bool((off <= threshold).all()):
            break
        for p, q in rounds:
            app, aqq, apq = a[:, p, p], a[:, q, q], a[:, p, q]
            safe = torch.where(apq == 0, torch.ones_like(apq), apq)
            tau = (aqq - app) / (2 * safe)
            t = torch.where(tau >= 0, 1.0, -1.0).to(a.dtype) / (tau.abs() + torch.sqrt(1 + tau * tau))
            t = torch.where(apq == 0, torch.zeros_like(t), t)
            c = 1 / torch.sqrt(1 + t * t)
            s = t * c
            for x in (a, vt):  # rows: J^T A, J^T V^T
                xp, xq = x[:, p, :], x[:, q, :]
                x[:, p, :], x[:, q, :] = c[..., None] * xp - s[..., None] * xq, s[..., None] * xp + c[..., None] * xq
            xp, xq = a[:, :, p], a[:, :, q]  # columns: A J
            a[:, :, p], a[:, :, q] = c[:, None] * xp - s[:, None] * xq, s[:, None] * xp + c[:, None] * xq
            a[:, p, q] = 0
            a[:, q, p] = 0
    values, order = torch.sort(a.diagonal(0, -2, -1), dim=-1)
    values = values.reshape(A.shape[:-1])
    if not compute_vectors:
        return values, A.new_empty(0)
    vectors = vt.mT.gather(-1, order.unsqueeze(-2).expand_as(vt))
    return values, vectors.reshape(A.shape)


def _sym(x: Tensor) -> Tensor:
    return (x + x.mT) * 0.5


def _from_eigen(vectors: Tensor, f: Tensor) -> Tensor:
    return (vectors * f.unsqueeze(-2)) @ vectors.mT


def _zero_cutoff(values: Tensor) -> Tensor:
    return values.abs().amax(-1, keepdim=True) * (torch.finfo(values.dtype).eps * values.shape[-1])


def truncated_sqrt(values: Tensor) -> Tensor:
    # Rounding-size eigenvalues (a rank-deficient covariance's null space) are zeros:
    # each would otherwise add sqrt(eps·‖A‖) to the trace.
    return torch.where(values > _zero_cutoff(values), values, torch.zeros_like(values)).sqrt()


def _pinv_sqrt(root: Tensor) -> Tensor:
    return torch.where(root > 0, root.reciprocal(), torch.zeros_like(root))


def _cholesky_or_raise(a: Tensor, what: str) -> Tensor:
    l, info = torch.linalg.cholesky_ex(a)
    if bool((info != 0).any()):
        raise ValueError(f"frechet_trace_sqrt(method='newton-schulz'): {what} must be positive definite; use "
                         f"method='eigh' for singular (rank-deficient) covariances")
    return l


def _newton_schulz_sqrt(a: Tensor, iters: int) -> tuple[Tensor, Tensor]:
    norm = torch.linalg.matrix_norm(a, keepdim=True).clamp_min(torch.finfo(torch.float32).tiny)
    eye = torch.eye(a.shape[-1], dtype=torch.float32, device=a.device)
    y = (a / norm).float()
    z = eye.expand_as(y)
    for _ in range(iters):
        t = (eye * 3.0 - z @ y) * 0.5
        y = y @ t
        z = t @ z
    x0 = _sym(y.to(a.dtype) * norm.sqrt())
    x = _sym((x0 + torch.cholesky_solve(a, _cholesky_or_raise(x0, "sigma2"))) * 0.5)
    return x, _cholesky_or_raise(x, "sigma2")


def _eigen(a: Tensor, method: str, max_iter: int, vectors: bool, jacobi) -> tuple[Tensor, Tensor]:
    if method == "eigh":
        return torch.linalg.eigh(a) if vectors else (torch.linalg.eigvalsh(a), a.new_empty(0))
    return jacobi(a, max_iter, _jacobi_tol(a.dtype, a.shape[-1]), vectors)


def _factor_sigma1(a1: Tensor, method: str, max_iter: int, jacobi):
    """(F, clamped mass of Σ₁, P -> F⁺ᵀ P F⁺) with F Fᵀ = Σ₁ (csrc/cpu/frechet.cpp: factor_sigma1)."""
    l, info = torch.linalg.cholesky_ex(a1)
    floor = a1.diagonal(0, -2, -1).amax(-1) * (torch.finfo(a1.dtype).eps * a1.shape[-1])
    if bool((info == 0).all()) and bool((l.diagonal(0, -2, -1).square().amin(-1) > floor).all()):
        def sandwich(p):  # L⁻ᵀ P L⁻¹
            y = torch.linalg.solve_triangular(l.mT, p, upper=True)
            return torch.linalg.solve_triangular(l.mT, y.mT, upper=True).mT
        return l, a1.new_zeros(a1.shape[:-2]), sandwich
    w1, v1 = _eigen(a1, method, max_iter, True, jacobi)
    r1 = truncated_sqrt(w1)
    s1_pinv = _from_eigen(v1, _pinv_sqrt(r1))
    return _from_eigen(v1, r1), (-w1).clamp_min(0).sum(-1), lambda p: s1_pinv @ p @ s1_pinv


def trace_sqrt_reference(sigma1: Tensor, sigma2: Tensor, method: str = "eigh", max_iter: int | None = None,
                         with_grad: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(trace, diagnostics, grad1, grad2), as the op `gandyn::frechet_trace_sqrt` (see module doc)."""
    _check_pair(sigma1, sigma2, method)
    max_iter = default_max_iter(method) if max_iter is None else max_iter
    jacobi = jacobi_eigh_reference
    a1, a2 = _sym(sigma1), _sym(sigma2)
    if method == "newton-schulz":
        l = _cholesky_or_raise(a1, "sigma1")
        x, lx = _newton_schulz_sqrt(_sym(l.mT @ a2 @ l), max_iter)
        trace = x.diagonal(0, -2, -1).sum(-1)
        diagnostics = sigma1.new_empty(0)  # no eigenvalues, no diagnostics
        if not with_grad:
            return trace, diagnostics, sigma1.new_empty(0), sigma1.new_empty(0)
        grad2 = _sym(l @ torch.cholesky_solve(l.mT, lx) * 0.5)
        y = torch.linalg.solve_triangular(l.mT, x, upper=True)  # L⁻ᵀ X L⁻¹
        grad1 = _sym(torch.linalg.solve_triangular(l.mT, y.mT, upper=True).mT * 0.5)
        return trace, diagnostics, grad1, grad2
    f, clamped1, sandwich = _factor_sigma1(a1, method, max_iter, jacobi)
    m = _sym(f.mT @ a2 @ f)
    wm, vm = _eigen(m, method, max_iter, with_grad, jacobi)
    rm = truncated_sqrt(wm)
    trace = rm.sum(-1)
    clamped = clamped1 + (-wm).clamp_min(0).sum(-1)
    rank = (wm > _zero_cutoff(wm)).sum(-1).to(wm.dtype)
    diagnostics = torch.stack([wm.min(-1).values, clamped, rank], -1)
    if not with_grad:
        return trace, diagnostics, sigma1.new_empty(0), sigma1.new_empty(0)
    grad2 = _sym(f @ _from_eigen(vm, _pinv_sqrt(rm)) @ f.mT * 0.5)
    grad1 = _sym(sandwich(_from_eigen(vm, rm)) * 0.5)
    return trace, diagnostics, grad1, grad2


# ---------------------------------------------------------------- checks
def _check_square(op: str, name: str, x: Tensor) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 2 or x.shape[-1] != x.shape[-2]:
        raise ValueError(f"{op}: {name} must be a batch of square matrices (..., d, d), got shape {tuple(x.shape)}")
    if x.dtype not in (torch.float32, torch.float64):
        raise TypeError(f"{op}: {name} must be float32 or float64, got {x.dtype}")
    if x.shape[-1] == 0:
        raise ValueError(f"{op}: {name} must have d >= 1, got shape {tuple(x.shape)}")


def _check_pair(sigma1: Tensor, sigma2: Tensor, method: str) -> None:
    _check_method(method)
    _check_square("trace_sqrt", "sigma1", sigma1)
    _check_square("trace_sqrt", "sigma2", sigma2)
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"trace_sqrt: sigma1 and sigma2 must have one shape, got {tuple(sigma1.shape)} "
                         f"and {tuple(sigma2.shape)}")
    if sigma1.dtype != sigma2.dtype:
        raise TypeError(f"trace_sqrt: sigma1 and sigma2 must have one dtype, got {sigma1.dtype} and {sigma2.dtype}")
    if sigma1.device != sigma2.device:
        raise ValueError(f"trace_sqrt: sigma1 and sigma2 must be on one device, got {sigma1.device} "
                         f"and {sigma2.device}")


# ---------------------------------------------------------------- op registration
def _backward(ctx, g_trace, g_diagnostics, g_grad1, g_grad2):
    if not ctx.with_grad:
        raise RuntimeError("frechet_trace_sqrt: backward of a call made with with_grad=False; "
                           "call trace_sqrt() with inputs that require grad")
    grad1, grad2 = ctx.saved_tensors
    g = g_trace[..., None, None]
    return g * grad1, g * grad2, None, None, None


def _setup_context(ctx, inputs, output):
    ctx.with_grad = inputs[4]
    ctx.save_for_backward(output[2], output[3])
    ctx.mark_non_differentiable(output[1], output[2], output[3])


if _ext.AVAILABLE:
    @torch.library.register_fake("gandyn::frechet_jacobi_eigh")
    def _jacobi_fake(A, max_sweeps, tol, compute_vectors):
        return A.new_empty(A.shape[:-1]), (A.new_empty(A.shape) if compute_vectors else A.new_empty(0))

    @torch.library.register_fake("gandyn::frechet_trace_sqrt")
    def _trace_sqrt_fake(sigma1, sigma2, method, max_iter, with_grad):
        batch = sigma1.shape[:-2]
        grads = (sigma1.new_empty(sigma1.shape), sigma1.new_empty(sigma1.shape)) if with_grad else (
            sigma1.new_empty(0), sigma1.new_empty(0))
        diagnostics = sigma1.new_empty(0) if method == "newton-schulz" else sigma1.new_empty(batch + (3,))
        return (sigma1.new_empty(batch), diagnostics) + grads

    torch.library.register_autograd("gandyn::frechet_trace_sqrt", once_differentiable(_backward),
                                    setup_context=_setup_context)


class _TraceSqrtReference(torch.autograd.Function):
    """The reference with the op's autograd formula: the fallback without the extension."""

    @staticmethod
    def forward(sigma1, sigma2, method, max_iter, with_grad):
        return trace_sqrt_reference(sigma1, sigma2, method, max_iter, with_grad)

    setup_context = staticmethod(_setup_context)
    backward = staticmethod(once_differentiable(_backward))


# ---------------------------------------------------------------- public API
def _check_finite(op: str, name: str, x: Tensor) -> None:
    # One pass over d² entries beside an O(d³) solve; a NaN would otherwise come out as a
    # plausible number (the eigen-solvers clamp it away) or as a LAPACK convergence error.
    if not torch.compiler.is_compiling() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{op}: {name} contains non-finite values (NaN or Inf)")


def jacobi_eigh(A: Tensor, max_sweeps: int = 30, tol: float | None = None,
                compute_vectors: bool = True) -> tuple[Tensor, Tensor]:
    """Eigenvalues (ascending) and eigenvectors of the symmetric part of A (..., d, d) by
    batched cyclic Jacobi; not differentiable (trace_sqrt has its own gradient)."""
    _check_square("jacobi_eigh", "A", A)
    _check_finite("jacobi_eigh", "A", A)
    if max_sweeps < 1:
        raise ValueError(f"jacobi_eigh: max_sweeps must be >= 1, got {max_sweeps}")
    tol = _jacobi_tol(A.dtype, A.shape[-1]) if tol is None else float(tol)
    if _ext.has_kernel(A.device):
        return torch.ops.gandyn.frechet_jacobi_eigh(A.detach(), max_sweeps, tol, compute_vectors)
    return jacobi_eigh_reference(A.detach(), max_sweeps, tol, compute_vectors)


def trace_sqrt(sigma1: Tensor, sigma2: Tensor, method: str = "eigh",
               max_iter: int | None = None) -> tuple[Tensor, Tensor]:
    """(Tr sqrt(Σ₁Σ₂) of shape (...), diagnostics (..., 3)) in the inputs' dtype; differentiable
    in both covariances. Checks shapes, dtypes and finiteness: gandyn.metrics.frechet_distance
    also checks symmetry and positive semi-definiteness."""
    _check_pair(sigma1, sigma2, method)
    _check_finite("trace_sqrt", "sigma1", sigma1)
    _check_finite("trace_sqrt", "sigma2", sigma2)
    max_iter = default_max_iter(method) if max_iter is None else int(max_iter)
    if max_iter < 1:
        raise ValueError(f"trace_sqrt: max_iter must be >= 1, got {max_iter}")
    with_grad = torch.is_grad_enabled() and (sigma1.requires_grad or sigma2.requires_grad)
    # The composite op runs on any device; its jacobi method needs a Jacobi kernel there.
    if _ext.AVAILABLE and (method != "jacobi" or _ext.has_kernel(sigma1.device)):
        out = torch.ops.gandyn.frechet_trace_sqrt(sigma1, sigma2, method, max_iter, with_grad)
    else:
        out = _TraceSqrtReference.apply(sigma1, sigma2, method, max_iter, with_grad)
    return out[0], out[1]
