"""The Game protocol: players' parameters and one closure for all their losses.

Every player *minimizes* its own loss. A zero-sum game gives the second player
the negated loss; nothing in the library relies on a "which one maximizes"
convention of the caller.

The vector field of the game is v = (∇_{θ_i} L_i)_i: each player's gradient of
its own loss with respect to its own parameters. Optimizers, diagnostics and
plots are all written against this protocol.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

Players = Sequence[Sequence[Tensor]]
LossClosure = Callable[[], Sequence[Tensor]]


def vector_field(losses: Sequence[Tensor], players: Players, *, create_graph: bool = False,
                 allow_unused: bool = True) -> list[list[Tensor]]:
    """v_i = ∇_{θ_i} L_i for every player i, as a list (players) of lists (parameters).

    With `create_graph=True` the result can be differentiated again (consensus,
    SGA, CGD, Jacobian-vector products). Parameters a loss does not depend on get
    a zero gradient.
    """
    if len(losses) != len(players):
        raise ValueError(f"losses: expected one loss per player ({len(players)}), got {len(losses)}")
    field = []
    for i, (loss, params) in enumerate(zip(losses, players)):
        if not isinstance(loss, Tensor) or loss.numel() != 1:
            raise ValueError(f"losses[{i}]: expected a scalar tensor, got "
                             f"{type(loss).__name__} of shape {getattr(loss, 'shape', None)}")
        params = list(params)
        if not loss.requires_grad:
            field.append([torch.zeros_like(p) for p in params])
            continue
        grads = torch.autograd.grad(loss.reshape(()), params, create_graph=create_graph,
                                    retain_graph=True, allow_unused=allow_unused)
        field.append([torch.zeros_like(p) if g is None else g for p, g in zip(params, grads)])
    return field


def flatten(tensors: Sequence[Tensor]) -> Tensor:
    """Concatenate tensors into one 1-D tensor (differentiably)."""
    return torch.cat([t.reshape(-1) for t in tensors]) if tensors else torch.zeros(0)


def unflatten(flat: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a 1-D tensor into views shaped like `like`."""
    out, k = [], 0
    for t in like:
        out.append(flat[k:k + t.numel()].view_as(t))
        k += t.numel()
    if k != flat.numel():
        raise ValueError(f"flat: expected {k} elements, got {flat.numel()}")
    return out


class Game:
    """Base class of every game: `players` and `losses()`.

    Subclasses set `self.players` (one list of leaf tensors with
    requires_grad=True per player) and implement `losses()`, which returns one
    scalar loss per player evaluated at the current parameters. Games that know
    their equilibrium set override `distance_to_equilibrium`.
    """

    players: list[list[Tensor]]
    player_names: tuple[str, ...] = ()

    def losses(self) -> list[Tensor]:
        raise NotImplementedError

    # The closure that `GameOptimizer.step` takes.
    def __call__(self) -> list[Tensor]:
        return self.losses()

    @property
    def num_players(self) -> int:
        return len(self.players)

    def params(self) -> list[Tensor]:
        """All parameters, player after player."""
        return [p for ps in self.players for p in ps]

    def num_params(self) -> int:
        return sum(p.numel() for p in self.params())

    def vector_field(self, create_graph: bool = False) -> list[list[Tensor]]:
        return vector_field(self.losses(), self.players, create_graph=create_graph)

    def flat_vector_field(self, create_graph: bool = False) -> Tensor:
        return flatten([g for gs in self.vector_field(create_graph) for g in gs])

    def flat_params(self) -> Tensor:
        return flatten([p.detach() for p in self.params()])

    @torch.no_grad()
    def set_flat_params(self, flat: Tensor) -> None:
        for p, v in zip(self.params(), unflatten(flat, self.params())):
            p.copy_(v)

    def distance_to_equilibrium(self) -> float | None:
        """Euclidean distance to the (set of) equilibria, when the game knows it."""
        return None

    def player_losses(self, players: Sequence[int]) -> list[Tensor | None]:
        """Losses whose gradients in the parameters of `players` are those of losses(); the
        other entries may be None. A game may skip work only the others' losses need
        (GANGame: AltGD's G step); by default, losses()."""
        return self.losses()

    def resample(self) -> None:
        """Draw a new minibatch (stochastic games); deterministic games do nothing.
        Every GameOptimizer calls it at the start of its step."""

    def after_step(self) -> None:
        """Called by the optimizer after each step (a GAN updates its EMA of G here)."""

    def state_dict(self) -> dict:
        return {"players": [[p.detach().clone() for p in ps] for ps in self.players]}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for ps, saved in zip(self.players, state["players"]):
            for p, s in zip(ps, saved):
                p.copy_(s)
