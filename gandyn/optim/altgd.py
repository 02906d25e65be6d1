"""Alternating gradient descent: players step one after another, each seeing the
others' updated parameters.

Player i's gradient is evaluated after the players before it in `order` have moved:
one closure call and one backward (of player i's loss only) per player step, each
counted as one gradient evaluation. `order` (default 0, 1, …, n−1) sets who moves
first — for a GAN (0 = G, 1 = D) most code steps D first: order=(1, 0).
`player_steps` (default one each) gives each player k consecutive steps per step of
the optimizer — WGAN's n_critic: player_steps=(1, 5); when the closure is a Game,
each step after a player's first draws a fresh minibatch (`resample()`), as in the
critic loop of WGAN. The returned losses are those of the first evaluation; the later
evaluations ask the game for player i's loss alone (Game.player_losses), so that a GAN's
D-first step costs what PyTorch's DCGAN example does: G's forward once, D(real) once.
"""
from __future__ import annotations

from gandyn.games.base import Game
from gandyn.optim.base import GameOptimizer


class AltGD(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, order=None, player_steps=None,
                 **options):
        super().__init__(players, lr, base, **options)
        n = self.num_players
        order = list(range(n)) if order is None else order
        if isinstance(order, (str, bytes)) or sorted(order) != list(range(n)) \
                or any(isinstance(i, bool) or not isinstance(i, int) for i in order):
            raise ValueError(f"order: expected a permutation of the player indices 0..{n - 1}, got {order!r}")
        steps = [1] * n if player_steps is None else player_steps
        if isinstance(steps, (str, bytes)) or len(steps) != n or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in steps):
            raise ValueError(f"player_steps: expected {n} positive integers (one per player), got {steps!r}")
        self.order, self.player_steps = tuple(order), tuple(steps)

    def _step(self, closure):
        start = None
        for i in self.order:
            for r in range(self.player_steps[i]):
                if r and isinstance(closure, Game) and not self.differentiable:
                    closure.resample()
                # after the first evaluation only player i's loss is needed: a GAN's G step then
                # reuses G(z) from D's and skips D(real) (GANGame.player_losses); not when the step
                # is differentiated, where each evaluation must see fresh aliases of the parameters
                losses, v = self.field(closure, players=[i], partial=start is not None and not self.differentiable)
                start = losses if start is None else start
                for k in self.groups_of(i):
                    self.descend(k, v[k])
                self.project(self.groups_of(i))  # the next player sees the projected point
        return start
