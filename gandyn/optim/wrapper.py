"""The shared shape of the optimizers that wrap a game optimizer (LookaheadMinmax,
Averaged): the inner one steps, keeps the counters and owns the param groups."""
from __future__ import annotations

from copy import deepcopy

from torch.optim import Optimizer


class GameOptimizerWrapper(Optimizer):
    """An Optimizer whose param groups are those of `inner` (a GameOptimizer or another
    wrapper), so that lr schedulers built on either move the same step sizes."""

    def __init__(self, inner, name: str = "inner_optimizer"):
        from gandyn.optim.base import GameOptimizer

        if not isinstance(inner, (GameOptimizer, GameOptimizerWrapper)):
            raise ValueError(f"{name}: expected a GameOptimizer (or a wrapper of one), got {type(inner).__name__}")
        self.inner = inner
        inner._wrapped = True  # the game's after_step runs in the outermost wrapper's step
        super().__init__(self._params(), {})
        self.param_groups = inner.param_groups  # one set of groups, shared with the inner optimizer

    def _params(self):
        return [p for g in self.inner.param_groups for p in g["params"]]

    def _after_step(self, closure) -> None:
        """The game's after_step (a GAN's EMA of G), once per step, by the outermost wrapper."""
        from gandyn.games.base import Game

        if isinstance(closure, Game) and not getattr(self, "_wrapped", False):
            closure.after_step()

    def _saved(self, key: str) -> list:
        """Copies of the per-parameter state `key` (None where a parameter has none yet)."""
        return [self.state[p][key].clone() if key in self.state[p] else None for p in self._params()]

    def _load(self, state_dict: dict, key: str) -> None:
        """The inner optimizer's state, then this wrapper's per-parameter state `key`."""
        params, saved = self._params(), state_dict[key]
        if len(saved) != len(params):
            raise ValueError(f"state_dict: expected '{key}' for {len(params)} parameters, got {len(saved)}")
        self.inner.load_state_dict(state_dict["inner"])
        self.param_groups = self.inner.param_groups  # the inner load_state_dict rebuilt its groups
        for p, s in zip(params, saved):
            if s is None:
                self.state[p].pop(key, None)
            else:
                self.state[p][key] = deepcopy(s).to(p.device, p.dtype)

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
    def step_skipped(self) -> bool:
        """Whether the last step was skipped (a float16 overflow; gandyn/optim/loss_scaling.py)."""
        return self.inner.step_skipped

    @property
    def num_players(self) -> int:
        return self.inner.num_players
