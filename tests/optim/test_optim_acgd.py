"""ACGD (gandyn/optim/acgd.py) against a numpy transcription of the cgds package's ACGD
update, its convergence on a 2×2 bilinear game where CGD(base="adam") grows, and the API."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from gandyn.games import Bilinear
from gandyn.games.base import Game
from gandyn.optim import ACGD, CGD

TIGHT = dict(cg_rtol=1e-15, cg_atol=1e-300, cg_max_iter=200)


class ZeroSumQuadratic(Game):
    """f = xᵀAy + ½xᵀPx − ½yᵀQy + bᵀx; x minimizes f, y minimizes −f."""

    player_names = ("x", "y")

    def __init__(self, m, n, seed):
        rng = np.random.default_rng(seed)
        self.A = rng.standard_normal((m, n))
        P, Q = rng.standard_normal((m, m)), rng.standard_normal((n, n))
        self.P, self.Q = 0.3 * P @ P.T, 0.3 * Q @ Q.T
        self.b = rng.standard_normal(m)
        self.x = torch.tensor(rng.standard_normal(m), requires_grad=True)
        self.y = torch.tensor(rng.standard_normal(n), requires_grad=True)
        self.players = [[self.x], [self.y]]

    def losses(self):
        A, P, Q, b = (torch.tensor(t) for t in (self.A, self.P, self.Q, self.b))
        f = self.x @ A @ self.y + 0.5 * self.x @ P @ self.x - 0.5 * self.y @ Q @ self.y + b @ self.x
        return [f, -f]


def cgds_acgd(game, x, y, lr_max, lr_min, beta, eps, steps):
    """The cgds ACGD step (max player y, min player x, loss f), with exact linear solves."""
    A, P, Q, b = game.A, game.P, game.Q, game.b
    s_max, s_min = np.zeros_like(y), np.zeros_like(x)
    out = []
    for t in range(1, steps + 1):
        g_max = A.T @ x - Q @ y          # ∇_y f
        g_min = A @ y + P @ x + b        # ∇_x f
        s_max = beta * s_max + (1 - beta) * g_max ** 2
        s_min = beta * s_min + (1 - beta) * g_min ** 2
        bc = math.sqrt(1 - beta ** t)
        eta_max, eta_min = bc * lr_max / (np.sqrt(s_max) + eps), bc * lr_min / (np.sqrt(s_min) + eps)
        D_max_min = A.T                  # ∂²f/∂y∂x
        rhs = np.sqrt(eta_max) * (g_max - D_max_min @ (eta_min * g_min))
        S = np.diag(np.sqrt(eta_max))
        w = np.linalg.solve(np.eye(len(y)) + S @ D_max_min @ np.diag(eta_min) @ D_max_min.T @ S, rhs)
        d_max = np.sqrt(eta_max) * w
        d_min = -eta_min * (g_min + D_max_min.T @ d_max)
        x, y = x + d_min, y + d_max
        out.append((x.copy(), y.copy()))
    return out


@pytest.mark.parametrize("m,n", [(3, 2), (2, 3), (1, 1)])
def test_matches_the_cgds_update(m, n):
    game = ZeroSumQuadratic(m, n, seed=m * 10 + n)
    ref = cgds_acgd(game, game.x.detach().numpy().copy(), game.y.detach().numpy().copy(),
                    lr_max=0.07, lr_min=0.03, beta=0.9, eps=1e-5, steps=8)
    opt = ACGD([{"params": [game.x], "player": 0, "lr": 0.03}, {"params": [game.y], "player": 1, "lr": 0.07}],
               beta=0.9, zero_sum=True, **TIGHT)
    for x, y in ref:
        opt.step(game)
        np.testing.assert_allclose(game.x.detach().numpy(), x, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(game.y.detach().numpy(), y, rtol=1e-10, atol=1e-12)


def test_general_sum_form_agrees_on_a_zero_sum_game():
    game = ZeroSumQuadratic(2, 3, seed=1)
    other = copy.deepcopy(game)
    a = ACGD(game.players, lr=0.05, zero_sum=True, **TIGHT)
    b = ACGD(other.players, lr=0.05, zero_sum=False, **TIGHT)
    for _ in range(4):
        a.step(game)
        b.step(other)
    for p, q in zip(game.params(), other.params()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-9, atol=1e-11)


def test_converges_on_2x2_bilinear_where_cgd_adam_grows():
    """The issue's numbers: lr 0.1, 1000 steps on a 2×2 bilinear game."""
    runs = {}
    for name, cls, kw in (("acgd", ACGD, {}), ("cgd-adam", CGD, {"base": "adam"})):
        game = Bilinear.random(2, seed=0, dtype=torch.float64)
        d0 = float(game.distances())
        opt = cls(game.players, lr=0.1, zero_sum=True, **kw)
        for _ in range(1000):
            opt.step(game)
        runs[name] = float(game.distances())
    assert d0 == pytest.approx(0.9479, abs=1e-4)
    assert runs["acgd"] < 1e-13
    assert runs["cgd-adam"] > 10 * d0


def test_state_dict_round_trip_and_bad_options():
    game = ZeroSumQuadratic(2, 2, seed=3)
    opt = ACGD(game.players, lr=0.05, zero_sum=True)
    for _ in range(3):
        opt.step(game)
    game2 = copy.deepcopy(game)
    opt2 = ACGD(game2.players, lr=0.05, zero_sum=True)
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):
        opt.step(game)
        opt2.step(game2)
    assert all(torch.equal(p, q) for p, q in zip(game.params(), game2.params()))
    assert (opt.grad_evals, opt.hvp_evals) == (opt2.grad_evals, opt2.hvp_evals)
    with pytest.raises(ValueError, match="base"):
        ACGD(game.players, base="adam")
    with pytest.raises(ValueError, match="beta"):
        ACGD(game.players, beta=1.0)
