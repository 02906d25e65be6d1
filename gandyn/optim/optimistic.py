"""Optimistic gradient descent (OGDA; Popov 1980, Daskalakis et al. 2018); with
base="adam" it is Optimistic Adam (Daskalakis et al. 2018).

    s_t   = base(v(θ_t))
    θ_t+1 = θ_t − lr · (2 s_t − s_{t−1})       s_{t−1}: state "past_step"

One field evaluation per step. The first step uses s_{−1} = s_0 (a plain
gradient step). The augmented state of the update map is (θ, past_step); with
plain SGD past_step = v(θ_{t−1}), equivalent to the 2-state (θ_t, θ_{t−1}) form.
On a bilinear game with plain SGD it converges iff lr·σ_max < 1/√3.
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class Optimistic(GameOptimizer):
    method_memory = ("past_step",)

    def _step(self, closure):
        losses, v = self.field(closure)
        for k, g in enumerate(self.param_groups):
            s = self.base_step(k, v[k])
            past = self.get_state(k, "past_step")
            self.add_to_params(k, s, -2 * g["lr"])
            self.add_to_params(k, s if past is None else past, g["lr"])
            self.remember(k, "past_step", s)
        return losses
