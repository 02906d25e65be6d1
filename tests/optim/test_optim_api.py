"""torch.optim conventions of the game optimizers: state_dict round trips bit for bit,
evaluation counters, param groups, base optimizers against torch.optim, batched games,
n players, and the errors bad input raises."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from gandyn.games import Bilinear, Quadratic
from gandyn.games.base import Game
from gandyn.optim import (CGD, OPTIMIZERS, AltGD, Consensus, Extragradient, LookaheadMinmax,
                          Optimistic, SimGD)

CONFIGS = [
    ("simgd", dict(lr=0.05, momentum=0.9)),
    ("altgd", dict(lr=0.05, base="adam")),
    ("extragradient", dict(lr=0.02, base="adam")),
    ("extragradient-past", dict(lr=0.05, momentum=0.5)),
    ("optimistic", dict(lr=0.02, base="adam", betas=(0.5, 0.9))),
    ("consensus", dict(lr=0.05, gamma=0.3)),
    ("sga", dict(lr=0.05, lam=0.5)),
    ("cgd", dict(lr=0.05, zero_sum=False)),
    ("hgd", dict(lr=0.05, base="adam")),
]


def _players(game):
    return [p.detach().clone() for p in game.params()]


@pytest.mark.parametrize("name,kw", CONFIGS + [("lookahead", dict(lr=0.05))])
def test_state_dict_round_trip_is_bit_exact(name, kw):
    def make(game):
        if name == "lookahead":
            return LookaheadMinmax(Optimistic(game.players, **kw), k=3, alpha=0.4)
        return OPTIMIZERS[name](game.players, **kw)

    game = Quadratic.random(3, 2, mu=0.3, seed=7)
    opt = make(game)
    for _ in range(4):
        opt.step(game)
    saved = opt.state_dict()
    game2 = copy.deepcopy(game)
    opt2 = make(game2)
    opt2.load_state_dict(saved)
    for _ in range(5):  # crosses a lookahead sync (k = 3) on both sides
        opt.step(game)
        opt2.step(game2)
    for a, b in zip(_players(game), _players(game2)):
        assert torch.equal(a, b)
    assert (opt.grad_evals, opt.hvp_evals, opt.loss_evals) == (opt2.grad_evals, opt2.hvp_evals, opt2.loss_evals)
    # the saved dict was a copy: stepping did not change it
    counters = saved["inner"]["counters"] if name == "lookahead" else saved["counters"]
    assert counters["grad_evals"] == 4 * opt.grad_evals // 9


# (grad_evals, hvp_evals, loss_evals) per step on a 2-player game
COUNTS = {"simgd": (1, 0, 0), "altgd": (2, 0, 0), "extragradient": (2, 0, 0),
          "extragradient-past": (1, 0, 1), "optimistic": (1, 0, 0), "consensus": (1, 1, 0),
          "sga": (1, 2, 0), "hgd": (1, 1, 0)}


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_evaluation_counts_per_step(name):
    game = Bilinear.random(3, 2, seed=1)
    opt = OPTIMIZERS[name](game.players, lr=0.1)
    calls = []

    def closure():
        calls.append(1)
        return game.losses()

    for t in range(1, 4):
        opt.step(closure)
        g, h, l = COUNTS[name]
        assert (opt.grad_evals, opt.hvp_evals, opt.loss_evals) == (t * g, t * h, t * l)
        assert len(calls) == t * (g + l)


def test_cgd_counts_follow_cg_iterations():
    """HVPs per step: 1 (rhs) + 2 per CG matvec (zero-sum) + 1 (the other player's Δ);
    a 1-dim player's system is solved in exactly one CG iteration; the warm start adds
    one matvec (2 HVPs) for its initial residual."""
    game = Bilinear.random(1, 3, seed=2)
    opt = CGD(game.players, lr=0.3, zero_sum=True, cg_rtol=1e-12, cg_atol=0.0)
    opt.step(game)
    assert opt.last_cg_iterations == 1
    assert (opt.grad_evals, opt.hvp_evals) == (1, 1 + 2 * 1 + 1)
    opt.step(game)
    assert (opt.grad_evals, opt.hvp_evals) == (2, 4 + 1 + 2 + 2 * opt.last_cg_iterations + 1)


def test_step_returns_losses_at_start():
    game = Quadratic.random(2, 3, seed=3)
    for name, cls in OPTIMIZERS.items():
        g = copy.deepcopy(game)
        expected = [l.detach() for l in g.losses()]
        got = cls(g.players, lr=0.05).step(g)
        assert all(not l.requires_grad for l in got)
        torch.testing.assert_close(got, expected, rtol=0, atol=0, msg=name)


def test_simgd_momentum_matches_torch_sgd():
    game = Quadratic.random(3, 3, seed=4)
    ref = copy.deepcopy(game)
    opt = SimGD(game.players, lr=0.05, momentum=0.7)
    refs = [torch.optim.SGD(ps, lr=0.05, momentum=0.7) for ps in ref.players]
    for _ in range(20):
        opt.step(game)
        for r in refs:
            r.zero_grad()
        losses = ref.losses()
        for l, ps in zip(losses, ref.players):
            gs = torch.autograd.grad(l, ps, retain_graph=True)
            for p, gr in zip(ps, gs):
                p.grad = gr
        for r in refs:
            r.step()
    torch.testing.assert_close(_players(game), _players(ref), rtol=1e-12, atol=1e-12)


def _set_grads_to_field(game):
    for ps, gs in zip(game.players, game.vector_field()):
        for p, g in zip(ps, gs):
            p.grad = g


def test_extra_adam_matches_torch_adam():
    """Extra-Adam as in Gidel et al.: Adam steps from θ with v(θ) (extrapolation), back to θ,
    Adam step from θ with v(θ½) — both advance the moments."""
    game = Bilinear.random(3, 2, seed=5)
    ref = copy.deepcopy(game)
    opt = Extragradient(game.players, lr=0.01, base="adam", betas=(0.5, 0.9))
    adam = torch.optim.Adam(ref.params(), lr=0.01, betas=(0.5, 0.9))
    for _ in range(15):
        opt.step(game)
        start = [p.detach().clone() for p in ref.params()]
        _set_grads_to_field(ref)
        adam.step()
        _set_grads_to_field(ref)
        with torch.no_grad():
            for p, s in zip(ref.params(), start):
                p.copy_(s)
        adam.step()
    torch.testing.assert_close(_players(game), _players(ref), rtol=1e-10, atol=1e-12)


def test_param_groups_per_player_lr():
    """Two groups for one player, each its own lr; SimGD moves each by −lr·v exactly."""
    W1, W2 = torch.randn(3, dtype=torch.float64), torch.randn(2, dtype=torch.float64)

    class Game2(Game):
        def __init__(self):
            self.a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
            self.b = torch.tensor([0.3, 0.7], dtype=torch.float64, requires_grad=True)
            self.c = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
            self.players = [[self.a, self.b], [self.c]]

        def losses(self):
            f = (W1 @ self.a) * self.c.sum() + (W2 @ self.b) ** 2
            return [f, -f + self.c.sum() ** 2]

    game = Game2()
    v = [g.detach() for gs in game.vector_field() for g in gs]
    before = _players(game)
    opt = SimGD([{"params": [game.a], "player": 0, "lr": 0.1}, {"params": [game.b], "player": 0},
                 {"params": [game.c], "player": 1, "lr": 0.3}], lr=0.01)
    opt.step(game)
    for p, b, g, lr in zip(_players(game), before, v, (0.1, 0.01, 0.3)):
        torch.testing.assert_close(p, b - lr * g, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", ["simgd", "altgd", "extragradient", "extragradient-past", "optimistic",
                                  "consensus"])
def test_batched_games_are_independent(name):
    """A batch of bilinear games steps exactly like each game on its own."""
    batch = Bilinear.random(3, 2, batch=(4,), seed=6)
    singles = [Bilinear(batch.A[i], x0=batch.x[i].detach(), y0=batch.y[i].detach()) for i in range(4)]
    opt = OPTIMIZERS[name](batch.players, lr=0.2, base="adam", betas=(0.5, 0.9))
    opts = [OPTIMIZERS[name](s.players, lr=0.2, base="adam", betas=(0.5, 0.9)) for s in singles]
    for _ in range(10):
        opt.step(batch)
        for s, o in zip(singles, opts):
            o.step(s)
    torch.testing.assert_close(batch.x.detach(), torch.stack([s.x.detach() for s in singles]),
                               rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(batch.y.detach(), torch.stack([s.y.detach() for s in singles]),
                               rtol=1e-12, atol=1e-12)


class ThreePlayers(Game):
    """Player i minimizes ½x_i² + c·x_i·x_{i+1 mod 3}: field v = J x with a cyclic J."""

    def __init__(self, c=0.8):
        self.c = c
        self.x = [torch.tensor([v], dtype=torch.float64, requires_grad=True) for v in (1.0, -0.5, 2.0)]
        self.players = [[p] for p in self.x]

    def losses(self):
        return [0.5 * self.x[i].pow(2).sum() + self.c * (self.x[i] * self.x[(i + 1) % 3]).sum()
                for i in range(3)]

    def J(self):
        J = np.eye(3)
        for i in range(3):
            J[i, (i + 1) % 3] = self.c
        return J


def test_three_players():
    game = ThreePlayers()
    J, eta, z0 = game.J(), 0.1, np.array([1.0, -0.5, 2.0])
    # AltGD updates players in order, each seeing the others' new values: Gauss–Seidel
    opt = AltGD(game.players, lr=eta)
    opt.step(game)
    z = z0.copy()
    for i in range(3):
        z[i] -= eta * (J[i] @ z)
    np.testing.assert_allclose(game.flat_params().numpy(), z, rtol=1e-14)
    game = ThreePlayers()
    Extragradient(game.players, lr=eta).step(game)
    np.testing.assert_allclose(game.flat_params().numpy(), z0 - eta * J @ (z0 - eta * J @ z0), rtol=1e-14)
    game = ThreePlayers()
    Consensus(game.players, lr=eta, gamma=0.5).step(game)
    np.testing.assert_allclose(game.flat_params().numpy(), z0 - eta * (J @ z0 + 0.5 * J.T @ J @ z0),
                               rtol=1e-14)
    with pytest.raises(ValueError, match="2 players"):
        CGD(game.players, lr=0.1)


@pytest.mark.parametrize("bad", [0.0, -0.1, math.nan, math.inf, "0.1", True])
def test_bad_lr(bad):
    game = Bilinear.random(2, seed=0)
    for cls in OPTIMIZERS.values():
        with pytest.raises(ValueError, match="lr"):
            cls(game.players, lr=bad)
    with pytest.raises(ValueError, match="lr"):
        SimGD([{"params": game.players[0], "player": 0, "lr": bad},
               {"params": game.players[1], "player": 1}], lr=0.1)


def test_bad_options():
    game = Bilinear.random(2, seed=0)
    P = game.players
    cases = [
        (lambda: SimGD(P, lr=0.1, base="rmsprop"), "base"),
        (lambda: SimGD(P, lr=0.1, momentum=1.0), "momentum"),
        (lambda: SimGD(P, lr=0.1, base="adam", betas=(0.9, 1.5)), "betas"),
        (lambda: SimGD(P, lr=0.1, base="adam", eps=0.0), "eps"),
        (lambda: Consensus(P, lr=0.1, gamma=-1.0), "gamma"),
        (lambda: Consensus(P, lr=0.1, gamma=math.nan), "gamma"),
        (lambda: OPTIMIZERS["sga"](P, lr=0.1, lam=math.inf), "lam"),
        (lambda: CGD(P, lr=0.1, cg_max_iter=0), "cg_max_iter"),
        (lambda: CGD(P, lr=0.1, cg_rtol=0.0, cg_atol=0.0), "cg_rtol"),
        (lambda: LookaheadMinmax(SimGD(P, lr=0.1), k=0), "k"),
        (lambda: LookaheadMinmax(SimGD(P, lr=0.1), alpha=0.0), "alpha"),
        (lambda: LookaheadMinmax(torch.optim.SGD(game.params(), lr=0.1)), "inner_optimizer"),
        (lambda: SimGD(game.x, lr=0.1), "players"),
        (lambda: SimGD([{"params": [game.x]}], lr=0.1), "player"),
        (lambda: SimGD([{"params": [game.x], "player": 1}], lr=0.1), "player indices"),
        (lambda: SimGD([[game.x.detach()]], lr=0.1), "requires_grad"),
    ]
    for make, word in cases:
        with pytest.raises(ValueError, match=word):
            make()
    opt = SimGD(P, lr=0.1)
    with pytest.raises(ValueError, match="closure"):
        opt.step(None)
    with pytest.raises(ValueError, match="one loss per player"):
        opt.step(lambda: [game.losses()[0]])


def test_optimistic_adam_matches_torch_adam_steps():
    """Optimistic Adam (Daskalakis et al.): θ_{t+1} = θ_t − lr(2s_t − s_{t−1}), s_t the Adam step
    for v(θ_t) (s_{−1} = s_0); the reference s_t comes from torch.optim.Adam (lr = 1) run on
    dummy parameters whose gradients are the field."""
    game = Bilinear.random(3, 2, seed=8)
    ref = copy.deepcopy(game)
    lr = 0.02
    opt = Optimistic(game.players, lr=lr, base="adam", betas=(0.5, 0.9))
    dummies = [torch.zeros_like(p, requires_grad=True) for p in ref.params()]
    adam = torch.optim.Adam(dummies, lr=1.0, betas=(0.5, 0.9))
    past = None
    for _ in range(12):
        opt.step(game)
        v = [g for gs in ref.vector_field() for g in gs]
        before = [q.detach().clone() for q in dummies]
        for q, g in zip(dummies, v):
            q.grad = g.detach().clone()
        adam.step()
        s = [b - q.detach() for b, q in zip(before, dummies)]
        past = s if past is None else past
        with torch.no_grad():
            for p, si, pi in zip(ref.params(), s, past):
                p.add_(lr * (pi - 2 * si))
        past = s
    torch.testing.assert_close(_players(game), _players(ref), rtol=1e-9, atol=1e-12)
