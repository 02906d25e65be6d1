"""Extragradient from the past (Popov 1980; Gidel et al. 2019): the extrapolation
reuses what was computed at the previous extrapolated point. Two variants, which
coincide with plain SGD (base="sgd", no momentum) and differ with a stateful base:

past="step" (the default): the extrapolation reuses the previous base *step*

    θ½_t  = P(θ_t − lr · s_{t−1})        s_{t−1} = base(v(θ½_{t−1})), state "past_step"
    s_t   = base(v(θ½_t))
    θ_t+1 = P(θ_t − lr · s_t)

so the base optimizer's state advances once per step. One field evaluation per step.

past="gradient": Gidel et al. 2019's Past-Extra-Adam as their Algorithm 4 and their
reference trainer run it (Variational-Inequality-GAN, `PastExtragradient.extrapolation()`
called on the gradient left from the previous step): the stored past *gradient* is
re-fed to the base optimizer at the extrapolation,

    θ½_t  = P(θ_t − lr · base(g_{t−1}))  g_{t−1} = v(θ½_{t−1}), state "past_grad"
    g_t   = v(θ½_t)
    θ_t+1 = P(θ_t − lr · base(g_t))

so Adam's moments (and its bias-correction counter, or the momentum buffer) advance
twice per step, once with g_{t−1} and once with g_t. At the first step there is no past
gradient: no extrapolation and one base update, as in the reference trainer.

(P: the groups' projection, the identity when unconstrained.) The memory starts at
zero, so the first step is a plain gradient step. The losses returned are those at
θ_t, the start of the step: they cost one extra closure call that is not
differentiated (counted in `loss_evals`). The augmented state of the update map is
(θ, past_step) or (θ, past_grad) and the base's buffers. On a bilinear game with
plain SGD it converges iff lr·σ_max < 1/√3.
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer

PAST = ("step", "gradient")


class ExtragradientPast(GameOptimizer):
    method_memory = ("past_step",)

    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, past: str = "step", **options):
        if past not in PAST:
            raise ValueError(f"past: expected one of {PAST} (reuse the previous base step, or re-feed the "
                             f"previous gradient to the base: Gidel et al. 2019, Algorithm 4), got {past!r}")
        self.past = past
        self.method_memory = ("past_step",) if past == "step" else ("past_grad",)
        super().__init__(players, lr, base, **options)

    def _step(self, closure):
        losses = self.losses_only(closure)
        start = self.snapshot()
        ks = range(len(self.param_groups))
        key = self.method_memory[0]
        for k in ks:
            past = self.get_state(k, key)
            if past is None:
                continue
            if self.past == "step":
                self.add_to_params(k, past, -self.param_groups[k]["lr"])
            else:
                self.descend(k, past)
        self.project()
        _, v_half = self.field(closure)
        self.restore(start)
        for k in ks:
            if self.past == "step":
                s = self.base_step(k, v_half[k])
                self.add_to_params(k, s, -self.param_groups[k]["lr"])
                self.remember(k, "past_step", s)
            else:
                self.descend(k, v_half[k])
                self.set_state(k, "past_grad", v_half[k])
        return losses
