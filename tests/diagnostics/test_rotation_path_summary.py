"""S/A decomposition, path-angle and the logged summary against closed forms."""
import math

import pytest
import torch

from gandyn.diagnostics import decompose, path_angle, rotation, summary
from gandyn.games import Bilinear, Quadratic
from gandyn.optim import SimGD


def test_decomposition_of_a_quadratic_game():
    game = Quadratic.random(6, 4, coupling=2.0, seed=1)
    S, A = decompose(game.J)
    torch.testing.assert_close(S, game.S)            # the potential part is the symmetric S
    torch.testing.assert_close(A, game.J - game.S)   # the coupling [[0, K], [−Kᵀ, 0]] is the rotation
    r = rotation(game)
    assert r["symmetric_norm"] == pytest.approx(float(game.S.norm()))
    assert r["antisymmetric_norm"] == pytest.approx(math.sqrt(2) * float(game.K.norm()))
    assert r["rotation_ratio"] == pytest.approx(r["antisymmetric_norm"] / r["symmetric_norm"])
    assert r["rotation_fraction"] == pytest.approx(r["antisymmetric_norm"] / float(game.J.norm()))
    assert r["probes"] == 0


def test_pure_rotation_and_pure_potential():
    r = rotation(Bilinear.random(3))
    assert r["symmetric_norm"] == 0 and r["rotation_ratio"] == math.inf and r["rotation_fraction"] == 1
    potential = Quadratic.random(3, coupling=0.0)
    assert rotation(potential)["rotation_ratio"] == 0


def test_hutchinson_estimate():
    game = Quadratic.random(20, 20, coupling=1.5, seed=2)
    exact, est = rotation(game), rotation(game, probes=400, seed=0)
    assert est["probes"] == 400
    # Rademacher probes: the relative standard error of ‖M‖_F² is ≤ √(2/probes) ≈ 0.07.
    for key in ("symmetric_norm", "antisymmetric_norm"):
        assert est[key] == pytest.approx(exact[key], rel=0.1)


def test_path_angle_on_an_affine_field():
    game = Quadratic.random(3, 2, seed=4)  # v(z) = Jz + d
    start = game.flat_params().clone()
    end = game.equilibrium()
    game.set_flat_params(end)
    out = path_angle(game, start, alphas=[0.0, 0.5, 1.0, 1.2])
    d = end - start
    for a, cos, norm, pcos in zip(out["alpha"], out["cosine"], out["grad_norm"], out["player_cosines"]):
        v = game.J @ (start + a * d) + game.d  # = (1 − a) J(start − end)
        assert norm == pytest.approx(float(v.norm()), abs=1e-12)
        if a != 1.0:
            assert cos == pytest.approx(float(v @ d / (v.norm() * d.norm())), rel=1e-10)
            assert pcos[1] == pytest.approx(float(v[3:] @ d[3:] / (v[3:].norm() * d[3:].norm())), rel=1e-10)
        else:
            assert norm < 1e-12  # v = 0 at the end point (its direction is round-off)
    torch.testing.assert_close(game.flat_params(), end)  # the game is left where it was
    lam = torch.tensor([complex(re, im) for re, im in out["eigvals"]], dtype=torch.complex128)
    torch.testing.assert_close(lam.abs().sort().values, torch.linalg.eigvals(game.J).abs().sort().values)


def test_path_angle_bad_input():
    game = Quadratic.random(2)
    with pytest.raises(ValueError, match=r"start: expected a flat tensor of shape \(4,\)"):
        path_angle(game, torch.zeros(3))


def test_summary_of_a_bilinear_game():
    game = Bilinear.random(4, seed=5)
    sigma = torch.linalg.svdvals(game.A)
    lr = 0.1
    s = summary(game, SimGD(game.players, lr=lr))
    assert s["grad_norm"] == pytest.approx(float(game.flat_vector_field().detach().norm()))
    assert s["eig_max_abs"] == pytest.approx(float(sigma.max()))
    assert abs(s["eig_min_real"]) < 1e-12 and abs(s["eig_max_real"]) < 1e-12
    assert s["rotation_fraction"] == 1.0
    # simultaneous GD: eigenvalues 1 − η(±iσ) of the update map, modulus √(1 + η²σ²) > 1.
    assert s["update_spectral_radius"] == pytest.approx(math.sqrt(1 + lr ** 2 * float(sigma.max()) ** 2))


def test_summary_matrix_free_matches_dense():
    game = Quadratic.random(40, 30, coupling=0.5, seed=6)
    dense, free = summary(game, k=4), summary(game, k=4, max_dense=10, probes=200)
    assert "update_spectral_radius" not in free
    assert free["eig_max_abs"] == pytest.approx(dense["eig_max_abs"], rel=1e-5)
    assert free["grad_norm"] == pytest.approx(dense["grad_norm"])
    assert free["rotation_ratio"] == pytest.approx(dense["rotation_ratio"], rel=0.15)
