"""Competitive gradient descent: one step is the closed-form Nash equilibrium of the local
bilinear approximation, derived here in NumPy; and the conjugate-gradient solver's edge cases."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn.games import Bilinear, Quadratic
from gandyn.optim import CGD
from gandyn.optim.conjugate_gradient import conjugate_gradient

TIGHT = dict(cg_rtol=1e-15, cg_atol=1e-300, cg_max_iter=200)


def cgd_step(gx, gy, Bxy, Cyx, eta_x, eta_y):
    """Local game: min_Δx Δxᵀgx + ΔxᵀBΔy + ‖Δx‖²/(2η_x), min_Δy Δyᵀgy + ΔyᵀCΔx + ‖Δy‖²/(2η_y).
    First-order conditions Δx = −η_x(gx + BΔy), Δy = −η_y(gy + CΔx), solved jointly."""
    m, n = len(gx), len(gy)
    K = np.block([[np.eye(m) / eta_x, Bxy], [Cyx, np.eye(n) / eta_y]])
    return np.linalg.solve(K, -np.concatenate([gx, gy]))


@settings(deadline=None, max_examples=15)
@given(m=st.integers(1, 4), n=st.integers(1, 4), eta=st.floats(0.05, 2.0), seed=st.integers(0, 2 ** 16),
       zero_sum=st.booleans())
def test_one_step_on_bilinear_is_closed_form(m, n, eta, seed, zero_sum):
    """f = xᵀAy, g = −f: Δx = −η(I + η²AAᵀ)⁻¹(Ay + ηAAᵀx), Δy = −η(I + η²AᵀA)⁻¹(−Aᵀx + ηAᵀAy)."""
    game = Bilinear.random(m, n, seed=seed)
    A, x, y = game.A.numpy(), game.x.detach().numpy().copy(), game.y.detach().numpy().copy()
    dx = -eta * np.linalg.solve(np.eye(m) + eta ** 2 * A @ A.T, A @ y + eta * A @ A.T @ x)
    dy = -eta * np.linalg.solve(np.eye(n) + eta ** 2 * A.T @ A, -A.T @ x + eta * A.T @ A @ y)
    # the same from the general local-game solution, as a cross-check of the two derivations
    np.testing.assert_allclose(cgd_step(A @ y, -A.T @ x, A, -A.T, eta, eta), np.concatenate([dx, dy]),
                               rtol=1e-10, atol=1e-12)
    CGD(game.players, lr=eta, zero_sum=zero_sum, **TIGHT).step(game)
    np.testing.assert_allclose(game.x.detach().numpy(), x + dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(game.y.detach().numpy(), y + dy, rtol=1e-10, atol=1e-10)


@settings(deadline=None, max_examples=10)
@given(m=st.integers(1, 3), n=st.integers(1, 3), mu=st.floats(-1.0, 1.0), seed=st.integers(0, 2 ** 16),
       eta_x=st.floats(0.05, 1.0), eta_y=st.floats(0.05, 1.0))
def test_one_step_general_sum_quadratic(m, n, mu, seed, eta_x, eta_y):
    """A general-sum quadratic game (not zero-sum, maybe non-monotone), per-player step sizes:
    D²_xy f = J_xy, D²_yx g = J_yx."""
    game = Quadratic.random(m, n, mu=mu, coupling=2.0, seed=seed)
    J, d = game.J.numpy(), game.d.numpy()
    z = game.flat_params().numpy().copy()
    v = J @ z + d
    delta = cgd_step(v[:m], v[m:], J[:m, m:], J[m:, :m], eta_x, eta_y)
    K = np.block([[np.eye(m) / eta_x, J[:m, m:]], [J[m:, :m], np.eye(n) / eta_y]])
    if np.linalg.cond(K) > 1e6:
        return  # near-singular local game: no unique step to compare to
    opt = CGD([{"params": game.players[0], "player": 0, "lr": eta_x},
               {"params": game.players[1], "player": 1, "lr": eta_y}], lr=0.1, zero_sum=False, **TIGHT)
    opt.step(game)
    np.testing.assert_allclose(game.flat_params().numpy(), z + delta, rtol=1e-8, atol=1e-9)


def test_one_dim_player_and_warm_start():
    """x is 1-dim: its system is solved in one CG iteration; warm-started later steps agree
    with cold-started ones."""
    game = Bilinear.random(1, 4, seed=9)
    cold = Bilinear.random(1, 4, seed=9)
    opt = CGD(game.players, lr=0.4, zero_sum=True, **TIGHT)
    ref = CGD(cold.players, lr=0.4, zero_sum=True, warm_start=False, **TIGHT)
    for _ in range(5):
        opt.step(game)
        ref.step(cold)
        assert ref.last_cg_iterations == 1
        assert opt.last_cg_iterations <= 1
    np.testing.assert_allclose(game.flat_params().numpy(), cold.flat_params().numpy(), rtol=1e-12, atol=1e-14)


def _dense(Mat):
    def mv(u):
        return [torch.as_tensor(Mat) @ u[0]]
    return mv


def test_cg_solves_spd_systems():
    rng = np.random.default_rng(0)
    B = rng.standard_normal((6, 6))
    M = B @ B.T + 0.5 * np.eye(6)
    b = rng.standard_normal(6)
    x, iters = conjugate_gradient(_dense(M), [torch.tensor(b)], rtol=1e-13, atol=0.0, max_iter=50)
    np.testing.assert_allclose(x[0].numpy(), np.linalg.solve(M, b), rtol=1e-10)
    assert 1 <= iters <= 12
    # warm start at the solution: zero iterations, returned as is
    x2, iters2 = conjugate_gradient(_dense(M), [torch.tensor(b)], [torch.tensor(np.linalg.solve(M, b))],
                                    rtol=1e-8, atol=0.0)
    assert iters2 == 0
    np.testing.assert_allclose(x2[0].numpy(), np.linalg.solve(M, b), rtol=1e-12)


def test_cg_zero_rhs_and_absolute_tolerance():
    M = np.diag([1.0, 2.0, 3.0])
    x, iters = conjugate_gradient(_dense(M), [torch.zeros(3, dtype=torch.float64)], rtol=1e-6, atol=0.0)
    assert iters == 0 and torch.equal(x[0], torch.zeros(3, dtype=torch.float64))
    # atol alone stops the iteration: ‖b‖ = 1e-20 is below atol = 1e-12
    x, iters = conjugate_gradient(_dense(M), [torch.full((3,), 1e-20, dtype=torch.float64)], rtol=0.0, atol=1e-12)
    assert iters == 0


def test_cg_rejects_indefinite_matrix():
    M = np.diag([1.0, -1.0])
    with pytest.raises(RuntimeError, match="positive definite"):
        conjugate_gradient(_dense(M), [torch.tensor([0.0, 1.0], dtype=torch.float64)], rtol=1e-10)


def test_cgd_one_lr_per_player():
    game = Bilinear.random(2, seed=0)
    a, b = torch.zeros(1, dtype=torch.float64, requires_grad=True), game.y
    x = game.x
    opt = CGD([{"params": [x], "player": 0, "lr": 0.1}, {"params": [a], "player": 0, "lr": 0.2},
               {"params": [b], "player": 1}], lr=0.1)
    with pytest.raises(ValueError, match="one lr per player"):
        opt.step(game)
