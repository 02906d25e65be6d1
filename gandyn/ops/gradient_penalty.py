"""Fused gradient-norm penalty: mean_i (‖g_i‖ − t)² over a batch of gradients.

For a gradient ``grad`` of shape (B, ...) — typically ∇ₓD at B samples — with rows
g_i, the norm is taken over ALL non-batch dimensions (for images: over C, H and W;
a norm over dim=1 alone would be a per-pixel norm, which is not the penalty):

    n_i     = ‖g_i‖₂                          (returned as ``norms``)
    penalty = (1/B) Σ_i (n_i − t)²            t = target; t = 0 gives E‖g‖² (R1/R2)

The weights λ (WGAN-GP) and γ/2 (R1/R2) are applied by ``gandyn.nn.gradient_penalty``.

Bodies that agree: the CPU kernel (float32/float64), the CUDA kernel (also
float16/bfloat16, accumulating in float) and ``reference`` below, which is the
specification and the fallback when the extension has no kernel for the device.
An empty batch (B = 0) is an error: the mean over no samples is undefined.

The backward, d penalty/d g_i = (2/B)(1 − t/n_i) g_i, is itself differentiable
(gradgradcheck passes), so consensus optimization and SGA can differentiate
through it. At a zero row we take 1/n_i := 0, so the gradient there is 0.
Both the op and its backward also have forward-mode formulas (jvp), so
`torch.func.jvp` of a game's vector field — forward-over-reverse Jacobian–vector
products — runs through the fused kernels. That holds for the functions of this
module: torch.ops.gandyn.* called directly have reverse mode only
(torch.library.register_autograd), and forward-mode AD sees zero tangents through them.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from gandyn import _ext
from gandyn.ops.autograd_function import function_for

IMPLS = ("auto", "kernel", "reference")


def _check_grad(grad: Tensor) -> None:
    if not isinstance(grad, Tensor):
        raise TypeError(f"grad: expected a Tensor, got {type(grad).__name__}")
    if grad.dim() < 1:
        raise ValueError("grad: expected rank >= 1 with the batch first, got a 0-d tensor")
    if grad.shape[0] == 0:
        raise ValueError("grad: empty batch (size 0 along dim 0); the mean over samples is undefined")
    if not grad.is_floating_point():
        raise TypeError(f"grad: expected a floating-point tensor, got {grad.dtype}")


def check_target(target) -> float:
    """The norm the penalty pulls toward: a finite number >= 0, or ValueError naming target."""
    if isinstance(target, bool) or not isinstance(target, (int, float)) or not math.isfinite(target) \
            or target < 0:
        raise ValueError(f"target: expected a finite number >= 0 (a gradient norm), got {target!r}")
    return float(target)


def _opmath(dtype: torch.dtype) -> torch.dtype:
    """Dtype of the norms: float32 for float16/bfloat16/float32, float64 for float64."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def reference(grad: Tensor, target: float = 1.0) -> tuple[Tensor, Tensor]:
    """(penalty, norms) in plain PyTorch: the specification of the op."""
    _check_grad(grad)
    norms = torch.linalg.vector_norm(grad.reshape(grad.shape[0], -1).to(_opmath(grad.dtype)), dim=1)
    return ((norms - target) ** 2).mean().to(grad.dtype), norms


def _inv_norms(norms: Tensor) -> Tensor:
    """1/n with 1/0 := 0, written so that its own gradient is finite at n = 0."""
    positive = norms > 0
    return torch.where(positive, 1.0 / torch.where(positive, norms, torch.ones_like(norms)), torch.zeros_like(norms))


def _row_dot(a: Tensor, b: Tensor, dtype: torch.dtype) -> Tensor:
    """<a_i, b_i> per row, in `dtype`."""
    rows = a.shape[0]
    return (a.reshape(rows, -1).to(dtype) * b.reshape(rows, -1).to(dtype)).sum(dim=1)


def _rows(x: Tensor, per_row: Tensor) -> Tensor:
    """per_row (B,) broadcast against x (B, ...)."""
    return per_row.reshape((-1,) + (1,) * (x.dim() - 1))


if _ext.AVAILABLE and hasattr(torch.ops.gandyn, "gradient_penalty"):

    @torch.library.register_fake("gandyn::gradient_penalty")
    def _(grad: Tensor, target: float) -> tuple[Tensor, Tensor]:
        torch._check(grad.dim() >= 1, lambda: "grad: expected rank >= 1")
        return grad.new_empty(()), grad.new_empty((grad.shape[0],), dtype=_opmath(grad.dtype))

    @torch.library.register_fake("gandyn::gradient_penalty_backward")
    def _(grad_output: Tensor, grad: Tensor, norms: Tensor, target: float) -> Tensor:
        return torch.empty_like(grad, memory_format=torch.contiguous_format)

    def _setup_forward(ctx, inputs, output) -> None:
        grad, target = inputs
        _, norms = output
        # A gradient that never reaches `norms` stays None: no zero-filled work for it.
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(grad, norms)
        ctx.save_for_forward(grad, norms)
        ctx.target = target

    def _backward_forward(ctx, grad_penalty: Tensor | None, grad_norms: Tensor | None):
        grad, norms = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        out = None
        if grad_penalty is not None:
            out = _penalty_backward(grad_penalty, grad, norms, ctx.target)
        if grad_norms is not None:
            # d n_i / d g_i = g_i / n_i: reached by double backward through the saved norms.
            via_norms = grad * _rows(grad, grad_norms * _inv_norms(norms)).to(grad.dtype)
            out = via_norms if out is None else out + via_norms
        return out, None

    def _jvp_forward(ctx, d_grad: Tensor | None, _):
        # dn_i = <g_i, dg_i>/n_i,  d penalty = (2/B) Σ_i (n_i − t) dn_i.
        grad, norms = ctx.saved_tensors
        if d_grad is None:
            return torch.zeros((), dtype=grad.dtype, device=grad.device), torch.zeros_like(norms)
        d_norms = _row_dot(grad, d_grad, norms.dtype) * _inv_norms(norms)
        d_penalty = (2.0 / grad.shape[0]) * ((norms - ctx.target) * d_norms).sum()
        return d_penalty.to(grad.dtype), d_norms

    torch.library.register_autograd("gandyn::gradient_penalty", _backward_forward, setup_context=_setup_forward)

    def _setup_backward(ctx, inputs, output) -> None:
        grad_output, grad, norms, target = inputs
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(grad_output, grad, norms)
        ctx.save_for_forward(grad_output, grad, norms)
        ctx.target = target

    def _backward_backward(ctx, v: Tensor | None):
        # The backward op is out_i = gout·(2/B)·s_i·g_i with s_i = 1 − t/n_i. Its gradients:
        #   d/d gout = (2/B) Σ_i s_i <g_i, v_i>
        #   d/d g_i  = gout·(2/B)·s_i·v_i        (the backward op itself, applied to v)
        #   d/d n_i  = gout·(2/B)·t/n_i²·<g_i, v_i>
        grad_output, grad, norms, target = *ctx.saved_tensors, ctx.target
        if v is None:
            return None, None, None, None
        rows = grad.shape[0]
        need_gout, need_grad, need_norms = ctx.needs_input_grad[:3]
        d_gout = d_grad = d_norms = None
        if need_grad:
            d_grad = _penalty_backward(grad_output, v, norms, target)
        if need_gout or need_norms:
            dots = _row_dot(grad, v, norms.dtype)
            inv = _inv_norms(norms)
            if need_gout:
                d_gout = ((2.0 / rows) * ((1.0 - target * inv) * dots).sum()).to(grad_output.dtype)
            if need_norms:
                d_norms = grad_output.to(norms.dtype) * (2.0 / rows) * target * inv * inv * dots
        return d_gout, d_grad, d_norms, None

    def _jvp_backward(ctx, d_gout: Tensor | None, d_grad: Tensor | None, d_norms: Tensor | None, _):
        # out is linear in gout and in g, so two of its three terms are the op itself:
        #   d out_i = op(d gout, g)_i + op(gout, dg)_i + gout·(2/B)·t/n_i²·dn_i·g_i
        grad_output, grad, norms, target = *ctx.saved_tensors, ctx.target
        op = torch.ops.gandyn.gradient_penalty_backward
        out = torch.zeros_like(grad)
        if d_gout is not None:
            out = out + op(d_gout, grad, norms, target)
        if d_grad is not None:
            out = out + op(grad_output, d_grad, norms, target)
        if d_norms is not None:
            inv = _inv_norms(norms)
            scale = grad_output.to(norms.dtype) * (2.0 / grad.shape[0]) * target * inv * inv * d_norms
            out = out + grad * _rows(grad, scale).to(grad.dtype)
        return out

    torch.library.register_autograd("gandyn::gradient_penalty_backward", _backward_backward,
                                    setup_context=_setup_backward)

    # Reverse mode, torch.autograd.forward_ad and torch.func transforms alike (autograd_function.py).
    _penalty = function_for("gradient_penalty", torch.ops.gandyn.gradient_penalty, _setup_forward,
                            _backward_forward, _jvp_forward)
    _penalty_backward = function_for("gradient_penalty_backward", torch.ops.gandyn.gradient_penalty_backward,
                                     _setup_backward, _backward_backward, _jvp_backward)


def _use_kernel(grad: Tensor, impl: str) -> bool:
    if impl not in IMPLS:
        raise ValueError(f"impl: expected one of {IMPLS}, got {impl!r}")
    has = _ext.has_kernel(grad.device) and hasattr(torch.ops.gandyn, "gradient_penalty")
    if impl == "kernel" and not has:
        raise RuntimeError(f"impl='kernel': the extension gandyn._C has no kernel for device {grad.device} "
                           f"(build it with: {_ext.BUILD_HINT})")
    if impl == "reference" or not has:
        return False
    supported = (torch.float32, torch.float64) + ((torch.float16, torch.bfloat16) if grad.is_cuda else ())
    if grad.dtype not in supported:
        if impl == "kernel":
            raise TypeError(f"grad: the {grad.device.type} kernel takes {supported}, got {grad.dtype}")
        return False
    return True


def gradient_penalty(grad: Tensor, target: float = 1.0, *, return_norms: bool = False,
                     check_finite: bool = True, impl: str = "auto") -> Tensor | tuple[Tensor, Tensor]:
    """mean_i (‖grad_i‖ − target)², the norm over all non-batch dims of grad (B, ...).

    target=1 is the WGAN-GP term (before λ), target=0 the R1/R2 term E‖g‖² (before γ/2).
    return_norms: also return the per-sample norms (B,) — float32, or float64 for float64 grad.
    check_finite: raise ValueError when the penalty is NaN/Inf, i.e. grad holds a
        non-finite value (one scalar check; on CUDA it waits for the result).
    impl: "auto" (the fused kernel when the extension has one for grad's device and
        dtype, else the reference), "kernel" or "reference".
    """
    _check_grad(grad)
    target = check_target(target)
    if _use_kernel(grad, impl):
        penalty, norms = _penalty(grad, target)
    else:
        penalty, norms = reference(grad, target)
    if check_finite and not torch.compiler.is_compiling() and not bool(torch.isfinite(penalty)):
        raise ValueError("grad: contains non-finite values (NaN or Inf), or its squared norm overflows "
                         f"{grad.dtype}; the gradient penalty is {penalty.item()}")
    return (penalty, norms) if return_norms else penalty


def interpolate(real: Tensor, fake: Tensor, eps: Tensor) -> Tensor:
    """x̂ = eps·real + (1 − eps)·fake, with eps of shape (B,) broadcast over non-batch dims.

    One fused elementwise kernel already (torch.lerp), so it needs no custom op.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real, fake: expected one shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    if real.dtype != fake.dtype or real.device != fake.device:
        raise ValueError(f"real, fake: expected one dtype and device, got {real.dtype} on {real.device} "
                         f"and {fake.dtype} on {fake.device}")
    if real.dim() < 1 or eps.shape != real.shape[:1]:
        raise ValueError(f"eps: expected shape ({real.shape[0] if real.dim() else '?'},) = (batch,), "
                         f"got {tuple(eps.shape)}")
    return torch.lerp(fake, real, _rows(real, eps).to(real.dtype))
