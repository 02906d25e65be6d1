"""Weight initialization of GAN models, with or without spectral normalization.

    init_weights(module, "dcgan")      # Radford et al. 2015, Sec. 4: N(0, 0.02)
    init_weights(module, "xavier")     # Glorot uniform, as the SNGAN (chainer) code
    init_weights(module, "default")    # leave torch's own initialization

Schemes, per layer type:

- Linear / Conv* / ConvTranspose* / Embedding weights:
  "dcgan": N(0, 0.02); "xavier": xavier_uniform_ with gain `layer.init_gain` (default 1).
  The SNGAN code (pfnet-research/sngan_projection, `resblocks.py`) initializes the two 3x3
  convs of every residual block with GlorotUniform(sqrt 2) and the 1x1 shortcut, the first
  linear, the last conv and the SN linear/embedding with GlorotUniform(1); our ResNet models
  mark their residual convs with `init_gain = sqrt(2)` to do the same. Mark your own layers
  the same way (`conv.init_gain = 2 ** 0.5`).
  Biases are set to 0 by both schemes (chainer's default; torch's default is uniform).
- BatchNorm* (affine) and ConditionalBatchNorm2d (per-class gamma, beta):
  "dcgan": gamma N(1, 0.02), beta 0 (as PyTorch's examples/dcgan); "xavier": gamma 1, beta 0.
- "default" changes nothing.

A model with spectral normalization (`gandyn.nn.spectral_norm` or torch's parametrization):
either initialize it BEFORE calling spectral_norm (the power iteration of the parametrization
then starts from the final weights), or call `init_weights` on the normalized model, which
writes the raw weight `layer.parametrizations.weight.original` (the effective `layer.weight`
is W / sigma(W) and cannot be written) and then refreshes the power-iteration vectors u, v
(15 steps, as at the parametrization's creation) so that sigma is estimated for the new
weights. Either way, after `init_weights(spectral_norm(net), "dcgan")` the raw weights have
std 0.02 and the effective weights spectral norm 1.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gandyn.nn.spectral_norm import SpectralNorm
from gandyn.ops import spectral_norm as sn_ops

__all__ = ["init_weights", "SCHEMES"]

SCHEMES = ("dcgan", "xavier", "default")
_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
             nn.ConvTranspose3d, nn.Embedding)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_REFRESH_STEPS = 15


def _fill(w: Tensor, scheme: str, gain: float) -> None:
    if scheme == "dcgan":
        nn.init.normal_(w, 0.0, 0.02)
    else:
        nn.init.xavier_uniform_(w, gain=gain)


def _refresh_spectral_norm(layer: nn.Module) -> None:
    """Re-run the power iteration of the SN parametrization(s) of `layer.weight` for its new raw weight."""
    original = layer.parametrizations.weight.original
    for p in layer.parametrizations.weight:
        if isinstance(p, SpectralNorm) and hasattr(p, "_u"):
            us, vs = sn_ops.power_iteration([p.as_rows(original.detach())], [p._u], [p._v],
                                            _REFRESH_STEPS, p.eps)
            p._u.copy_(us[0])
            p._v.copy_(vs[0])
        elif hasattr(p, "_power_method") and hasattr(p, "_u"):  # torch's _SpectralNorm
            p._power_method(p._reshape_weight_to_matrix(original.detach()), _REFRESH_STEPS)


def _init_weight(layer: nn.Module, scheme: str) -> None:
    gain = float(getattr(layer, "init_gain", 1.0))
    if parametrize.is_parametrized(layer, "weight"):
        plist = layer.parametrizations.weight
        if hasattr(plist, "original"):
            _fill(plist.original, scheme, gain)
            _refresh_spectral_norm(layer)
        else:  # a parametrization with several originals (e.g. weight_norm): set through right_inverse
            w = torch.empty_like(layer.weight)
            _fill(w, scheme, gain)
            layer.weight = w
    else:
        _fill(layer.weight, scheme, gain)
    bias = getattr(layer, "bias", None)
    if isinstance(bias, Tensor):
        bias.zero_()


def _init_norm(gamma: Tensor | None, beta: Tensor | None, scheme: str) -> None:
    if gamma is not None:
        if scheme == "dcgan":
            nn.init.normal_(gamma, 1.0, 0.02)
        else:
            gamma.fill_(1.0)
    if beta is not None:
        beta.zero_()


def init_weights(module: nn.Module, scheme: str = "dcgan") -> nn.Module:
    """Initialize every Linear/Conv/ConvTranspose/Embedding/BatchNorm of `module` (itself included)
    by `scheme` ("dcgan", "xavier" or "default"; see the module docstring), in place; returns `module`.

    Works on spectrally normalized models: the raw weights (`parametrizations.weight.original`) are
    written and the power-iteration vectors refreshed. Or initialize before `spectral_norm(module)`.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"init_weights: scheme must be one of {list(SCHEMES)}, got {scheme!r}")
    if scheme == "default":
        return module
    from gandyn.nn.models.conditional import ConditionalBatchNorm2d

    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, _WEIGHTED):
                _init_weight(m, scheme)
            elif isinstance(m, _BATCHNORMS) and m.affine:
                _init_norm(m.weight, m.bias, scheme)
            elif isinstance(m, ConditionalBatchNorm2d):
                _init_norm(m.gamma, m.beta, scheme)
    return module
