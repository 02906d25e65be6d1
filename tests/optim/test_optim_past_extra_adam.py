"""ExtragradientPast(past="gradient") is Gidel et al. 2019's Past-Extra-Adam (Algorithm 4,
as their reference trainer runs it): checked against an independent numpy transcription."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gandyn.games import Bilinear
from gandyn.optim import ExtragradientPast


class _Adam:
    """Kingma & Ba's Adam, one player, in numpy float64."""

    def __init__(self, n, lr, b1, b2, eps):
        self.m, self.v, self.t = np.zeros(n), np.zeros(n), 0
        self.lr, self.b1, self.b2, self.eps = lr, b1, b2, eps

    def step(self, g):
        self.t += 1
        self.m = self.b1 * self.m + (1 - self.b1) * g
        self.v = self.b2 * self.v + (1 - self.b2) * g * g
        mhat, vhat = self.m / (1 - self.b1 ** self.t), self.v / (1 - self.b2 ** self.t)
        return self.lr * mhat / (np.sqrt(vhat) + self.eps)


def _past_extra_adam(A, b, c, x, y, lrs, betas, eps, steps):
    """Algorithm 4: extrapolate with Adam fed the stored past gradient, update from the
    start point with Adam fed the gradient at the extrapolated point, store it."""
    adams = [_Adam(len(x), lrs[0], *betas, eps), _Adam(len(y), lrs[1], *betas, eps)]
    past = None
    out = []
    for _ in range(steps):
        xh, yh = x, y
        if past is not None:
            xh, yh = x - adams[0].step(past[0]), y - adams[1].step(past[1])
        g = (A @ yh + b, -(A.T @ xh) - c)  # v = (∇_x xᵀAy+bᵀx+cᵀy, ∇_y of its negation)
        x, y = x - adams[0].step(g[0]), y - adams[1].step(g[1])
        past = g
        out.append((x.copy(), y.copy()))
    return out, adams


def test_past_gradient_variant_matches_algorithm_4():
    game = Bilinear.random(3, 2, seed=4, dtype=torch.float64)
    game.b = torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64)
    A, b, c = game.A.numpy(), game.b.numpy(), game.c.numpy()
    x0, y0 = game.x.detach().numpy().copy(), game.y.detach().numpy().copy()
    groups = [{"params": [game.x], "player": 0, "lr": 0.02}, {"params": [game.y], "player": 1, "lr": 0.05}]
    opt = ExtragradientPast(groups, lr=0.02, base="adam", betas=(0.5, 0.9), eps=1e-8, past="gradient")
    ref, adams = _past_extra_adam(A, b, c, x0, y0, (0.02, 0.05), (0.5, 0.9), 1e-8, 12)
    for x, y in ref:
        opt.step(game)
        np.testing.assert_allclose(game.x.detach().numpy(), x, rtol=0, atol=1e-12)
        np.testing.assert_allclose(game.y.detach().numpy(), y, rtol=0, atol=1e-12)
    # moments and the bias-correction counter advanced twice per step (once at the first)
    assert opt.state[game.x]["step"] == adams[0].t == 23
    np.testing.assert_allclose(opt.state[game.x]["exp_avg_sq"].numpy(), adams[0].v, rtol=1e-12)
    assert (opt.grad_evals, opt.loss_evals) == (12, 12)


def test_the_two_variants_agree_with_plain_sgd_and_differ_with_adam():
    game = Bilinear.random(2, seed=1, dtype=torch.float64)
    runs = {}
    for base in ("sgd", "adam"):
        for past in ("step", "gradient"):
            g = copy.deepcopy(game)
            opt = ExtragradientPast(g.players, lr=0.1, base=base, past=past)
            for _ in range(5):
                opt.step(g)
            runs[base, past] = torch.cat([p.detach() for p in g.params()])
    torch.testing.assert_close(runs["sgd", "step"], runs["sgd", "gradient"], rtol=0, atol=1e-15)
    assert (runs["adam", "step"] - runs["adam", "gradient"]).abs().max() > 1e-3


def test_state_dict_round_trip_and_bad_variant():
    game = Bilinear.random(2, seed=2, dtype=torch.float64)
    opt = ExtragradientPast(game.players, lr=0.05, base="adam", past="gradient")
    for _ in range(3):
        opt.step(game)
    game2 = copy.deepcopy(game)
    opt2 = ExtragradientPast(game2.players, lr=0.05, base="adam", past="gradient")
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):
        opt.step(game)
        opt2.step(game2)
    assert all(torch.equal(a, b) for a, b in zip(game.params(), game2.params()))
    assert opt.memory_keys()[0] == "past_grad"
    with pytest.raises(ValueError, match="past: expected one of"):
        ExtragradientPast(game.players, past="adam")
