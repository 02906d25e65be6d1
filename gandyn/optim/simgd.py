"""Simultaneous gradient descent: every player steps along its own gradient at once.

θ ← θ − lr · base(v(θ)). One field evaluation per step. On a bilinear game it
diverges for every lr > 0 (the update matrix I − lr·J has eigenvalues
1 ∓ i·lr·σ of modulus √(1 + lr²σ²) > 1).
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class SimGD(GameOptimizer):
    def _step(self, closure):
        losses, v = self.field(closure)
        for k in range(len(self.param_groups)):
            self.descend(k, v[k])
        return losses
