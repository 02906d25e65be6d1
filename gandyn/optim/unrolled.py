"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017): the generator's gradient is taken
through k unrolled steps of the discriminator, which D itself never takes.

With G's parameters θ, D's φ (player `unrolled_player`, by default 1) and D's loss L_D:

    φ⁰ = φ,   φʲ⁺¹ = φʲ − η_u ∇_φ L_D(θ, φʲ)      (j < k, kept differentiable in θ)
    g_G = d/dθ L_G(θ, φᵏ(θ))                        (the surrogate gradient, Metz et al. eq. 7)
    θ ← θ − lr_G · base(g_G),   φ ← φ − lr_D · base(∇_φ L_D(θ, φ))

D takes its ordinary step from the current point, on any base; the unrolled steps are
plain gradient steps of size η_u = `unroll_lr` (default: D's lr), on the step's one
minibatch, and are not projected onto D's constraint set (the real steps are). The losses at φʲ are evaluated by rebinding D's parameters inside the game
(nn.Module parameters are swapped as torch.func.functional_call does, through
NamedMemberAccessor; tensor attributes are set), so the closure must be the Game itself.

Counters per step: 1 + k + 1 gradient evaluations (the field, the k unrolled D
gradients, G's gradient at φᵏ) and k HVPs (the backward through each unrolled gradient).
On the bilinear game xᵀAy the surrogate gradient is Ay + 2kη_u AAᵀx.
"""
from __future__ import annotations

import torch

from gandyn.games.base import Game
from gandyn.optim import loss_scaling
from gandyn.optim.base import GameOptimizer, check_positive, grad_or_zeros


class Unrolled(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, unroll_steps: int = 5,
                 unroll_lr: float | None = None, unrolled_player: int = 1, **options):
        if isinstance(unroll_steps, bool) or not isinstance(unroll_steps, int) or unroll_steps < 1:
            raise ValueError(f"unroll_steps: expected a positive int, got {unroll_steps!r}")
        self.unroll_steps = unroll_steps
        self.unroll_lr = None if unroll_lr is None else check_positive("unroll_lr", unroll_lr)
        super().__init__(players, lr, base, **options)
        if self.num_players != 2:
            raise ValueError(f"players: the unrolled GAN is defined for 2 players, got {self.num_players}")
        if unrolled_player not in (0, 1) or isinstance(unrolled_player, bool):
            raise ValueError(f"unrolled_player: expected 0 or 1 (the discriminator's index), got {unrolled_player!r}")
        self.unrolled_player = unrolled_player

    def _eta(self) -> float:
        if self.unroll_lr is not None:
            return self.unroll_lr
        lrs = {self.param_groups[k]["lr"] for k in self.groups_of(self.unrolled_player)}
        if len(lrs) != 1:
            raise ValueError(f"unroll_lr: D's groups have several lr {sorted(lrs)}; give unroll_lr")
        return lrs.pop()

    def _step(self, closure):
        if not isinstance(closure, Game):
            raise ValueError("closure: Unrolled needs the Game itself (it rebinds D's parameters to evaluate "
                             f"the losses at unrolled points), got {closure!r}")
        from gandyn.diagnostics.update_map import _Rebinder

        u, g = self.unrolled_player, 1 - self.unrolled_player
        losses, v = self.field(closure)
        d_params = self.player_values(u)
        g_params = self.player_values(g)
        binder = _Rebinder(closure, d_params)
        eta = self._eta()
        try:
            with torch.enable_grad():
                # In the differentiable mode (update maps) φ⁰ is D's graph-carrying point itself.
                phi = list(d_params) if self.differentiable else [p.detach() for p in d_params]
                for _ in range(self.unroll_steps):
                    phi = [t if t.requires_grad else t.requires_grad_(True) for t in phi]
                    binder.rebind(d_params, phi)
                    loss_d = self._call(closure)[u]
                    self.grad_evals += 1
                    self.hvp_evals += 1
                    grads = torch.autograd.grad(loss_scaling.scaled([loss_d])[0], phi, create_graph=True,
                                                allow_unused=True)
                    grads = loss_scaling.unscaled(  # float16 games: D's scaled gradient, unscaled
                        [torch.zeros_like(t) if gr is None else gr for t, gr in zip(phi, grads)])
                    phi = [t - eta * gr for t, gr in zip(phi, grads)]
                binder.rebind(d_params, phi)
                loss_g = self._call(closure)[g]
                self.grad_evals += 1
                g_unrolled = grad_or_zeros([loss_g], g_params, [torch.ones_like(loss_g)],
                                           create_graph=self.differentiable)
        finally:
            binder.rebind(d_params, d_params)
        at = 0
        for k in self.groups_of(g):
            n = len(self.param_groups[k]["params"])
            v[k] = g_unrolled[at:at + n]
            at += n
        for k in range(len(self.param_groups)):
            self.descend(k, v[k])
        return losses
