"""Adaptive competitive gradient descent (ACGD; Schäfer, Zheng & Anandkumar 2020,
"Implicit competitive regularization in GANs", as the `ACGD` class of the cgds package).

CGD (gandyn/optim/cgd.py) with a per-coordinate step size from RMSProp-style second
moments of each player's own gradient g_i = ∇_i L_i, kept in state "exp_avg_sq":

    s_i ← β s_i + (1 − β) g_i²,      η_i = lr_i · √(1 − βᵗ) / (√s_i + eps)

and the competitive step with those diagonal η's in place of scalars:

    Δ_a = √η_a w,  (I − √η_a B_ab η_b B_ba √η_a) w = −√η_a (g_a − B_ab η_b g_b)
    Δ_b = −η_b (g_b + B_ba Δ_a)

(B_ab = D²_ab L_a). The parameters move by exactly (Δ₀, Δ₁): the preconditioning is the
base optimizer, so only base="sgd" without momentum is accepted. The cgds package
alternates which player's system it solves; both give the same step up to the CG
tolerance, and here the smaller player's is solved (as in CGD). Defaults β = 0.99,
eps = 1e-5 are the cgds package's. Counts as CGD: one field evaluation with
create_graph (two for a general-sum game) and 2 + k·(2 or 4) HVPs for k CG iterations.
"""
from __future__ import annotations

import math

import torch

from gandyn.optim.cgd import CGD


class ACGD(CGD):
    def __init__(self, players, lr: float = 1e-3, base: str = "sgd", *, beta: float = 0.99,
                 eps: float = 1e-5, **options):
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not 0 <= beta < 1:
            raise ValueError(f"beta: expected a number in [0, 1), got {beta!r}")
        if base != "sgd" or options.get("momentum", 0.0) != 0:
            raise ValueError("base, momentum: ACGD's per-coordinate step sizes are its base optimizer; "
                             "expected base='sgd' without momentum")
        if options.get("weight_decay", 0.0) != 0:
            raise ValueError("weight_decay: ACGD moves by the competitive step itself; add an L2 term "
                             "to the players' losses instead")
        self.beta = float(beta)
        super().__init__(players, lr, base, eps=eps, **options)

    def _eta(self, k: int, g: list) -> list:
        """Group k's per-coordinate step sizes (advances its second moments and counter)."""
        group, ps = self.param_groups[k], self.param_groups[k]["params"]
        if self.get_state(k, "exp_avg_sq") is None:
            for p in ps:
                self.state[p]["step"] = 0
                self.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        t = self.state[ps[0]]["step"] + 1
        for p in ps:
            self.state[p]["step"] = t
        g = [x.detach() for x in g] if not self.differentiable else g
        s = torch._foreach_addcmul(torch._foreach_mul(self.get_state(k, "exp_avg_sq"), self.beta), g, g,
                                   value=1 - self.beta)
        self.set_state(k, "exp_avg_sq", s)
        denom = torch._foreach_add(torch._foreach_sqrt(s), group["eps"])
        return torch._foreach_div(torch._foreach_mul(torch._foreach_reciprocal(denom), group["lr"]),
                                  1 / math.sqrt(1 - self.beta ** t))

    def _step(self, closure):
        losses, v = self.field(closure, create_graph=True)
        eta = [[e for k in self.groups_of(i) for e in self._eta(k, v[k])] for i in (0, 1)]
        deltas = self.competitive_step(losses, v, eta)
        for i in (0, 1):
            at = 0
            for k in self.groups_of(i):
                n = len(self.param_groups[k]["params"])
                self.add_to_params(k, deltas[i][at:at + n], 1.0)
                at += n
        return losses
