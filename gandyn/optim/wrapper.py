"""The shared shape of the optimizers that wrap a game optimizer (LookaheadMinmax,
Averaged): the inner one steps, keeps the counters and owns the param groups."""
from __future__ import annotations

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

    def _reshare_groups(self) -> None:
        """After the inner load_state_dict rebuilt its groups."""
        self.param_groups = self.inner.param_groups

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
