"""Lookahead-minmax (Chavdarova et al. 2021) around any game optimizer.

Every k inner steps all players backtrack together, at the same step, with
one shared k and α:  θ ← θ_slow + α (θ − θ_slow),  θ_slow ← θ.
The slow weights are a copy of the parameters taken at the first step. The
counters (grad_evals, hvp_evals, loss_evals) are the inner optimizer's.
"""
from __future__ import annotations

import math
from copy import deepcopy

import torch
from torch.optim import Optimizer

from gandyn.optim.base import GameOptimizer


class LookaheadMinmax(Optimizer):
    def __init__(self, inner_optimizer: GameOptimizer, k: int = 5, alpha: float = 0.5):
        inner = inner_optimizer
        if not isinstance(inner, GameOptimizer):
            raise ValueError(f"inner_optimizer: expected a GameOptimizer, got {type(inner).__name__}")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"k: expected a positive int, got {k!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
                or not 0 < alpha <= 1:
            raise ValueError(f"alpha: expected a number in (0, 1], got {alpha!r}")
        self.inner, self.k, self.alpha = inner, k, float(alpha)
        inner._wrapped = True  # the game's after_step runs here, after a backtrack
        self.inner_steps = 0
        super().__init__([p for g in inner.param_groups for p in g["params"]], {})
        self.param_groups = inner.param_groups  # one set of groups, shared with the inner optimizer

    def _params(self):
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def grad_evals(self) -> int:
        return self.inner.grad_evals

    @property
    def hvp_evals(self) -> int:
        return self.inner.hvp_evals

    @property
    def loss_evals(self) -> int:
        return self.inner.loss_evals

    @property
    def num_players(self) -> int:
        return self.inner.num_players

    def step(self, closure):  # type: ignore[override]
        params = self._params()
        with torch.no_grad():
            if "slow" not in self.state[params[0]]:
                for p in params:
                    self.state[p]["slow"] = p.detach().clone()
        losses = self.inner.step(closure)
        self.inner_steps += 1
        if self.inner_steps % self.k == 0:
            with torch.no_grad():
                slow = [self.state[p]["slow"] for p in params]
                # θ ← slow + α(θ − slow) = lerp(slow, θ, α); then slow ← θ (both players at once)
                torch._foreach_lerp_(slow, params, self.alpha)
                torch._foreach_copy_(params, slow)
        from gandyn.games.base import Game
        if isinstance(closure, Game):
            closure.after_step()
        return losses

    def state_dict(self) -> dict:
        params = self._params()
        slow = [self.state[p]["slow"].clone() if "slow" in self.state[p] else None for p in params]
        return {"inner": self.inner.state_dict(), "slow": slow, "inner_steps": self.inner_steps,
                "k": self.k, "alpha": self.alpha}

    def load_state_dict(self, state_dict: dict) -> None:
        params = self._params()
        if len(state_dict["slow"]) != len(params):
            raise ValueError(f"state_dict: expected slow weights for {len(params)} parameters, "
                             f"got {len(state_dict['slow'])}")
        self.inner.load_state_dict(state_dict["inner"])
        self.param_groups = self.inner.param_groups  # load_state_dict rebuilt the inner groups
        for p, s in zip(params, state_dict["slow"]):
            if s is None:
                self.state[p].pop("slow", None)
            else:
                self.state[p]["slow"] = deepcopy(s).to(p.device, p.dtype)
        self.inner_steps = int(state_dict["inner_steps"])
        self.k, self.alpha = int(state_dict["k"]), float(state_dict["alpha"])
