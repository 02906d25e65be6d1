"""The gradient a generator loss sends back to G's samples, per sample, by autograd.

For a logit a = D(x) with D(x) = σ(a), the two generator losses of Goodfellow et al. (2014)
differentiate in the logit as

    saturating      L_G = log(1 − σ(a)):   ∂L_G/∂a = −σ(a)       → 0 as D(G(z)) → 0
    non-saturating  L_G = −log σ(a):       ∂L_G/∂a = −(1 − σ(a)) → −1 as D(G(z)) → 0

so early in training, when D rejects G's samples confidently, the saturating loss gives G
almost nothing to follow. Through D, ∂L_G/∂x = ∂L_G/∂a · ∇ₓD(x).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gandyn.nn.losses import gan_losses


def generator_gradients(loss: str, D, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(D(x) = σ(logit), ∂L_G/∂logit, ∂L_G/∂x) per sample of x (B, ...), by autograd through
    gandyn.nn.losses' L_G of `loss` and through D (each sample's own term: the batch mean's
    1/B is undone)."""
    if loss not in ("saturating", "non-saturating"):
        raise ValueError(f"loss: expected 'saturating' or 'non-saturating', got {loss!r}")
    x = x.detach().requires_grad_(True)
    logit = D(x).reshape(x.shape[0])
    # L_G depends on the fake logits only; the real ones are a placeholder.
    loss_g, _ = gan_losses(loss, torch.zeros_like(logit), logit)
    d_logit, d_x = torch.autograd.grad(loss_g * x.shape[0], (logit, x))
    return torch.sigmoid(logit).detach(), d_logit, d_x
