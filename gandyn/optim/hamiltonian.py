"""Hamiltonian gradient descent (Balduzzi et al. 2018, §3; Loizou et al. 2020, "Stochastic
Hamiltonian gradient methods for smooth games"): gradient descent on the Hamiltonian
H = ½‖v‖² of the game, whose minimizers are the stationary points of the field.

    θ ← θ − lr · base(∇H(θ)),   ∇H = Jᵀv

J is the Jacobian of the whole field, so ∇H is one vector–Jacobian product: per step
one field evaluation (with create_graph) and one HVP. It is consensus optimization
without the field term. On a bilinear game xᵀAy the update matrix with plain SGD is
I − lr·JᵀJ = diag(I − lr·AAᵀ, I − lr·AᵀA): real eigenvalues 1 − lr·σᵢ², so on
range(A) × range(Aᵀ) it converges linearly at rate ρ = maxᵢ |1 − lr·σᵢ²|, iff
lr·σ_max² < 2; lr = 1/σ_max² gives Loizou et al.'s rate 1 − σ_min²/σ_max².
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class HamiltonianGD(GameOptimizer):
    def _step(self, closure):
        losses, _, grad_h = self.field_and_hamiltonian_grad(closure)
        for k in range(len(self.param_groups)):
            self.descend(k, grad_h[k])
        return losses
