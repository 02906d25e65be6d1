"""update_jacobian against closed-form update matrices derived here in NumPy float64:
bilinear games (every method, augmented states for the methods with memory) and a
general quadratic game (where Jv ≠ −Jᵀv and CGD is general-sum)."""
from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn.diagnostics.update_map import update_jacobian, update_spectral_radius
from gandyn.games import Bilinear, Quadratic
from gandyn.games.base import Game
from gandyn.optim import (CGD, SGA, AltGD, Consensus, Extragradient, ExtragradientPast, Optimistic,
                          SimGD, Unrolled)

TIGHT = dict(cg_rtol=1e-15, cg_atol=1e-300, cg_max_iter=200)


def closed_forms(J: np.ndarray, m: int, eta: float, c: float) -> dict:
    """One-step matrices for a linear field v = Jz (+ const) with z = (x ∈ R^m, y)."""
    N = J.shape[0]
    I = np.eye(N)
    Aa = (J - J.T) / 2
    # AltGD: x' = x − ηv_x(x, y); y' = y − ηv_y(x', y)
    Px = np.zeros((N, N))
    Px[:m, :m] = np.eye(m)
    Py = I - Px
    alt = (I - eta * Py @ J) @ (I - eta * Px @ J)
    # CGD: Δ = −K⁻¹Jz with K = [[I/η, J_xy], [J_yx, I/η]] (local game's first-order conditions)
    K = np.block([[np.eye(m) / eta, J[:m, m:]], [J[m:, :m], np.eye(N - m) / eta]])
    return {
        "simgd": I - eta * J,
        "altgd": alt,
        "extragradient": I - eta * J @ (I - eta * J),
        "consensus": I - eta * (J + c * J.T @ J),
        "sga": I - eta * (J + c * Aa.T @ J),
        # augmented (z_t, s_{t−1}), s = the past step J·(point where it was taken)
        "optimistic": np.block([[I - 2 * eta * J, eta * I], [J, np.zeros((N, N))]]),
        # z½ = z − ηs, s' = Jz½, z' = z − ηs'
        "extragradient-past": np.block([[I - eta * J, eta ** 2 * J], [J, -eta * J]]),
        "cgd": I - np.linalg.solve(K, J),
    }


def make(name, game, eta, c, zero_sum):
    return {
        "simgd": lambda: SimGD(game.players, lr=eta),
        "altgd": lambda: AltGD(game.players, lr=eta),
        "extragradient": lambda: Extragradient(game.players, lr=eta),
        "consensus": lambda: Consensus(game.players, lr=eta, gamma=c),
        "sga": lambda: SGA(game.players, lr=eta, lam=c, align=False),
        "optimistic": lambda: Optimistic(game.players, lr=eta),
        "extragradient-past": lambda: ExtragradientPast(game.players, lr=eta),
        "cgd": lambda: CGD(game.players, lr=eta, zero_sum=zero_sum, **TIGHT),
    }[name]()


METHODS = ["simgd", "altgd", "extragradient", "consensus", "sga", "optimistic", "extragradient-past", "cgd"]


@pytest.mark.parametrize("name", METHODS)
@settings(deadline=None, max_examples=5)
@given(m=st.integers(1, 3), n=st.integers(1, 3), eta=st.floats(0.05, 1.0), c=st.floats(0.0, 2.0),
       seed=st.integers(0, 2 ** 16))
def test_bilinear_update_matrix(name, m, n, eta, c, seed):
    game = Bilinear.random(m, n, seed=seed)
    A = game.A.numpy()
    J = np.block([[np.zeros((m, m)), A], [-A.T, np.zeros((n, n))]])
    opt = make(name, game, eta, c, zero_sum=True)
    if name in ("optimistic", "extragradient-past"):
        opt.step(game)  # create the memory
    before = [p.detach().clone() for p in game.params()]
    state_before = opt.state_dict()
    M = update_jacobian(opt, game).numpy()
    np.testing.assert_allclose(M, closed_forms(J, m, eta, c)[name], rtol=1e-10, atol=1e-10)
    # nothing moved: parameters, their identity in the game, the optimizer's state
    assert all(torch.equal(p, b) for p, b in zip(game.params(), before))
    assert game.players[0][0] is game.x and game.x.is_leaf
    after = opt.state_dict()
    assert after["counters"] == state_before["counters"]
    for k, st_ in state_before["state"].items():
        for key, val in st_.items():
            assert torch.equal(after["state"][k][key], val)


@pytest.mark.parametrize("name", METHODS)
def test_quadratic_update_matrix(name):
    """General quadratic game: J = S + K̃ with S indefinite, so the field's Jacobian has a
    symmetric part; CGD runs general-sum (CG on the normal equations)."""
    game = Quadratic.random(2, 3, mu=-0.5, L=1.0, coupling=1.5, seed=11)
    J = game.J.numpy()
    eta, c = 0.3, 0.7
    opt = make(name, game, eta, c, zero_sum=False)
    if name in ("optimistic", "extragradient-past"):
        opt.step(game)
    M = update_jacobian(opt, game).numpy()
    expected = closed_forms(J, 2, eta, c)[name]
    np.testing.assert_allclose(M, expected, rtol=1e-9, atol=1e-10)
    rho = update_spectral_radius(opt, game)
    assert rho == pytest.approx(max(abs(np.linalg.eigvals(expected))), rel=1e-9)


def test_factory_and_momentum_state():
    """A factory builds the optimizer; SGD momentum adds its buffer to the state:
    b' = μb + v, z' = z − ηb' gives [[I − ηJ, −ημI], [J, μI]]."""
    game = Bilinear.random(2, seed=3)
    A = game.A.numpy()
    J = np.block([[np.zeros((2, 2)), A], [-A.T, np.zeros((2, 2))]])
    opt = SimGD(game.players, lr=0.2, momentum=0.6)
    opt.step(game)
    M = update_jacobian(opt, game).numpy()
    I = np.eye(4)
    np.testing.assert_allclose(M, np.block([[I - 0.2 * J, -0.2 * 0.6 * I], [J, 0.6 * I]]), rtol=1e-12, atol=1e-12)
    M0 = update_jacobian(lambda g: SimGD(g.players, lr=0.2), game).numpy()
    np.testing.assert_allclose(M0, I - 0.2 * J, rtol=1e-12, atol=1e-12)


def test_hidden_parameters_are_rejected():
    class Hidden(Game):
        def __init__(self):
            self._store = {"x": torch.ones(2, requires_grad=True), "y": torch.ones(2, requires_grad=True)}
            self.players = [[self._store["x"]], [self._store["y"]]]

        def losses(self):
            f = (self._store["x"] * self._store["y"]).sum()
            return [f, -f]

    game = Hidden()
    with pytest.raises(ValueError, match="not attributes"):
        update_jacobian(SimGD(game.players, lr=0.1), game)


def test_gan_game_against_finite_differences():
    """A tiny GAN (nn.Module players, rebound through their parameters): SimGD's and EG's
    update Jacobians against central differences of the field, I − ηDv and
    I − ηDv(z½)(I − ηDv(z)), computed from the game alone."""
    from torch import nn

    from gandyn.games import GANGame

    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).double()
    D = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    real = torch.randn(8, 2, dtype=torch.float64)
    z = torch.randn(8, 2, dtype=torch.float64)
    game = GANGame(G, D, lambda b: real[:b], lambda b: z[:b], batch_size=8)
    eta = 0.1

    def field_at(theta):
        saved = game.flat_params().clone()
        game.set_flat_params(theta)
        v = game.flat_vector_field().detach()
        game.set_flat_params(saved)
        return v

    def fd_jacobian(theta, h=1e-6):
        N = theta.numel()
        cols = [(field_at(theta + h * e) - field_at(theta - h * e)) / (2 * h) for e in torch.eye(N, dtype=theta.dtype)]
        return torch.stack(cols, 1)

    theta = game.flat_params().clone()
    I = torch.eye(theta.numel(), dtype=torch.float64)
    Dv = fd_jacobian(theta)
    M = update_jacobian(SimGD(game.players, lr=eta), game)
    torch.testing.assert_close(M, I - eta * Dv, rtol=1e-6, atol=1e-7)
    half = theta - eta * field_at(theta)
    M = update_jacobian(Extragradient(game.players, lr=eta), game)
    torch.testing.assert_close(M, I - eta * fd_jacobian(half) @ (I - eta * Dv), rtol=1e-6, atol=1e-7)
    assert torch.equal(game.flat_params(), theta)
    assert all(isinstance(p, nn.Parameter) for p in G.parameters())


@pytest.mark.parametrize("cls", [SimGD, Optimistic, ExtragradientPast,
                                 functools.partial(Unrolled, unroll_steps=2, unroll_base="adam")],
                         ids=["simgd", "optimistic", "extragradient-past", "unrolled-adam"])
def test_adam_augmented_state_against_finite_differences(cls):
    """Base Adam: the state is (θ, [past_step], exp_avg, exp_avg_sq). Central differences
    of real steps (the in-place, fused-kernel path) from perturbed copies of that state
    (the unrolled GAN unrolling D's Adam: G's step depends on D's moments too)."""
    game = Bilinear.random(2, seed=4)
    opt = cls(game.players, lr=0.05, base="adam", betas=(0.5, 0.9))
    for _ in range(3):
        opt.step(game)
    params = game.params()
    keys = opt.memory_keys()
    like = params + [opt.state[p][k] for k in keys for p in params]
    sizes = [t.numel() for t in like]
    s0 = torch.cat([t.detach().reshape(-1) for t in like])
    saved_opt, saved_game = opt.state_dict(), game.state_dict()

    def real_step(s):
        opt.load_state_dict(saved_opt)
        game.load_state_dict(saved_game)
        pieces = torch.split(s, sizes)
        with torch.no_grad():
            for p, t in zip(params, pieces):
                p.copy_(t.view_as(p))
        for (k, p), t in zip([(k, p) for k in keys for p in params], pieces[len(params):]):
            opt.state[p][k] = t.view_as(p).clone()
        opt.step(game)
        return torch.cat([p.detach().reshape(-1) for p in params] +
                         [opt.state[p][k].reshape(-1) for k in keys for p in params])

    h = 1e-6
    fd = torch.stack([(real_step(s0 + h * e) - real_step(s0 - h * e)) / (2 * h)
                      for e in torch.eye(s0.numel(), dtype=s0.dtype)], 1)
    opt.load_state_dict(saved_opt)
    game.load_state_dict(saved_game)
    J = update_jacobian(opt, game)
    torch.testing.assert_close(J, fd, rtol=1e-5, atol=1e-6)
