"""Linearization of one optimizer step: the Jacobian of the update map F(s) = s'.

The state s is the augmented state of the optimizer: the parameters, flattened
in param-group order (for game.players: player 0's parameters, then player
1's, ...), followed, for every key of `optimizer.memory_keys()` that the state
holds at the current point (e.g. "past_step" for Optimistic and
ExtragradientPast, "momentum_buffer", "exp_avg", "exp_avg_sq" for the bases),
by that key's tensors in the same parameter order. A fresh Optimistic or
ExtragradientPast has no memory yet: step it once first to linearize the
steady-state (θ_t, s_{t−1}) map. Step counters, CG warm starts and other
non-tensor state are held constant.

The Jacobian is obtained by autograd through one real `step` of the library's
optimizer run in differentiable mode (out-of-place updates, parameters rebound
to graph-carrying tensors inside the game), so it linearizes exactly the code
that trains. Use it on small games: the matrix is dense, (dim s)².

The game's parameters must be reachable for rebinding: attributes of the game
that are the player tensors (Bilinear, Quadratic), parameters of nn.Module
attributes (GANGame), and the entries of `game.players`. The optimizer's and
the game's state are restored afterwards.

A LookaheadMinmax is linearized over one whole cycle started at the current point
(slow weights = the parameters): k inner steps, then the backtrack
θ ← θ₀ + α(θ_k − θ₀). Lookahead is a fixed-point iteration in that unit, so its
spectral radius is per cycle of k inner steps (with plain SGD inside, the matrix is
(1 − α)I + α Mᵏ for the inner update matrix M). The state is the inner optimizer's.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.utils._named_member_accessor import NamedMemberAccessor

from gandyn.games.base import Game, flatten, unflatten
from gandyn.optim.base import GameOptimizer
from gandyn.optim.lookahead import LookaheadMinmax

OptimizerOrFactory = Union[GameOptimizer, LookaheadMinmax, Callable[[Game], GameOptimizer]]


class _Rebinder:
    """Swaps the tensors a game computes its losses from, by identity of the originals."""

    def __init__(self, game: Game, params: list[Tensor]):
        self.game = game
        self.sites: dict[int, list[Callable[[Tensor], None]]] = {id(p): [] for p in params}
        for name, val in vars(game).items():
            if isinstance(val, Tensor) and id(val) in self.sites:
                self.sites[id(val)].append(lambda t, name=name: setattr(game, name, t))
            elif isinstance(val, nn.Module):
                acc = NamedMemberAccessor(val)
                for pname, p in val.named_parameters():
                    if id(p) in self.sites:
                        self.sites[id(p)].append(lambda t, acc=acc, pname=pname: acc.swap_tensor(pname, t))
        # Parameters the losses can see: those with a site besides the players lists.
        missing = [k for k, p in enumerate(params) if not self.sites[id(p)]]
        if missing:
            raise ValueError(f"game: parameters {missing} (in the optimizer's group order) are not attributes "
                             f"of the game nor of its nn.Module attributes, so a step cannot be "
                             f"differentiated through them")
        for ps in game.players:
            for j, p in enumerate(ps):
                if id(p) in self.sites:
                    self.sites[id(p)].append(lambda t, ps=ps, j=j: ps.__setitem__(j, t))
        self.values: dict[Tensor, Tensor] = {p: p for p in params}

    def rebind(self, originals, new) -> None:
        for p, t in zip(originals, new):
            self.values[p] = t
            for site in self.sites[id(p)]:
                site(t)


@contextmanager
def _differentiable(opt: GameOptimizer, game: Game, params: list[Tensor]):
    binder = _Rebinder(game, params)
    opt._diff = binder
    try:
        yield binder
    finally:
        opt._diff = None
        binder.rebind(params, params)


def update_jacobian(optimizer: OptimizerOrFactory, game: Game, closure=None) -> Tensor:
    """Jacobian ∂s'/∂s (dense, dim s × dim s) of one step of `optimizer` at the current point.

    optimizer: a GameOptimizer or LookaheadMinmax over `game.players` (a lookahead's map
        is that of one cycle, see the module docstring), or a factory returning one.
    game: the game whose parameters the optimizer steps (it is rebound, then restored).
    closure: the loss closure (default: the game itself).
    The state order is documented in the module docstring.
    """
    stepping = (GameOptimizer, LookaheadMinmax)
    if isinstance(optimizer, stepping):
        opt = optimizer
    elif callable(optimizer):
        opt = optimizer(game)
    else:
        opt = None
    if not isinstance(opt, stepping):
        raise ValueError(f"optimizer: expected a GameOptimizer, a LookaheadMinmax or a factory returning "
                         f"one, got {type(opt if opt is not None else optimizer).__name__}")
    inner, cycle, alpha = (opt.inner, opt.k, opt.alpha) if isinstance(opt, LookaheadMinmax) else (opt, 1, 1.0)
    opt = inner
    closure = game if closure is None else closure
    params = [p for g in opt.param_groups for p in g["params"]]
    memory = [(p, key) for key in opt.memory_keys() for p in params if key in opt.state[p]]
    like = params + [opt.state[p][key] for p, key in memory]
    s0 = flatten([t.detach() for t in like])
    saved = opt.state_dict()

    def one_step(s: Tensor) -> Tensor:
        pieces = unflatten(s, like)
        for (p, key), t in zip(memory, pieces[len(params):]):
            opt.state[p][key] = t
        with _differentiable(opt, game, params) as binder:
            start = pieces[:len(params)]
            binder.rebind(params, start)
            for _ in range(cycle):
                opt.step(closure)
            new = [binder.values[p] for p in params]
            if cycle > 1 or alpha != 1.0:  # the lookahead backtrack θ₀ + α(θ_k − θ₀)
                new = [s + alpha * (x - s) for s, x in zip(start, new)]
        return flatten(new + [opt.state[p][key] for p, key in memory])

    try:
        J = torch.autograd.functional.jacobian(one_step, s0)
    finally:
        opt.load_state_dict(saved)
    return J.detach()


def update_spectral_radius(optimizer: OptimizerOrFactory, game: Game, closure=None) -> float:
    """Spectral radius of `update_jacobian(...)` (eigenvalues in float64 NumPy)."""
    J = update_jacobian(optimizer, game, closure)
    return float(np.max(np.abs(np.linalg.eigvals(J.cpu().double().numpy()))))
