"""Multi-tensor spectral normalization (Miyato et al. 2018): every layer of a network in one call.

Each weight W (shape (h, ...)) is read as the h x w matrix W.flatten(1); u has h entries,
v has w. One power-iteration step is, in the order and with the eps of
`torch.nn.utils.parametrizations.spectral_norm`:

    u <- W v / max(||W v||, eps),    v <- W^T u / max(||W^T u||, eps)

and the normalization, with u, v held constant (no gradient flows through them):

    sigma = u^T W v,    W_sn = W / sigma,
    dL/dW = G / sigma + (g_sigma - <G, W> / sigma^2) u v^T      (G = dL/dW_sn, g_sigma = dL/dsigma)

Public API (lists hold one entry per layer, all of one dtype and device; the kernels and the
references take float32/float64, and the functions below also float16/bfloat16, which they
compute in float32):

    power_iteration(weights, us, vs, n_power_iterations=1, eps=1e-12) -> (us, vs)   no gradient
    normalize(weights, us, vs) -> (normalized, sigmas)                               differentiable in weights

Both run the compiled kernels (gandyn::spectral_norm_* : one parallel pass per half-step
over all layers on CPU, one launch per half-step on CUDA) when the extension has them
for the device, else the pure-PyTorch references below, which are the specification.
The backward of `normalize` is the fused op `spectral_norm_normalize_backward`, except
under create_graph=True, where it is written with differentiable torch ops so that
double backward works (gradgradcheck, WGAN-GP on a spectrally normalized critic).
`normalize` also has a forward-mode formula (jvp), so torch.func.jvp of a game's vector
field (forward-over-reverse Jacobian–vector products) runs through the kernels. Call the
ops through this module: torch.ops.gandyn.* called directly have reverse mode only
(torch.library.register_autograd), and forward-mode AD sees zero tangents through them.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from gandyn import _ext
from gandyn.ops.autograd_function import function_for

__all__ = ["power_iteration", "normalize", "power_iteration_reference", "normalize_reference",
           "normalize_backward_reference"]


# ---------------------------------------------------------------- input checks
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _check_weights(op: str, weights: Sequence[Tensor], dtypes: tuple = _KERNEL_DTYPES) -> None:
    if len(weights) == 0:
        raise ValueError(f"{op}: weights must be a non-empty list of tensors")
    dtype, device = weights[0].dtype, weights[0].device
    if dtype not in dtypes:
        names = " or ".join(str(d).removeprefix("torch.") for d in dtypes)
        raise TypeError(f"{op}: weights must be {names}, got weights[0] of {dtype}")
    for i, w in enumerate(weights):
        if w.dim() < 2:
            raise ValueError(f"{op}: weights[{i}] must have at least 2 dimensions (read as W.flatten(1)), "
                             f"got shape {tuple(w.shape)}")
        if w.numel() == 0:
            raise ValueError(f"{op}: weights[{i}] must be non-empty, got shape {tuple(w.shape)}")
        if w.dtype != dtype:
            raise TypeError(f"{op}: all weights must share one dtype: weights[0] is {dtype}, "
                            f"weights[{i}] is {w.dtype}")
        if w.device != device:
            raise ValueError(f"{op}: all weights must be on one device: weights[0] is on {device}, "
                             f"weights[{i}] on {w.device}")


def _check_vectors(op: str, name: str, vecs: Sequence[Tensor], weights: Sequence[Tensor], rows: bool) -> None:
    if len(vecs) != len(weights):
        raise ValueError(f"{op}: {name} must have one vector per weight: len(weights) = {len(weights)}, "
                         f"len({name}) = {len(vecs)}")
    for i, (x, w) in enumerate(zip(vecs, weights)):
        n = w.shape[0] if rows else w.numel() // w.shape[0]
        if x.dim() != 1 or x.shape[0] != n:
            side = "weights[i].shape[0]" if rows else "weights[i].numel() / weights[i].shape[0]"
            raise ValueError(f"{op}: {name}[{i}] must have shape ({n},) = {side} for weights[{i}] of shape "
                             f"{tuple(w.shape)}, got {tuple(x.shape)}")
        if x.dtype != w.dtype:
            raise TypeError(f"{op}: {name}[{i}] must have dtype {w.dtype} like weights[{i}], got {x.dtype}")
        if x.device != w.device:
            raise ValueError(f"{op}: {name}[{i}] must be on {w.device} like weights[{i}], got {x.device}")
        if x.requires_grad:
            raise ValueError(f"{op}: {name}[{i}] must not require grad: u and v are held constant "
                             f"(spectral normalization differentiates W / (u^T W v) in W only)")


def _check_args(op: str, weights, us, vs, dtypes: tuple = _KERNEL_DTYPES) -> None:
    _check_weights(op, weights, dtypes)
    _check_vectors(op, "us", us, weights, rows=True)
    _check_vectors(op, "vs", vs, weights, rows=False)


def _report_non_finite(op: str, i: int, w: Tensor, u: Tensor, v: Tensor):
    for name, x in (("weights", w), ("us", u), ("vs", v)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{op}: {name}[{i}] contains non-finite values (NaN or Inf)")
    raise ValueError(f"{op}: the result for weights[{i}] overflowed (|W v|, |W^T u| or u^T W v exceeds the "
                     f"range of {w.dtype})")


def _check_sigmas(op: str, sigmas: Tensor, weights, us, vs) -> None:
    for i, s in enumerate(sigmas.tolist()):
        if not math.isfinite(s):
            _report_non_finite(op, i, weights[i], us[i], vs[i])
        if s == 0.0:
            raise ValueError(f"{op}: sigma = u^T W v is 0 for weights[{i}] (an all-zero weight, or u, v "
                             f"orthogonal to its range); W / sigma is undefined")


def _matrix(w: Tensor) -> Tensor:
    return w.reshape(w.shape[0], -1)


# ---------------------------------------------------------------- references (the specification)
@torch.no_grad()
def power_iteration_reference(weights: Sequence[Tensor], us: Sequence[Tensor], vs: Sequence[Tensor],
                              n_power_iterations: int = 1, eps: float = 1e-12) -> tuple[list[Tensor], list[Tensor]]:
    """New (us, vs) after `n_power_iterations` steps; the inputs are not modified."""
    op = "spectral_norm_power_iteration"
    _check_args(op, weights, us, vs)
    if n_power_iterations < 0:
        raise ValueError(f"{op}: n_power_iterations must be >= 0, got {n_power_iterations}")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{op}: eps must be finite and >= 0, got {eps}")
    u_out, v_out = [], []
    for i, (w, u, v) in enumerate(zip(weights, us, vs)):
        m = _matrix(w)
        u, v = u.clone(), v.clone()
        sums_of_squares = [u.new_zeros(())]  # of every W v and W^T u: one check at the end
        for _ in range(n_power_iterations):
            s = torch.mv(m, v)
            u = F.normalize(s, dim=0, eps=eps)
            t = torch.mv(m.H, u)
            v = F.normalize(t, dim=0, eps=eps)
            sums_of_squares += [s.square().sum(), t.square().sum()]
        if not bool(torch.isfinite(torch.stack(sums_of_squares)).all()):
            _report_non_finite(op, i, w, us[i], vs[i])
        u_out.append(u)
        v_out.append(v)
    return u_out, v_out


def normalize_reference(weights: Sequence[Tensor], us: Sequence[Tensor],
                        vs: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]:
    """(W_i / sigma_i, sigmas) with sigma_i = u_i^T W_i v_i; autograd differentiates it in W only."""
    op = "spectral_norm_normalize"
    _check_args(op, weights, us, vs)
    sigmas = torch.stack([torch.dot(u, torch.mv(_matrix(w), v)) for w, u, v in zip(weights, us, vs)])
    _check_sigmas(op, sigmas.detach(), weights, us, vs)
    return [w / sigmas[i] for i, w in enumerate(weights)], sigmas


def normalize_backward_reference(grads: Sequence[Tensor], weights: Sequence[Tensor], us: Sequence[Tensor],
                                 vs: Sequence[Tensor], sigmas: Tensor, grad_sigmas: Tensor) -> list[Tensor]:
    """dL/dW_i = G_i / sigma_i + (g_sigma_i - <G_i, W_i> / sigma_i^2) u_i v_i^T, in differentiable torch ops
    (sigma_i is passed in: pass one computed from W_i to differentiate this again)."""
    out = []
    for i, (g, w, u, v) in enumerate(zip(grads, weights, us, vs)):
        coef = grad_sigmas[i] - (g * w).sum() / sigmas[i].square()
        out.append(g / sigmas[i] + (coef * torch.outer(u, v)).reshape(w.shape))
    return out


# ---------------------------------------------------------------- compiled op: fake kernels and autograd
def _register_compiled() -> None:
    @torch.library.register_fake("gandyn::spectral_norm_power_iteration")
    def _(weights, us, vs, n_power_iterations, eps):
        return [u.new_empty(u.shape) for u in us], [v.new_empty(v.shape) for v in vs]

    @torch.library.register_fake("gandyn::spectral_norm_normalize")
    def _(weights, us, vs):
        return [w.new_empty(w.shape) for w in weights], weights[0].new_empty(len(weights))

    @torch.library.register_fake("gandyn::spectral_norm_normalize_backward")
    def _(grads, weights, us, vs, sigmas, grad_sigmas):
        return [w.new_empty(w.shape) for w in weights]

    def setup_context(ctx, inputs, output):
        weights, us, vs = inputs
        for name, vecs in (("us", us), ("vs", vs)):
            for i, x in enumerate(vecs):
                if x.requires_grad:
                    raise ValueError(f"spectral_norm_normalize: {name}[{i}] must not require grad: u and v are "
                                     f"held constant")
        _, sigmas = output
        ctx.n = len(weights)
        ctx.save_for_backward(*weights, *us, *vs, sigmas)
        ctx.save_for_forward(*weights, *us, *vs, sigmas)

    def backward(ctx, grads, grad_sigmas):
        n = ctx.n
        saved = ctx.saved_tensors
        weights, us, vs, sigmas = saved[:n], saved[n:2 * n], saved[2 * n:3 * n], saved[3 * n]
        grads = [torch.zeros_like(w) if g is None else g for g, w in zip(grads, weights)]
        if grad_sigmas is None:
            grad_sigmas = torch.zeros_like(sigmas)
        if torch.is_grad_enabled():
            # create_graph=True: differentiable formula, with sigma recomputed from W so that
            # its dependence on W (d sigma / dW = u v^T) is seen by the next derivative.
            sig = torch.stack([torch.dot(u, torch.mv(_matrix(w), v)) for w, u, v in zip(weights, us, vs)])
            dws = normalize_backward_reference(grads, weights, us, vs, sig, grad_sigmas)
        else:
            dws = torch.ops.gandyn.spectral_norm_normalize_backward(grads, list(weights), list(us), list(vs),
                                                                    sigmas, grad_sigmas)
        return list(dws), [None] * n, [None] * n

    torch.library.register_autograd("gandyn::spectral_norm_normalize", backward, setup_context=setup_context)

    def normalize_flat(n, *tensors):
        out, sigmas = torch.ops.gandyn.spectral_norm_normalize(*_split(n, tensors))
        return (*out, sigmas)

    def setup_context_flat(ctx, inputs, output):
        n, *tensors = inputs
        setup_context(ctx, _split(n, tensors), (output[:-1], output[-1]))

    def backward_flat(ctx, *grads):
        dws, _, _ = backward(ctx, list(grads[:-1]), grads[-1])
        return (None, *dws) + (None,) * (2 * ctx.n)

    def jvp_flat(ctx, _, *tangents):
        # d sigma_i = u_i^T dW_i v_i,   d(W_i / sigma_i) = dW_i / sigma_i - W_i d sigma_i / sigma_i^2
        n = ctx.n
        saved = ctx.saved_tensors
        weights, us, vs, sigmas = saved[:n], saved[n:2 * n], saved[2 * n:3 * n], saved[3 * n]
        d_out, d_sigmas = [], []
        for i, (w, u, v, dw) in enumerate(zip(weights, us, vs, tangents[:n])):
            if dw is None:
                d_out.append(torch.zeros_like(w))
                d_sigmas.append(sigmas.new_zeros(()))
                continue
            ds = torch.dot(u, torch.mv(_matrix(dw), v))
            d_out.append(dw / sigmas[i] - w * (ds / sigmas[i].square()))
            d_sigmas.append(ds)
        return (*d_out, torch.stack(d_sigmas))

    # The op over flat arguments (n, *weights, *us, *vs), with forward mode too (autograd_function.py).
    global _normalize_flat
    _normalize_flat = function_for("spectral_norm_normalize", normalize_flat, setup_context_flat, backward_flat,
                                   jvp_flat)


def _split(n: int, tensors) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    return list(tensors[:n]), list(tensors[n:2 * n]), list(tensors[2 * n:3 * n])


_normalize_flat = None  # set by _register_compiled


if _ext.AVAILABLE:
    _register_compiled()


# ---------------------------------------------------------------- public API
# float16/bfloat16 layers are computed in float32 and rounded back once: the power
# iteration's norms and u^T W v would lose most of their digits accumulated in 8 or 11 bits.
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _low_precision(weights: Sequence[Tensor]) -> bool:
    return len(weights) > 0 and weights[0].dtype in _LOW_PRECISION


def _float32(tensors: Sequence[Tensor]) -> list[Tensor]:
    return [t.float() for t in tensors]


def _use_kernel(weights: Sequence[Tensor]) -> bool:
    return len(weights) > 0 and _ext.has_kernel(weights[0].device)


@torch.no_grad()
def power_iteration(weights: Sequence[Tensor], us: Sequence[Tensor], vs: Sequence[Tensor],
                    n_power_iterations: int = 1, eps: float = 1e-12) -> tuple[list[Tensor], list[Tensor]]:
    """New (us, vs) of every layer after `n_power_iterations` power-iteration steps (fresh tensors;
    the inputs are left alone: copy them into buffers with Tensor.copy_ to update in place).
    float16/bfloat16 layers are computed in float32; the results have the inputs' dtype."""
    weights = [w.detach() for w in weights]
    if _low_precision(weights):
        _check_args("spectral_norm_power_iteration", weights, us, vs, _LOW_PRECISION)
        u, v = power_iteration(_float32(weights), _float32(us), _float32(vs), n_power_iterations, eps)
        return [x.to(weights[0].dtype) for x in u], [x.to(weights[0].dtype) for x in v]
    if _use_kernel(weights):
        u, v = torch.ops.gandyn.spectral_norm_power_iteration(weights, list(us), list(vs), n_power_iterations, eps)
        return list(u), list(v)
    return power_iteration_reference(weights, us, vs, n_power_iterations, eps)


def normalize(weights: Sequence[Tensor], us: Sequence[Tensor], vs: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]:
    """(W_i / sigma_i for every layer, sigmas) with sigma_i = u_i^T W_i v_i, differentiable in the weights
    (twice and more, reverse and forward mode) with u, v held constant. float16/bfloat16 layers are
    computed in float32; the results have the inputs' dtype."""
    if _low_precision(weights):
        _check_args("spectral_norm_normalize", weights, us, vs, _LOW_PRECISION)
        out, sigmas = normalize(_float32(weights), _float32(us), _float32(vs))
        return [x.to(weights[0].dtype) for x in out], sigmas.to(weights[0].dtype)
    if _use_kernel(weights):
        if len(us) != len(weights) or len(vs) != len(weights):  # before the lists are flattened
            _check_args("spectral_norm_normalize", weights, us, vs)
        *out, sigmas = _normalize_flat(len(weights), *weights, *us, *vs)
        return out, sigmas
    return normalize_reference(weights, us, vs)
