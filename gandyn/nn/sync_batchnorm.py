"""Batch norm with statistics over the global batch of every rank, differentiable to any order.

torch.nn.SyncBatchNorm runs on GPUs only and its backward is differentiable once, while
consensus, SGA, CGD and gradient penalties differentiate the field again. This one
computes the batch mean and (biased) variance with torch.distributed.nn's all-reduce,
whose backward is an all-reduce again, so every derivative of a rank's loss sees the
global batch's statistics, on gloo (CPU) as on NCCL:

    μ = Σ_ranks Σ x / n,   σ² = Σ_ranks Σ (x − μ)² / n,   n = world size × per-rank count

(two passes: no Σx² − nμ² cancellation). Running statistics follow torch's convention
(the unbiased σ²·n/(n−1), momentum or the cumulative average). On one process, or in eval
mode, it is exactly torch's batch norm. `convert_sync_batchnorm(module)` swaps every
torch batch norm of a model for it (game_args.sync_batchnorm = true).
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from gandyn import distributed


class SyncBatchNorm(_BatchNorm):
    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"SyncBatchNorm: expected an input (B, C, ...) of at least 2 dimensions, "
                             f"got shape {tuple(input.shape)}")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and distributed.active()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        n = input.numel() // input.shape[1] * distributed.world_size()
        mean = distributed.sum_differentiable(input.sum(dims)) / n
        centred = input - mean.view(shape)
        var = distributed.sum_differentiable((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / max(n - 1, 1)), alpha=m)
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """`module` with every torch BatchNorm1d/2d/3d replaced by a SyncBatchNorm holding the
    same parameters and statistics (in place for children; returns the root's replacement)."""
    if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
        new = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                            module.track_running_stats, device=_device_of(module), dtype=_dtype_of(module))
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        module.add_module(name, convert_sync_batchnorm(child))
    return module


def _device_of(m: nn.Module):
    t = next(iter(list(m.parameters()) + list(m.buffers())), None)
    return None if t is None else t.device


def _dtype_of(m: nn.Module):
    t = next(iter(m.parameters()), None)
    return None if t is None else t.dtype
