"""Extragradient from the past (Popov 1980; Gidel et al. 2019): the extrapolation
reuses the step computed at the previous extrapolated point.

    θ½_t  = P(θ_t − lr · s_{t−1})        s_{t−1} = base(v(θ½_{t−1})), state "past_step"
    s_t   = base(v(θ½_t))
    θ_t+1 = P(θ_t − lr · s_t)

(P: the groups' projection, the identity when unconstrained.)
One field evaluation per step (at θ½). The memory starts at zero, so the first
step is a plain gradient step. The losses returned are those at θ_t, the start of
the step: they cost one extra closure call that is not differentiated (counted
in `loss_evals`). The augmented state of the update map is (θ, past_step).
On a bilinear game with plain SGD it converges iff lr·σ_max < 1/√3.
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class ExtragradientPast(GameOptimizer):
    method_memory = ("past_step",)

    def _step(self, closure):
        losses = self.losses_only(closure)
        start = self.snapshot()
        for k in range(len(self.param_groups)):
            past = self.get_state(k, "past_step")
            if past is not None:
                self.add_to_params(k, past, -self.param_groups[k]["lr"])
        self.project()
        _, v_half = self.field(closure)
        self.restore(start)
        for k in range(len(self.param_groups)):
            s = self.base_step(k, v_half[k])
            self.add_to_params(k, s, -self.param_groups[k]["lr"])
            self.remember(k, "past_step", s)
        return losses
