"""Consensus optimization (Mescheder et al. 2017): step along v + γ ∇(½‖v‖²) = v + γ Jᵀv.

J is the Jacobian of the whole vector field, so ∇(½‖v‖²) is one vector–Jacobian
product (one extra backward through the field's graph): per step one field
evaluation and one HVP. On a bilinear game the update matrix with plain SGD is
I − lr·J − lr·γ·JᵀJ. For a batch of games (Bilinear with A of shape (B, m, n))
½‖v‖² is a sum of per-game terms, so the batch entries stay independent.
"""
from __future__ import annotations

import torch

from gandyn.optim.base import GameOptimizer


class Consensus(GameOptimizer):
    nonnegative_options = ("gamma",)

    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, gamma: float = 1.0, **options):
        super().__init__(players, lr, base, gamma=gamma, **options)

    def _step(self, closure):
        losses, v, grad_h = self.field_and_hamiltonian_grad(closure)
        for k, g in enumerate(self.param_groups):
            self.descend(k, torch._foreach_add(v[k], grad_h[k], alpha=g["gamma"]))
        return losses
