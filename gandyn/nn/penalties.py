"""Gradient penalties on the discriminator, as the scalar to add to D's loss.

Conventions (one per regularizer; the norm is over ALL non-batch dimensions of ∇ₓD):

- "r1":      γ/2 · E‖∇ₓD(x)‖²          at real samples x            (weight = γ)
- "r2":      γ/2 · E‖∇ₓD(x̃)‖²          at fake samples x̃            (weight = γ)
- "wgan-gp": λ · E(‖∇ₓD(x̂)‖ − t)²      at x̂ = εx + (1−ε)x̃, ε ~ U(0, 1) per sample
                                                           (weight = λ, target = t)

By default the samples enter as constants (detach=True): the penalty is a function
of D's parameters alone, which is what a training loop that calls .backward() on
D's loss wants. With detach=False the fake samples keep their graph, so the
penalty is also a function of G's parameters through x̃ = G(z): the game Jacobian's
cross block ∂v_D/∂θ_G then includes the penalty's share (GANGame uses this; only D
differentiates its own loss there, so G's field is unchanged). Either way the
graph is kept (create_graph) so that the penalty can be differentiated w.r.t. D's
parameters, and again by optimizers that differentiate the field.

Lazy regularization (StyleGAN2): with every=k the penalty is computed only at steps
where step % k == 0, multiplied by k, and is 0 at the other steps — the same
expected gradient at 1/k of the cost.

The per-sample norm and penalty run in the fused op gandyn.ops.gradient_penalty
(impl="reference" selects its plain-PyTorch body). Both bodies, and the input
gradient below, also work inside torch.func transforms, so the diagnostics can take
forward-over-reverse Jacobian–vector products of a game with a penalty.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

from gandyn.ops import gradient_penalty as gp_op
from gandyn.ops.autograd_function import inside_torch_func_transform

KINDS = ("wgan-gp", "r1", "r2")


def _checked_sum(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    out = D(x)
    if out.shape[:1] != x.shape[:1] or out.numel() != x.shape[0]:
        raise ValueError(f"D: expected one output per sample, shape ({x.shape[0]},) or ({x.shape[0]}, 1), "
                         f"got {tuple(out.shape)}")
    return out.sum()


def input_gradient(D: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """∇ₓD at each sample of x (B, ...), kept differentiable w.r.t. D's parameters
    (and w.r.t. whatever x itself depends on, when x carries a graph)."""
    if inside_torch_func_transform():
        # autograd.grad cannot run inside torch.func transforms (requires_grad_ is refused
        # there), and torch.func.grad cannot run D's in-place buffer updates (BatchNorm's
        # running statistics) outside them: each path where the other fails.
        return torch.func.grad(lambda inp: _checked_sum(D, inp))(x)
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_checked_sum(D, x), x, create_graph=True)
    return grad


def _check_samples(name: str, x: Tensor | None) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a Tensor of samples (B, ...), got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch (B, ...) with B > 0, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor, got {x.dtype}")
    return x


def gradient_penalty(D: Callable[[Tensor], Tensor], real: Tensor | None = None, fake: Tensor | None = None,
                     kind: str = "wgan-gp", target: float | None = None, weight: float = 10.0, *,
                     step: int = 0, every: int = 1, generator: torch.Generator | None = None,
                     impl: str = "auto", detach: bool = True, eps: Tensor | None = None) -> Tensor:
    """The penalty of `kind` (see the module docstring), to add to D's loss.

    real, fake: batches (B, ...); "r1" needs only real, "r2" only fake (the other may be
        omitted); "wgan-gp" both, of one shape, dtype and device.
    target: the norm WGAN-GP pulls toward (default 1; >= 0). R1/R2 penalize ‖∇D‖², i.e.
        target 0, by definition: a target given with them is refused, not ignored.
    weight: λ for WGAN-GP, γ for R1/R2: a finite number >= 0.
    step, every: lazy regularization — computed (times `every`) only when step % every == 0.
    generator: draws WGAN-GP's ε (on real's device).
    detach: treat the samples as constants (see the module docstring).
    eps: WGAN-GP's interpolation weights (B,) given instead of drawn (a rank's shard of a
    global batch's draw).
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if kind != "wgan-gp" and target is not None:
        raise ValueError(f"target: {kind} penalizes the squared norm (target 0 by definition); "
                         f"target applies to wgan-gp only, got target={target!r}")
    target = gp_op.check_target(1.0 if target is None else target)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) \
            or weight < 0:
        raise ValueError(f"weight: expected a finite number >= 0 (λ or γ), got {weight!r}")
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"every: expected an integer >= 1, got {every!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step: expected an integer >= 0, got {step!r}")
    if kind == "r1":
        x = _check_samples("real", real)
    elif kind == "r2":
        x = _check_samples("fake", fake)
    else:
        real, fake = _check_samples("real", real), _check_samples("fake", fake)
        if real.shape != fake.shape:
            raise ValueError(f"real, fake: expected one shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
        if real.dtype != fake.dtype or real.device != fake.device:
            raise ValueError(f"real, fake: expected one dtype and device, got {real.dtype} on {real.device} "
                             f"and {fake.dtype} on {fake.device}")
        x = real
    if detach:
        x = x.detach()
    if step % every != 0:
        return x.new_zeros(())
    if kind == "wgan-gp":
        if eps is None:
            eps = torch.rand(real.shape[0], generator=generator, device=real.device, dtype=real.dtype)
        elif eps.shape != (real.shape[0],):
            raise ValueError(f"eps: expected interpolation weights of shape ({real.shape[0]},), "
                             f"got {tuple(eps.shape)}")
        if detach:
            real, fake = real.detach(), fake.detach()
        x = gp_op.interpolate(real, fake, eps)
        penalty = weight * gp_op.gradient_penalty(input_gradient(D, x), target, impl=impl)
    else:
        penalty = weight / 2 * gp_op.gradient_penalty(input_gradient(D, x), 0.0, impl=impl)
    return penalty * every if every != 1 else penalty
