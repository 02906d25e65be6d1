"""Consensus optimization (Mescheder et al. 2017): step along v + γ ∇(½‖v‖²) = v + γ Jᵀv.

J is the Jacobian of the whole vector field, so ∇(½‖v‖²) is one vector–Jacobian
product (one extra backward through the field's graph): per step one field
evaluation and one HVP. On a bilinear game the update matrix with plain SGD is
I − lr·J − lr·γ·JᵀJ. For a batch of games (Bilinear with A of shape (B, m, n))
½‖v‖² is a sum of per-game terms, so the batch entries stay independent.
"""
from __future__ import annotations

import torch

from gandyn.optim.base import GameOptimizer, grad_or_zeros


class Consensus(GameOptimizer):
    nonnegative_options = ("gamma",)

    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, gamma: float = 1.0, **options):
        super().__init__(players, lr, base, gamma=gamma, **options)

    def _step(self, closure):
        losses, v = self.field(closure, create_graph=True)
        ks = range(len(self.param_groups))
        flat_v = [t for k in ks for t in v[k]]
        values = [p for k in ks for p in self.values(k)]
        outs = flat_v if self.differentiable else [t.detach() for t in flat_v]
        jtv = grad_or_zeros(flat_v, values, outs, create_graph=self.differentiable)
        self.hvp_evals += 1
        at = 0
        for k, g in enumerate(self.param_groups):
            n = len(g["params"])
            vk = v[k] if self.differentiable else [t.detach() for t in v[k]]
            d = torch._foreach_add(vk, jtv[at:at + n], alpha=g["gamma"])
            self.descend(k, d)
            at += n
        return losses
