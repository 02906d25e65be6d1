"""Unrolled GAN (gandyn/optim/unrolled.py) against the closed-form surrogate gradient on a
bilinear game, D's step equal to a plain step, a GAN, and the API."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gandyn.games import Bilinear
from gandyn.games.registry import make_game
from gandyn.optim import SimGD, Unrolled


@pytest.mark.parametrize("k", [1, 3])
def test_bilinear_surrogate_gradient_is_closed_form(k):
    """y_k = y + kηAᵀx after k D steps on L_D = −xᵀAy, so d/dx xᵀA y_k(x) = Ay + 2kηAAᵀx."""
    game = Bilinear.random(3, 2, seed=5, dtype=torch.float64)
    A, x, y = game.A.numpy(), game.x.detach().numpy().copy(), game.y.detach().numpy().copy()
    lr, eta = 0.1, 0.07
    plain = copy.deepcopy(game)
    opt = Unrolled(game.players, lr=lr, unroll_steps=k, unroll_lr=eta)
    opt.step(game)
    np.testing.assert_allclose(game.x.detach().numpy(), x - lr * (A @ y + 2 * k * eta * A @ A.T @ x),
                               rtol=1e-13, atol=1e-14)
    # D took its ordinary step, exactly as a plain simultaneous step moves it
    SimGD(plain.players, lr=lr).step(plain)
    assert torch.equal(game.y.detach(), plain.y.detach())
    assert (opt.grad_evals, opt.hvp_evals) == (k + 2, k)


@pytest.mark.parametrize("k", [1, 4])
def test_update_map_is_closed_form(k):
    """The step is linear on xᵀAy: x' = (I − 2kηℓAAᵀ)x − ℓAy, y' = y + ℓAᵀx (ℓ = lr, η = unroll_lr);
    `update_jacobian` (the differentiable mode diagnose uses) must give exactly that matrix."""
    from gandyn.diagnostics.update_map import update_jacobian

    game = Bilinear.random(3, 2, seed=2, dtype=torch.float64)
    A = game.A.numpy()
    lr, eta = 0.1, 0.05
    U = update_jacobian(Unrolled(game.players, lr=lr, unroll_steps=k, unroll_lr=eta), game).numpy()
    expected = np.block([[np.eye(3) - 2 * k * eta * lr * A @ A.T, -lr * A], [lr * A.T, np.eye(2)]])
    np.testing.assert_allclose(U, expected, atol=1e-13)


def test_gan_d_step_is_the_plain_step_and_g_differs():
    kw = dict(data="ring", model="mlp", batch_size=16, seed=2, model_args={"hidden": 8})
    game = make_game("gan", **kw)
    ref = copy.deepcopy(game)
    opt = Unrolled(game.players, lr=1e-2, base="adam", unroll_steps=2)
    ref_opt = SimGD(ref.players, lr=1e-2, base="adam")
    opt.step(game)
    ref_opt.step(ref)
    for p, q in zip(game.players[1], ref.players[1]):  # D
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0)
    assert any(not torch.equal(p.detach(), q.detach()) for p, q in zip(game.players[0], ref.players[0]))
    # D's parameters are the module's own again after the unrolling
    assert all(a is b for a, b in zip(game.D.parameters(), game.players[1]))


def test_state_dict_round_trip_and_bad_input():
    game = Bilinear.random(2, seed=1, dtype=torch.float64)
    opt = Unrolled(game.players, lr=0.05, base="adam", unroll_steps=2)
    for _ in range(2):
        opt.step(game)
    game2 = copy.deepcopy(game)
    opt2 = Unrolled(game2.players, lr=0.05, base="adam", unroll_steps=2)
    opt2.load_state_dict(opt.state_dict())
    for _ in range(3):
        opt.step(game)
        opt2.step(game2)
    assert all(torch.equal(p, q) for p, q in zip(game.params(), game2.params()))
    with pytest.raises(ValueError, match="unroll_steps"):
        Unrolled(game.players, unroll_steps=0)
    with pytest.raises(ValueError, match="closure"):
        Unrolled(game.players).step(lambda: game.losses())
