"""Alternating gradient descent: players step one after another, in player order,
each seeing the others' updated parameters.

Player i's gradient is evaluated after players 0..i−1 have moved: one closure
call and one backward (of player i's loss only) per player, counted as one
gradient evaluation each, so grad_evals grows by n per step. The returned
losses are those of the first evaluation (the start of the step).
"""
from __future__ import annotations

from gandyn.optim.base import GameOptimizer


class AltGD(GameOptimizer):
    def _step(self, closure):
        start = None
        for i in range(self.num_players):
            losses, v = self.field(closure, players=[i])
            start = losses if start is None else start
            for k in self.groups_of(i):
                self.descend(k, v[k])
        return start
