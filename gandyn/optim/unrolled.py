"""Unrolled GAN (Metz, Poole, Pfau & Sohl-Dickstein 2017): the generator's gradient is taken
through k unrolled steps of the discriminator, which D itself never takes.

With G's parameters θ, D's φ (player `unrolled_player`, by default 1) and D's loss L_D:

    φ⁰ = φ,   φʲ⁺¹ = φʲ − η_u · s_j(∇_φ L_D(θ, φʲ))   (j < k, kept differentiable in θ)
    g_G = d/dθ L_G(θ, φᵏ(θ))                        (the surrogate gradient, Metz et al. eq. 7)
    θ ← θ − lr_G · base(g_G),   φ ← φ − lr_D · base(∇_φ L_D(θ, φ))

D takes its ordinary step from the current point, on any base. The unrolled step s_j is
chosen by `unroll_base`:

  "sgd"  (the default): s_j(g) = g, a plain gradient step of size η_u = `unroll_lr`
         (default: D's lr; one lr for all of D's groups).
  "adam": D's own Adam update, as Metz et al.'s reference implementation unrolls D's
         optimizer (graph_replace of its update ops): from copies of D's current moments
         m, v and step count t (zeros and t = 0 before D's first step), each unrolled step
         advances them, m ← β₁m + (1−β₁)d, v ← β₂v + (1−β₂)d² (AMSGrad: v̂ from the running
         max), t ← t + 1, and moves φ ← φ − η_u · m̂/(√v̂ + eps), with d = g + λφ (D's coupled
         weight decay) and each group's own lr (or `unroll_lr`), betas, eps. The moments
         are differentiated through too (d² in v carries θ). D's real state is untouched.
         Needs D on base="adam".

Why "sgd" stays the default: a saved config or checkpoint without `unroll_base` must go
on with the dynamics it was run with.

The unrolled steps use the step's one minibatch and are not projected onto D's constraint
set (the real steps are). The losses at φʲ are evaluated by rebinding D's parameters inside
the game (nn.Module parameters are swapped as torch.func.functional_call does, through
NamedMemberAccessor; tensor attributes are set), so the closure must be the Game itself.

Counters per step: 1 + k + 1 gradient evaluations (the field, the k unrolled D
gradients, G's gradient at φᵏ) and k HVPs (the backward through each unrolled gradient),
for either unroll_base. On the bilinear game xᵀAy with unroll_base="sgd" the surrogate
gradient is Ay + 2kη_u AAᵀx.
"""
from __future__ import annotations

import dataclasses

import torch

from gandyn import distributed
from gandyn.games.base import Game
from gandyn.optim import loss_scaling
from gandyn.optim.adam_step import adam_step
from gandyn.optim.base import GameOptimizer, check_positive, grad_or_zeros


UNROLL_BASES = ("sgd", "adam")


class Unrolled(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, unroll_steps: int = 5,
                 unroll_lr: float | None = None, unroll_base: str = "sgd", unrolled_player: int = 1,
                 **options):
        if isinstance(unroll_steps, bool) or not isinstance(unroll_steps, int) or unroll_steps < 1:
            raise ValueError(f"unroll_steps: expected a positive int, got {unroll_steps!r}")
        if not isinstance(unroll_base, str) or unroll_base not in UNROLL_BASES:
            raise ValueError(f"unroll_base: expected one of {UNROLL_BASES}, got {unroll_base!r}")
        self.unroll_steps = unroll_steps
        self.unroll_lr = None if unroll_lr is None else check_positive("unroll_lr", unroll_lr)
        self.unroll_base = unroll_base
        super().__init__(players, lr, base, **options)
        if self.num_players != 2:
            raise ValueError(f"players: the unrolled GAN is defined for 2 players, got {self.num_players}")
        if unrolled_player not in (0, 1) or isinstance(unrolled_player, bool):
            raise ValueError(f"unrolled_player: expected 0 or 1 (the discriminator's index), got {unrolled_player!r}")
        self.unrolled_player = unrolled_player
        bases = sorted({self.param_groups[k]["base"] for k in self.groups_of(unrolled_player)})
        if unroll_base == "adam" and bases != ["adam"]:
            raise ValueError(f"unroll_base: 'adam' unrolls D's own Adam update, so D (player {unrolled_player}) "
                             f"needs base='adam'; its groups have base {bases}")

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
        adam = _AdamCopy(self, self.groups_of(u)) if self.unroll_base == "adam" else None
        eta = None if adam else self._eta()
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
                    # the global batch's gradient under torchrun (differentiably: G's gradient goes
                    # through it), then, in float16 games, unscaled
                    grads = loss_scaling.unscaled(distributed.mean_differentiable(
                        [torch.zeros_like(t) if gr is None else gr for t, gr in zip(phi, grads)]))
                    phi = adam.step(phi, grads) if adam else [t - eta * gr for t, gr in zip(phi, grads)]
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


@dataclasses.dataclass
class _AdamGroup:
    """One of D's param groups as `_AdamCopy` steps it: hyperparameters and copied moments."""
    size: int
    lr: float
    betas: tuple[float, float]
    eps: float
    weight_decay: float
    m: list[torch.Tensor]
    v: list[torch.Tensor]
    vmax: list[torch.Tensor] | None  # AMSGrad's running max, None without amsgrad
    t: int


class _AdamCopy:
    """D's Adam update (gandyn.optim.adam_step, as base_step's differentiable mode) on copies
    of D's moments and step count, out of place so that it stays differentiable in θ; D's own
    state is never written."""

    def __init__(self, opt: GameOptimizer, groups: list[int]):
        self.groups: list[_AdamGroup] = []
        own = (lambda x: x) if opt.differentiable else (lambda x: x.detach())  # update maps: the graph's
        for k in groups:
            g, ps = opt.param_groups[k], opt.param_groups[k]["params"]
            if not ps:
                continue
            m, v, vmax = (opt.get_state(k, key) for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"))
            t = 0 if m is None else int(opt.state[ps[0]]["step"])
            if m is None:  # before D's first step: zero moments at step 0, as Adam starts
                m, v = [torch.zeros_like(p) for p in ps], [torch.zeros_like(p) for p in ps]
            if g["amsgrad"] and vmax is None:
                vmax = [torch.zeros_like(p) for p in ps]
            lr = opt.unroll_lr if opt.unroll_lr is not None else g["lr"]
            self.groups.append(_AdamGroup(len(ps), lr, g["betas"], g["eps"], g["weight_decay"],
                                          [own(x) for x in m], [own(x) for x in v],
                                          [own(x) for x in vmax] if g["amsgrad"] else None, t))

    def step(self, phi: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """φ − lr · m̂/(√v̂ + eps), group by group, advancing the copied moments and step counts."""
        out, at = [], 0
        for a in self.groups:
            p, gr = phi[at:at + a.size], grads[at:at + a.size]
            at += a.size
            d = [gi + a.weight_decay * pi for gi, pi in zip(gr, p)] if a.weight_decay else gr
            a.t += 1
            a.m, a.v, a.vmax, s = adam_step(a.m, a.v, a.vmax, d, a.t, a.betas, a.eps)
            out += [pi - a.lr * si for pi, si in zip(p, s)]
        return out
