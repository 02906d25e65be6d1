"""Dirac-GAN (Mescheder et al. 2018): fields and Jacobians against closed forms.

With this library's conventions (both players minimize; logits large on real
data), for D(x) = ψx, G = θ, data at 0 and f(t) = −log(1 + e^{−t}) (f′(0) = ½;
f(t) = t for WGAN and, near 0, hinge: f′(0) = 1):

  saturating:     L_G = f(0) + f(−ψθ), L_D = −L_G  ⇒ v = (−ψ f′(−ψθ), θ f′(−ψθ))
  non-saturating: L_G = −f(ψθ)                     ⇒ v_θ = −ψ f′(ψθ)
  J(0, 0) = [[0, −f′(0)], [f′(0), 0]],  eigenvalues ±i f′(0)
  R1 / R2 (γ/2 ψ² added to L_D): J(0, 0) = [[0, −f′(0)], [f′(0), γ]],
      eigenvalues (γ ± √(γ² − 4 f′(0)²)) / 2
  WGAN + GP (γ(|ψ| − 1)²), ψ > 0: v = (−ψ, θ + 2γ(ψ − 1)), J = [[0, −1], [1, 2γ]]
"""
import cmath
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from gandyn.diagnostics import JacobianOperator, game_jacobian, jacobian_eigvals
from gandyn.games import DiracGAN
from gandyn.nn.losses import LOSSES

F_PRIME_0 = {"saturating": 0.5, "non-saturating": 0.5, "wasserstein": 1.0, "hinge": 1.0}


def sigmoid(t):
    return 1 / (1 + math.exp(-t))


def assert_eigvals(lam, expected, tol=1e-12):
    got, want = [complex(z) for z in lam.tolist()], [complex(z) for z in expected]
    assert len(got) == len(want)
    for b in want:  # every expected eigenvalue is matched (multiplicity: each match used once)
        k = min(range(len(got)), key=lambda i: abs(got[i] - b))
        assert abs(got.pop(k) - b) < tol, (lam, expected)


@pytest.mark.parametrize("loss", sorted(F_PRIME_0))
def test_unregularized_jacobian_is_a_rotation(loss):
    fp = F_PRIME_0[loss]
    game = DiracGAN(loss, theta0=0.0, psi0=0.0)
    J = game_jacobian(game)
    torch.testing.assert_close(J, torch.tensor([[0.0, -fp], [fp, 0.0]], dtype=torch.float64), rtol=0, atol=1e-15)
    assert_eigvals(jacobian_eigvals(game), [1j * fp, -1j * fp])
    assert game.distance_to_equilibrium() == 0.0


@pytest.mark.parametrize("loss", sorted(F_PRIME_0))
@pytest.mark.parametrize("regularizer", ["r1", "r2"])
@pytest.mark.parametrize("gamma", [0.3, 1.0, 3.0])  # complex (γ < 2f′(0)) and real (γ > 2f′(0)) pairs
def test_r1_r2_jacobian_and_eigenvalues(loss, regularizer, gamma):
    fp = F_PRIME_0[loss]
    game = DiracGAN(loss, regularizer, gamma, theta0=0.0, psi0=0.0)
    expected_J = torch.tensor([[0.0, -fp], [fp, gamma]], dtype=torch.float64)
    for mode in ("forward", "reverse"):  # forward mode runs through the penalty's input gradient
        op = JacobianOperator(game, mode=mode)
        torch.testing.assert_close(torch.stack([op.matvec(e) for e in torch.eye(2, dtype=torch.float64)], 1),
                                   expected_J, rtol=0, atol=1e-14)
    torch.testing.assert_close(game_jacobian(game), expected_J, rtol=0, atol=1e-14)
    root = cmath.sqrt(gamma ** 2 - 4 * fp ** 2)
    assert_eigvals(jacobian_eigvals(game), [(gamma + root) / 2, (gamma - root) / 2])
    assert jacobian_eigvals(game).real.min() > 0  # locally asymptotically stable


@settings(deadline=None, max_examples=15)
@given(theta=st.floats(-3, 3), psi=st.floats(0.05, 3), gamma=st.floats(0.0, 5.0))
def test_wgan_gp_field_and_jacobian(theta, psi, gamma):
    game = DiracGAN("wasserstein", "wgan-gp", gamma, theta0=theta, psi0=psi)
    v = game.flat_vector_field()
    torch.testing.assert_close(v, torch.tensor([-psi, theta + 2 * gamma * (psi - 1)], dtype=torch.float64))
    torch.testing.assert_close(game_jacobian(game),
                               torch.tensor([[0.0, -1.0], [1.0, 2 * gamma]], dtype=torch.float64))


@settings(deadline=None, max_examples=15)
@given(theta=st.floats(-3, 3), psi=st.floats(-3, 3))
def test_fields_away_from_equilibrium(theta, psi):
    # f′(t) = σ(−t) for f(t) = −log(1 + e^{−t}).
    sat = DiracGAN("saturating", theta0=theta, psi0=psi).flat_vector_field()
    fp = sigmoid(psi * theta)  # f′(−ψθ)
    torch.testing.assert_close(sat, torch.tensor([-psi * fp, theta * fp], dtype=torch.float64))
    ns = DiracGAN("non-saturating", theta0=theta, psi0=psi).flat_vector_field()
    torch.testing.assert_close(ns[0], torch.tensor(-psi * sigmoid(-psi * theta), dtype=torch.float64))
    torch.testing.assert_close(ns[1], sat[1])  # D's loss is the same


def test_dtype_by_name():
    assert DiracGAN(dtype="float32").theta.dtype == torch.float32


def test_players_and_distance():
    game = DiracGAN(theta0=3.0, psi0=-4.0)
    assert [p.shape for ps in game.players for p in ps] == [torch.Size([1]), torch.Size([1])]
    assert game.theta.item() == 3.0 and game.psi.item() == -4.0
    assert game.distance_to_equilibrium() == 5.0


@pytest.mark.parametrize("kwargs, match", [
    (dict(loss="ls"), "loss"), (dict(regularizer="r3"), "regularizer"), (dict(gamma=-1.0), "gamma"),
    (dict(gamma=float("nan")), "gamma"), (dict(theta0=float("inf")), "theta0"),
    (dict(dtype=torch.int64), "dtype")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DiracGAN(**kwargs)


def test_least_squares_jacobian_is_nilpotent():
    # L_G = ½(ψθ − 1)², L_D = ½(0 − 1)² + ½(ψθ)²: v = (ψ(ψθ − 1), ψθ²), so at (0, 0)
    # J = [[0, −1], [0, 0]]: no rotation, a double zero eigenvalue (LSGAN's Dirac-GAN).
    game = DiracGAN("least-squares", theta0=0.0, psi0=0.0)
    torch.testing.assert_close(game_jacobian(game), torch.tensor([[0.0, -1.0], [0.0, 0.0]], dtype=torch.float64),
                               rtol=0, atol=1e-15)
    game = DiracGAN("least-squares", theta0=0.7, psi0=-0.4)
    (vt,), (vp,) = game.vector_field()
    assert vt.item() == pytest.approx(-0.4 * (-0.28 - 1), rel=1e-12)
    assert vp.item() == pytest.approx(-0.4 * 0.49, rel=1e-12)


def test_label_smoothing_caps_the_optimal_real_output():
    # D's real term (1 − s)·softplus(−d) + s·softplus(d) is minimized at sigmoid(d) = 1 − s.
    from gandyn.nn.losses import gan_losses
    s = 0.1
    d = torch.linspace(-6, 6, 120001, dtype=torch.float64)
    _, ld = zip(*[gan_losses("non-saturating", x.view(1), torch.full((1,), -50.0, dtype=torch.float64),
                             label_smoothing=s) for x in d[::1000]])
    best = d[::1000][int(torch.stack(ld).argmin())]
    assert abs(float(torch.sigmoid(best)) - (1 - s)) < 0.02
    # and the gradient vanishes exactly at logit(1 − s)
    x = torch.tensor([math.log((1 - s) / s)], dtype=torch.float64, requires_grad=True)
    _, l = gan_losses("non-saturating", x, torch.full((1,), -50.0, dtype=torch.float64), label_smoothing=s)
    (g,) = torch.autograd.grad(l, x)
    assert abs(g.item()) < 1e-12


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_instance_noise_adds_the_expected_curvature(sigma):
    """N(0, σ²) on D's inputs: in expectation J(0, 0) = [[0, −½], [½, −2f″(0)σ²]], f″(0) = −¼
    (Mescheder et al. 2018, § 3.2); a batch of 40 000 draws estimates it to ~1%."""
    game = DiracGAN("saturating", instance_noise=sigma, batch_size=40_000, theta0=0.0, psi0=0.0, seed=1)
    game.resample()
    J = game_jacobian(game)
    assert J[0, 1].item() == pytest.approx(-0.5, abs=1e-12) and J[1, 0].item() == pytest.approx(0.5, abs=1e-12)
    assert J[1, 1].item() == pytest.approx(sigma**2 / 2, rel=3e-2)


def test_instance_noise_is_validated():
    with pytest.raises(ValueError, match="instance_noise"):
        DiracGAN(instance_noise=-1.0)
    with pytest.raises(ValueError, match="batch_size"):
        DiracGAN(batch_size=0)
