"""Spectral normalization of every Linear/Conv layer of a network, all layers in one op call.

    D = gandyn.nn.spectral_norm(D)        # in place; returns D

gives the same outputs, gradients and state_dict as applying
`torch.nn.utils.parametrizations.spectral_norm` to each layer, but computes every
layer's W / sigma in one call of the multi-tensor ops of `gandyn.ops.spectral_norm`
per forward of the top module, instead of ~10 small ops per layer.

Semantics, as torch's parametrization (torch/nn/utils/parametrizations.py, _SpectralNorm):
- each layer's weight W (read as W.movedim(dim, 0).flatten(1); dim = 1 for ConvTranspose,
  else 0) gets buffers `_u`, `_v`: random unit vectors refined by 15 power iterations at
  creation (plus one more by the registration's consistency check, as in torch);
- in training mode every forward does `n_power_iterations` steps and updates `_u`, `_v` in
  place; in eval mode they are left alone;
- W_sn = W / (u^T W v), differentiated in W with u, v held constant;
- a 1-D weight is W / max(||W||, eps), no buffers;
- state_dict keys are torch's: `<layer>.parametrizations.weight.original`,
  `<layer>.parametrizations.weight.0._u`, `<layer>.parametrizations.weight.0._v`, so state
  dicts load both ways between torch's parametrization and this one.

How one call serves every layer: a forward pre-hook on the top module runs the power
iteration for all layers (one op call), copies the new u, v into the buffers, and
normalizes all weights (one op call); each layer's parametrization then returns its cached
W_sn, and a forward hook drops the cache when the top module's forward ends (also on an
exception). A layer reached outside the top module's forward (a direct call, or reading
`layer.weight`) computes its own W_sn exactly as torch would.

A discriminator run twice in one step (D(real) and D(fake), then one backward) is correct:
the normalization saves for backward the fresh u, v tensors returned by the power
iteration, never the buffers, so the second forward's in-place buffer update cannot
invalidate the first forward's graph (torch clones the buffers for the same reason; in
eval mode we clone them too). Double backward (WGAN-GP) goes through the normalization's
differentiable backward.

One difference from torch: a layer applied several times within ONE forward of the top
module (weight sharing) does one power iteration per top-level forward, not one per use.
"""
from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from gandyn.ops import spectral_norm as sn_ops

__all__ = ["spectral_norm", "normalized_weights", "SpectralNorm", "DEFAULT_LAYER_TYPES"]

DEFAULT_LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d,
                       nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class SpectralNorm(nn.Module):
    """The parametrization of one layer's weight: buffers `_u`, `_v` and torch's `_SpectralNorm` fields."""

    def __init__(self, weight: Tensor, n_power_iterations: int = 1, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        ndim = weight.ndim
        if dim >= ndim or dim < -ndim:
            raise IndexError(f"spectral_norm: dim must be in [-{ndim}, {ndim - 1}] for a weight of shape "
                             f"{tuple(weight.shape)}, got {dim}")
        if n_power_iterations <= 0:
            raise ValueError(f"spectral_norm: n_power_iterations must be positive, got {n_power_iterations}")
        if not eps > 0:
            raise ValueError(f"spectral_norm: eps must be > 0, got {eps}")
        self.dim = dim if dim >= 0 else dim + ndim
        self.eps = eps
        self._cached: Tensor | None = None  # W_sn of the top module's current forward
        if ndim > 1:
            self.n_power_iterations = n_power_iterations
            rows = self.as_rows(weight.detach())
            h, w = rows.shape[0], rows.numel() // rows.shape[0]
            # The same random draws, in the same order, as torch's _SpectralNorm.
            u = F.normalize(rows.new_empty(h).normal_(0, 1), dim=0, eps=eps)
            v = F.normalize(rows.new_empty(w).normal_(0, 1), dim=0, eps=eps)
            u, v = sn_ops.power_iteration([rows], [u], [v], 15, eps)
            self.register_buffer("_u", u[0])
            self.register_buffer("_v", v[0])

    def as_rows(self, weight: Tensor) -> Tensor:
        """The weight with `dim` first (a view): the ops read it as W.flatten(1)."""
        return weight if self.dim == 0 else weight.movedim(self.dim, 0)

    def from_rows(self, rows: Tensor) -> Tensor:
        return rows if self.dim == 0 else rows.movedim(0, self.dim)

    def forward(self, weight: Tensor) -> Tensor:
        if self._cached is not None:
            return self._cached
        return _normalize_layers([self], [weight])[0]

    def right_inverse(self, value: Tensor) -> Tensor:
        return value


def _normalize_group(params: list[SpectralNorm], weights: list[Tensor]) -> list[Tensor]:
    """W_sn of layers that share device, dtype, mode, n_power_iterations and eps: one op call per stage."""
    rows = [p.as_rows(w) for p, w in zip(params, weights)]
    p0 = params[0]
    if p0.training:
        us, vs = sn_ops.power_iteration(rows, [p._u for p in params], [p._v for p in params],
                                        p0.n_power_iterations, p0.eps)
        with torch.no_grad():  # in place, as torch (DataParallel replicas share these buffers)
            torch._foreach_copy_([p._u for p in params], us)
            torch._foreach_copy_([p._v for p in params], vs)
        # us, vs are fresh tensors, not the buffers: what backward saves stays valid.
    else:
        us = [p._u.clone() for p in params]
        vs = [p._v.clone() for p in params]
    normalized, _ = sn_ops.normalize(rows, us, vs)
    return [p.from_rows(x) for p, x in zip(params, normalized)]


def _normalize_layers(params: list[SpectralNorm], weights: list[Tensor]) -> list[Tensor]:
    out: list[Tensor | None] = [None] * len(params)
    groups: dict[tuple, list[int]] = defaultdict(list)
    for k, (p, w) in enumerate(zip(params, weights)):
        if w.ndim == 1:
            out[k] = F.normalize(w, dim=0, eps=p.eps)  # torch's exact path for vectors
        else:
            groups[(w.device, w.dtype, p.training, p.n_power_iterations, p.eps)].append(k)
    for idx in groups.values():
        for k, x in zip(idx, _normalize_group([params[k] for k in idx], [weights[k] for k in idx])):
            out[k] = x
    return out


def _layers(top: nn.Module) -> list[tuple[nn.Module, SpectralNorm]]:
    layers = getattr(top, "_gandyn_spectral_norm_layers", None)
    if layers is None:
        raise ValueError(f"{type(top).__name__} has no spectral normalization from gandyn.nn.spectral_norm")
    return layers


def normalized_weights(module: nn.Module) -> list[Tensor]:
    """W_sn of every layer that `spectral_norm(module)` parametrized, in one op call per stage (with
    a power-iteration step and in-place buffer update for layers in training mode), in the order of
    `module.named_modules()`: what one forward of `module` uses."""
    layers = _layers(module)
    params = [p for _, p in layers]
    originals = [layer.parametrizations["weight"].original for layer, _ in layers]
    return _normalize_layers(params, originals)


def _pre_forward(top: nn.Module, args) -> None:
    for (_, p), w in zip(_layers(top), normalized_weights(top)):
        p._cached = w


def _post_forward(top: nn.Module, args, output) -> None:
    for _, p in _layers(top):
        p._cached = None


def spectral_norm(module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12,
                  layer_types: tuple[type, ...] = DEFAULT_LAYER_TYPES) -> nn.Module:
    """Spectral normalization of the `weight` of every submodule of `module` (itself included) that is an
    instance of `layer_types`; returns `module`, modified in place. See the module docstring."""
    layers: list[tuple[nn.Module, SpectralNorm]] = []
    for name, layer in module.named_modules():
        if not isinstance(layer, layer_types):
            continue
        weight = getattr(layer, "weight", None)
        if not isinstance(weight, Tensor):
            continue
        if parametrize.is_parametrized(layer, "weight"):
            raise ValueError(f"spectral_norm: the weight of {name or 'the module'} ({type(layer).__name__}) is "
                             f"already parametrized; remove that parametrization first")
        dim = 1 if isinstance(layer, _TRANSPOSED) else 0
        p = SpectralNorm(weight, n_power_iterations, dim, eps)
        parametrize.register_parametrization(layer, "weight", p)
        layers.append((layer, p))
    if not layers:
        raise ValueError(f"spectral_norm: {type(module).__name__} has no submodule of types "
                         f"{[t.__name__ for t in layer_types]} with a weight")
    module._gandyn_spectral_norm_layers = layers
    module.register_forward_pre_hook(_pre_forward)
    module.register_forward_hook(_post_forward, always_call=True)
    return module
