"""nash_report against games whose Hessian blocks and Jacobian spectra are known in closed form."""
import json

import pytest
import torch

from gandyn.diagnostics import nash_report
from gandyn.games import Bilinear, DiracGAN, Quadratic


def _quadratic_at_equilibrium(Sxx, Syy, K):
    m, n = K.shape
    S = torch.zeros(m + n, m + n, dtype=torch.float64)
    S[:m, :m], S[m:, m:] = Sxx, Syy
    game = Quadratic(S, K, torch.randn(m + n, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    z = game.equilibrium()
    game.set_flat_params(z)
    return game


def _spd(m, lo, hi, seed):
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(m, m, generator=g, dtype=torch.float64))
    return Q @ torch.diag(torch.linspace(lo, hi, m, dtype=torch.float64)) @ Q.T


@pytest.mark.parametrize("lo_y", [0.2, -0.2])
def test_zero_sum_quadratic(lo_y):
    # x minimizes ½xᵀSxx x + xᵀKy, y minimizes ½yᵀSyy y − yᵀKᵀx (in the max-player convention
    # f = ½xᵀSxx x + xᵀKy − ½yᵀSyy y, so ∇²_yy f = −Syy ≺ 0 ⇔ Syy ≻ 0).
    Sxx, Syy = _spd(4, 0.5, 2.0, 1), _spd(3, lo_y, 1.5, 2)
    K = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    game = _quadratic_at_equilibrium(Sxx, Syy, K)
    r = nash_report(game)
    assert r.stationary and r.grad_norm < 1e-12 and r.exact
    assert [p.name for p in r.players] == ["x", "y"]
    assert r.players[0].hessian_min == pytest.approx(0.5, rel=1e-10)
    assert r.players[0].hessian_max == pytest.approx(2.0, rel=1e-10)
    assert r.players[1].hessian_min == pytest.approx(lo_y, rel=1e-10)
    assert r.players[1].margin == r.players[1].hessian_min
    assert r.is_dne == (lo_y > 0)
    lam = torch.linalg.eigvals(game.J)
    assert r.jacobian_min_real == pytest.approx(float(lam.real.min()), rel=1e-10)
    assert r.jacobian_max_abs == pytest.approx(float(lam.abs().max()), rel=1e-10)
    assert r.locally_stable == bool(lam.real.min() > 0)
    json.dumps(r.to_dict())  # serializable as is
    assert "differential Nash equilibrium: " + str(lo_y > 0) in str(r)


def test_dirac_gan_rotation_is_neither_nash_nor_stable():
    r = nash_report(DiracGAN("saturating", theta0=0.0, psi0=0.0))
    assert r.stationary
    assert [p.hessian_min for p in r.players] == [0.0, 0.0]  # both own Hessians vanish
    assert not r.is_dne and not r.locally_stable
    assert r.jacobian_max_abs == pytest.approx(0.5)
    assert abs(r.jacobian_min_real) < 1e-15


def test_dirac_gan_r1_is_stable_but_not_nash():
    # Mescheder et al.: R1 makes the equilibrium locally stable though G's own Hessian is 0.
    gamma = 0.6
    r = nash_report(DiracGAN("non-saturating", "r1", gamma, theta0=0.0, psi0=0.0))
    assert r.players[1].hessian_min == pytest.approx(gamma)
    assert r.players[0].hessian_min == 0.0 and not r.players[0].positive_definite
    assert not r.is_dne and r.locally_stable
    assert r.jacobian_min_real == pytest.approx(gamma / 2)  # (γ ± i√(4f′(0)² − γ²))/2, f′(0) = ½


def test_not_stationary_away_from_equilibrium():
    game = Bilinear.random(3, seed=1)
    r = nash_report(game)
    assert not r.stationary and not r.is_dne and not r.locally_stable
    assert r.grad_norm == pytest.approx(float(game.flat_vector_field().detach().norm()), rel=1e-12)


def test_matrix_free_path_agrees_with_dense():
    Sxx, Syy = _spd(30, 0.3, 2.0, 4), _spd(25, 0.1, 1.0, 5)
    # Weak coupling: Arnoldi for the smallest real parts (ARPACK "SR") converges to the true ones when
    # they lie far out on the spectrum's hull; with strong rotation it can settle on others (eigen.py).
    K = 0.2 * torch.randn(30, 25, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    game = _quadratic_at_equilibrium(Sxx, Syy, K)
    dense, free = nash_report(game), nash_report(game, max_dense=10, k=4, ncv=30)
    assert not free.exact and dense.exact
    for a, b in zip(dense.players, free.players):
        assert b.hessian_min == pytest.approx(a.hessian_min, rel=1e-6)
        assert b.hessian_max == pytest.approx(a.hessian_max, rel=1e-6)
    assert free.jacobian_min_real == pytest.approx(dense.jacobian_min_real, rel=1e-6)
    assert free.jacobian_max_abs == pytest.approx(dense.jacobian_max_abs, rel=1e-6)
    assert free.is_dne == dense.is_dne and free.locally_stable == dense.locally_stable


@pytest.mark.parametrize("kwargs, match", [(dict(grad_tol=-1.0), "grad_tol"),
                                           (dict(pd_tol=float("nan")), "pd_tol")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nash_report(Bilinear.random(2), **kwargs)
