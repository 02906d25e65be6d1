"""Symplectic gradient adjustment (Balduzzi et al. 2018): step along v + λ Aᵀv.

A = (J − Jᵀ)/2 is the antisymmetric part of the field's Jacobian, so
Aᵀv = (Jᵀv − Jv)/2. Jᵀv is one vector–Jacobian product; Jv comes from the
double-backward trick (differentiate u ↦ Jᵀu, which is linear in u, once more
with respect to u): two HVPs and one field evaluation per step.

With align=True (the paper's Algorithm 1) the sign of λ follows
    λ = λ₀ · sign(⟨v, ∇H⟩⟨Aᵀv, ∇H⟩ / d + ε),   ∇H = ∇(½‖v‖²) = Jᵀv,
d the number of parameters; the sign used at the last step is `last_lambda`.
On a bilinear game J is antisymmetric, ⟨v, Jᵀv⟩ = 0 and the sign is +, and
SGA coincides with consensus (γ = λ₀): update matrix I − lr·J − lr·λ₀·JᵀJ.
For a batch of games the alignment inner products run over the whole batch,
so the sign couples the batch entries (the rest of the update does not).
"""
from __future__ import annotations

import math

import torch

from gandyn.optim.base import GameOptimizer, check_bool, check_nonnegative, dot, grad_or_zeros


class SGA(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, lam: float = 1.0,
                 align: bool = True, align_eps: float = 0.1, **options):
        self.lam = check_nonnegative("lam", lam)
        self.align = check_bool("align", align)
        self.align_eps = check_nonnegative("align_eps", align_eps)
        self.last_lambda = self.lam
        super().__init__(players, lr, base, **options)

    def _step(self, closure):
        losses, v = self.field(closure, create_graph=True)
        ks = range(len(self.param_groups))
        flat_v = [t for k in ks for t in v[k]]
        values = [p for k in ks for p in self.values(k)]
        diff = self.differentiable
        # u stands for v in u ↦ Jᵀu; it must be a graph leaf (or v itself when differentiating).
        u = flat_v if diff else [t.detach().requires_grad_(True) for t in flat_v]
        self.hvp_evals += 2
        with torch.enable_grad():
            jtu = grad_or_zeros(flat_v, values, u, create_graph=True)
            jv = grad_or_zeros(jtu, u, flat_v if diff else [t.detach() for t in flat_v],
                               create_graph=diff)
        if not diff:
            flat_v = [t.detach() for t in flat_v]
            jtu = [t.detach() for t in jtu]
        atv = torch._foreach_mul(torch._foreach_sub(jtu, jv), 0.5)
        lam = self.lam
        if self.align:
            n = sum(t.numel() for t in flat_v)
            score = float((dot(flat_v, jtu) * dot(atv, jtu)).detach()) / n + self.align_eps
            lam = math.copysign(self.lam, score) if score != 0 else self.lam
        self.last_lambda = lam
        at = 0
        for k, g in enumerate(self.param_groups):
            n = len(g["params"])
            self.descend(k, torch._foreach_add(flat_v[at:at + n], atv[at:at + n], alpha=lam))
            at += n
        return losses
