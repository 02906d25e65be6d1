"""Extragradient (Korpelevich 1976); with base="adam" it is Extra-Adam (Gidel et al. 2019).

    θ½ = θ − lr · base(v(θ))        (extrapolation)
    θ' = θ − lr · base(v(θ½))       (update, from θ)

Two field evaluations per step. As in Gidel et al.'s Extra-Adam the base
optimizer's state (momentum, Adam moments) advances at both half-steps. On a
bilinear game with plain SGD it converges iff lr·σ_max < 1.
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class Extragradient(GameOptimizer):
    def _step(self, closure):
        losses, v = self.field(closure)
        start = self.snapshot()
        for k in range(len(self.param_groups)):
            self.descend(k, v[k])
        _, v_half = self.field(closure)
        self.restore(start)
        for k in range(len(self.param_groups)):
            self.descend(k, v_half[k])
        return losses
