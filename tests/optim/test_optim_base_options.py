"""The base optimizers' options against torch.optim on each player's own loss: weight decay
(coupled L2), Nesterov momentum, AMSGrad; and their errors."""
from __future__ import annotations

import copy

import pytest
import torch

from gandyn.games import Quadratic
from gandyn.optim import Extragradient, SimGD

CASES = [
    ("sgd", dict(weight_decay=0.3), torch.optim.SGD, dict(weight_decay=0.3)),
    ("sgd", dict(momentum=0.8, nesterov=True), torch.optim.SGD, dict(momentum=0.8, nesterov=True)),
    ("sgd", dict(momentum=0.6, nesterov=True, weight_decay=0.1), torch.optim.SGD,
     dict(momentum=0.6, nesterov=True, weight_decay=0.1)),
    ("adam", dict(weight_decay=0.2, betas=(0.5, 0.9)), torch.optim.Adam, dict(weight_decay=0.2, betas=(0.5, 0.9))),
    ("adam", dict(amsgrad=True, betas=(0.5, 0.9)), torch.optim.Adam, dict(amsgrad=True, betas=(0.5, 0.9))),
    ("adam", dict(amsgrad=True, weight_decay=0.05), torch.optim.Adam, dict(amsgrad=True, weight_decay=0.05)),
]


@pytest.mark.parametrize("base,ours,cls,theirs", CASES)
def test_simgd_matches_torch_optim(base, ours, cls, theirs):
    game = Quadratic.random(3, 2, seed=4)  # float64
    ref = copy.deepcopy(game)
    opt = SimGD(game.players, lr=0.05, base=base, **ours)
    refs = [cls(ps, lr=0.05, **theirs) for ps in ref.players]
    for _ in range(25):
        opt.step(game)
        for ps, l in zip(ref.players, ref.losses()):
            for p, g in zip(ps, torch.autograd.grad(l, ps, retain_graph=True)):
                p.grad = g
        for r in refs:
            r.step()
    for a, b in zip(game.params(), ref.params()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-12, atol=1e-12)


def test_weight_decay_and_amsgrad_in_the_update_map_path():
    """The differentiable (out-of-place) path of base_step linearizes the in-place step that
    trains: its parameter block equals central finite differences of the real step."""
    from gandyn.diagnostics.update_map import update_jacobian
    from gandyn.optim import Optimistic

    def make(g):
        return Optimistic(g.players, lr=0.05, base="adam", weight_decay=0.1, amsgrad=True)

    game = Quadratic.random(2, 2, seed=1)
    opt = make(game)
    for _ in range(3):
        opt.step(game)
    n = sum(p.numel() for p in game.params())
    jac = update_jacobian(opt, game)[:n, :n]
    saved, z0 = opt.state_dict(), game.flat_params()

    def step_from(z):
        g = copy.deepcopy(game)
        g.set_flat_params(z)
        o = make(g)
        o.load_state_dict(saved)
        o.step(g)
        return g.flat_params()

    h = 1e-6
    fd = torch.stack([(step_from(z0 + h * e) - step_from(z0 - h * e)) / (2 * h)
                      for e in torch.eye(n, dtype=z0.dtype)], 1)
    torch.testing.assert_close(jac, fd, rtol=1e-5, atol=1e-6)


def test_extragradient_weight_decay_is_taken_at_the_start_point():
    game = Quadratic.random(2, 2, seed=2)
    ref = copy.deepcopy(game)
    Extragradient(game.players, lr=0.1, weight_decay=0.5).step(game)
    z = [p.detach().clone() for p in ref.params()]
    v = [g for gs in ref.vector_field() for g in gs]
    with torch.no_grad():
        for p, zi, vi in zip(ref.params(), z, v):
            p.copy_(zi - 0.1 * (vi + 0.5 * zi))
    v_half = [g for gs in ref.vector_field() for g in gs]
    for p, zi, vh in zip(game.params(), z, v_half):
        torch.testing.assert_close(p.detach(), zi - 0.1 * (vh + 0.5 * zi), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw,match", [(dict(nesterov=True), "nesterov"), (dict(amsgrad=True), "amsgrad"),
                                      (dict(weight_decay=-1.0), "weight_decay"), (dict(nesterov=1), "nesterov")])
def test_bad_options(kw, match):
    game = Quadratic.random(2, 2, seed=0)
    with pytest.raises(ValueError, match=match):
        SimGD(game.players, lr=0.1, **kw)
