"""Extragradient (Korpelevich 1976); with base="adam" it is Extra-Adam (Gidel et al. 2019).

    θ½ = P(θ − lr · base(v(θ)))        (extrapolation)
    θ' = P(θ − lr · base(v(θ½)))       (update, from θ)

P is the groups' projection (identity when unconstrained: Gidel et al.'s projected
extragradient, their eq. (EG)). Two field evaluations per step. As in Gidel et al.'s
Extra-Adam the base optimizer's state (momentum, Adam moments) advances at both
half-steps. On a bilinear game with plain SGD it converges iff lr·σ_max < 1.

`extrapolation_steps` = K ≥ 1 extrapolates K times, each time from θ with the field
at the previous extrapolated point — θ^(j+1) = P(θ − lr·base(v(θ^(j)))), θ^(0) = θ —
and updates with v(θ^(K)): K + 1 field evaluations per step. K = 1 is extragradient;
as K grows the update tends to the proximal point θ' = θ − lr·v(θ') (Mokhtari,
Ozdaglar & Pattathil 2020 read extragradient as its approximation). On a bilinear
game with plain SGD the update matrix is Σ_{j=0..K+1} (−lr·J)^j.
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class Extragradient(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, extrapolation_steps: int = 1,
                 **options):
        if isinstance(extrapolation_steps, bool) or not isinstance(extrapolation_steps, int) \
                or extrapolation_steps < 1:
            raise ValueError(f"extrapolation_steps: expected a positive int, got {extrapolation_steps!r}")
        self.extrapolation_steps = extrapolation_steps
        super().__init__(players, lr, base, **options)

    def _step(self, closure):
        losses, v = self.field(closure)
        start = self.snapshot()
        ks = range(len(self.param_groups))
        for j in range(self.extrapolation_steps):
            if j:
                _, v = self.field(closure)
                self.restore(start)
            for k in ks:
                self.descend(k, v[k])
            self.project()
        _, v_half = self.field(closure)
        self.restore(start)
        for k in ks:
            self.descend(k, v_half[k])
        return losses
