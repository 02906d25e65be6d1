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


# ---- unroll_base="adam": the unrolled steps are D's own Adam update ------------------------------

def _adam_unrolled_y(A, x, y, m, v, t, k, lr, b1, b2, eps, wd, amsgrad, vmax):
    """k Adam steps of y on L_D = −xᵀAy, transcribed from Kingma & Ba (Algorithm 1) with
    torch.optim.Adam's coupled weight decay and AMSGrad, from moments (m, v, vmax) at step t."""
    for _ in range(k):
        d = -(A.T @ x) + wd * y
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d ** 2
        if amsgrad:
            vmax = torch.maximum(vmax, v)
        t += 1
        y = y - lr * (m / (1 - b1 ** t)) / (torch.sqrt((vmax if amsgrad else v) / (1 - b2 ** t)) + eps)
    return y


def _groups(game, lr_d=0.05, **d_options):
    # G on plain SGD at lr 1: its step is exactly minus the surrogate gradient
    return [{"params": [game.x], "player": 0, "base": "sgd", "lr": 1.0},
            {"params": [game.y], "player": 1, "base": "adam", "lr": lr_d, "betas": (0.5, 0.9), **d_options}]


@pytest.mark.parametrize("wd, amsgrad, warm", [(0.0, False, 0), (0.0, False, 2), (0.3, True, 2)])
def test_adam_unrolling_surrogate_gradient_is_the_transcription_and_a_finite_difference(wd, amsgrad, warm):
    """g_G = d/dx xᵀA yᵏ(x) with yᵏ from k Adam steps from D's current moments and step count
    (zero moments before D's first step): against autograd through the transcription above and
    a central finite difference of x ↦ xᵀA yᵏ(x), in float64."""
    game = Bilinear.random(3, 2, seed=7, dtype=torch.float64)
    k, lr_d, b1, b2, eps = 3, 0.05, 0.5, 0.9, 1e-3
    opt = Unrolled(_groups(game, lr_d, eps=eps, weight_decay=wd, amsgrad=amsgrad), unroll_steps=k,
                   unroll_base="adam")
    for _ in range(warm):
        opt.step(game)
    A, y = game.A, game.y.detach().clone()
    x = game.x.detach().clone().requires_grad_(True)
    st = opt.state[game.y]
    zero = torch.zeros_like(y)
    m, v, t = (st["exp_avg"].clone(), st["exp_avg_sq"].clone(), st["step"]) if warm else (zero, zero, 0)
    vmax = st["max_exp_avg_sq"].clone() if warm and amsgrad else zero

    def surrogate(x):
        return x @ A @ _adam_unrolled_y(A, x, y, m, v, t, k, lr_d, b1, b2, eps, wd, amsgrad, vmax)

    expected, = torch.autograd.grad(surrogate(x), x)
    h = 1e-6
    fd = torch.stack([(surrogate(x.detach() + h * e) - surrogate(x.detach() - h * e)) / (2 * h)
                      for e in torch.eye(3, dtype=torch.float64)])
    torch.testing.assert_close(expected, fd, rtol=1e-7, atol=1e-9)
    opt.step(game)
    torch.testing.assert_close(x.detach() - game.x.detach(), expected, rtol=1e-12, atol=1e-14)
    assert (opt.grad_evals, opt.hvp_evals) == ((warm + 1) * (k + 2), (warm + 1) * k)


def test_adam_unrolling_with_exactly_zero_gradients_is_finite():
    """A dead unit's gradient is exactly 0, so at D's first step v = 0 and √v's derivative is
    infinite (inf · 0 = NaN in the backward). A zero column of A gives such a coordinate: y₂
    never moves, so g_G = d/dx xᵀA₁y₁ᵏ(x) + A₂y₂ with y₁ᵏ the one live coordinate's transcription."""
    A = torch.tensor([[1.0, 0.0], [-0.5, 0.0], [2.0, 0.0]], dtype=torch.float64)
    game = Bilinear(A, x0=torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64),
                    y0=torch.tensor([0.4, -0.7], dtype=torch.float64))
    k, lr_d, b1, b2, eps = 2, 0.05, 0.5, 0.9, 1e-8
    opt = Unrolled(_groups(game, lr_d, eps=eps), unroll_steps=k, unroll_base="adam")
    x = game.x.detach().clone().requires_grad_(True)
    y = game.y.detach().clone()
    z = torch.zeros(1, dtype=torch.float64)
    y1 = _adam_unrolled_y(A[:, :1], x, y[:1], z, z, 0, k, lr_d, b1, b2, eps, 0.0, False, z)
    expected, = torch.autograd.grad(x @ A[:, :1] @ y1 + x @ A[:, 1] * y[1], x)
    opt.step(game)
    assert torch.isfinite(game.x).all()
    torch.testing.assert_close(x.detach() - game.x.detach(), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("unroll_base", ["sgd", "adam"])
def test_gan_unrolling_leaves_d_and_its_adam_state_as_a_plain_step(unroll_base):
    """At every step D's parameters and its whole Adam state (moments, step count) come out
    bit-identical to a SimGD-Adam step from the same game and state: the unrolled steps work
    on copies. G's step differs from SimGD's, and between the two unroll bases."""
    game = make_game("gan", data="ring", model="mlp", batch_size=16, seed=2, model_args={"hidden": 8})
    opt = Unrolled(game.players, lr=1e-2, base="adam", unroll_steps=2, unroll_base=unroll_base)
    for _ in range(3):
        ref, other = copy.deepcopy(game), copy.deepcopy(game)
        ref_opt = SimGD(ref.players, lr=1e-2, base="adam")
        other_opt = Unrolled(other.players, lr=1e-2, base="adam", unroll_steps=2,
                             unroll_base={"sgd": "adam", "adam": "sgd"}[unroll_base])
        for o in (ref_opt, other_opt):
            o.load_state_dict(opt.state_dict())
        for o, g in ((opt, game), (ref_opt, ref), (other_opt, other)):
            o.step(g)
        for p, q in zip(game.players[1], ref.players[1]):
            assert torch.equal(p.detach(), q.detach())
            assert opt.state[p].keys() == ref_opt.state[q].keys() == {"step", "exp_avg", "exp_avg_sq"}
            assert opt.state[p]["step"] == ref_opt.state[q]["step"]
            assert torch.equal(opt.state[p]["exp_avg"], ref_opt.state[q]["exp_avg"])
            assert torch.equal(opt.state[p]["exp_avg_sq"], ref_opt.state[q]["exp_avg_sq"])
        assert any(not torch.equal(p.detach(), q.detach()) for p, q in zip(game.players[0], ref.players[0]))
        assert any(not torch.equal(p.detach(), q.detach()) for p, q in zip(game.players[0], other.players[0]))
    assert all(torch.isfinite(p).all() for p in game.params())
    assert all(a is b for a, b in zip(game.D.parameters(), game.players[1]))


def test_unroll_base_bad_values_are_refused():
    game = Bilinear.random(2, seed=1, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"unroll_base: expected one of \('sgd', 'adam'\), got 'rmsprop'"):
        Unrolled(game.players, base="adam", unroll_base="rmsprop")
    with pytest.raises(ValueError, match="unroll_base: expected one of"):
        Unrolled(game.players, base="adam", unroll_base=None)
    with pytest.raises(ValueError, match=r"unroll_base: 'adam' .* needs base='adam'; its groups have base \['sgd'\]"):
        Unrolled(game.players, base="sgd", unroll_base="adam")
    with pytest.raises(ValueError, match="unroll_bse: unknown option"):
        Unrolled(game.players, base="adam", unroll_bse="adam")
