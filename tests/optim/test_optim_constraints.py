"""Projected game optimizers (gandyn/optim/constraints.py): the projection follows every
move, extrapolations included, and configs select it per player."""
from __future__ import annotations

import math

import pytest
import torch

from gandyn.games import Bilinear
from gandyn.optim import OPTIMIZERS, Extragradient, ExtragradientPast
from gandyn.optim.constraints import project


def _theta_phi(theta0: float, phi0: float) -> Bilinear:
    """min_θ max_φ θφ: player x = θ minimizes θφ, player y = φ minimizes −θφ."""
    return Bilinear(torch.ones(1, 1, dtype=torch.float64), x0=torch.tensor([theta0], dtype=torch.float64),
                    y0=torch.tensor([phi0], dtype=torch.float64))


def _clip(x):
    return min(1.0, max(-1.0, x))


def test_projected_extragradient_matches_transcription_and_stays_in_the_box():
    """Gidel et al. 2019, projected extragradient on θφ with φ ∈ [−1, 1], θ free:
    θ½ = θ − ηφ, φ½ = P(φ + ηθ); θ' = θ − ηφ½, φ' = P(φ + ηθ½)."""
    eta, theta, phi = 0.4, 2.0, 0.9
    game = _theta_phi(theta, phi)
    opt = Extragradient([{"params": [game.x], "player": 0},
                         {"params": [game.y], "player": 1, "constraint": {"box": [-1.0, 1.0]}}], lr=eta)
    clipped = 0
    for _ in range(30):
        th_h, ph_h = theta - eta * phi, _clip(phi + eta * theta)
        clipped += ph_h != phi + eta * theta
        theta, phi = theta - eta * ph_h, _clip(phi + eta * th_h)
        opt.step(game)
        assert game.x.item() == pytest.approx(theta, abs=1e-14)
        assert game.y.item() == pytest.approx(phi, abs=1e-14)
        assert -1.0 <= game.y.item() <= 1.0
    assert clipped >= 3  # the projection was active, at the extrapolation too


def test_extrapolation_is_projected_for_extragradient_from_the_past():
    """θ½ = θ − ηs_{t−1}, φ½ = P(φ − η s_{t−1}); the field is evaluated at the projected point."""
    eta, theta, phi = 0.5, 3.0, 0.8
    game = _theta_phi(theta, phi)
    opt = ExtragradientPast([{"params": [game.x], "player": 0},
                             {"params": [game.y], "player": 1, "constraint": {"box": [-1.0, 1.0]}}], lr=eta)
    past = (0.0, 0.0)  # (s_θ, s_φ): the field at the previous extrapolated point
    for _ in range(20):
        th_h, ph_h = theta - eta * past[0], _clip(phi - eta * past[1])
        past = (ph_h, -th_h)
        theta, phi = theta - eta * past[0], _clip(phi - eta * past[1])
        opt.step(game)
        assert (game.x.item(), game.y.item()) == pytest.approx((theta, phi), abs=1e-13)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_keeps_the_iterates_in_a_ball(name):
    game = Bilinear.random(3, seed=2, dtype=torch.float64)
    with torch.no_grad():
        game.x.mul_(10)
    opt = OPTIMIZERS[name]([{"params": [game.x], "player": 0, "constraint": {"ball": 0.5}},
                            {"params": [game.y], "player": 1, "constraint": {"box": [-0.2, 0.3]}}], lr=0.3)
    for _ in range(5):
        opt.step(game)
        assert float(game.x.detach().norm()) <= 0.5 + 1e-12
        assert float(game.y.detach().min()) >= -0.2 and float(game.y.detach().max()) <= 0.3


def test_ball_projection_is_the_closest_point():
    a, b = torch.tensor([3.0, 4.0]), torch.tensor([12.0])
    pa, pb = project({"ball": 2.6}, [a, b])  # ‖(a, b)‖ = 13: scale by 0.2
    assert torch.allclose(pa, a * 0.2) and torch.allclose(pb, b * 0.2)
    inside = [torch.tensor([0.1, -0.2])]
    assert torch.equal(project({"ball": 1.0}, inside)[0], inside[0])


def test_a_callable_constraint():
    game = _theta_phi(1.0, 1.0)
    opt = Extragradient([{"params": [game.x], "player": 0, "constraint": lambda ts: [t.abs() for t in ts]},
                         {"params": [game.y], "player": 1}], lr=0.5)
    opt.step(game)  # θ½ = |1 − 0.5| , φ½ = 1.5; θ' = |1 − 0.75| = 0.25
    assert game.x.item() == pytest.approx(0.25)


@pytest.mark.parametrize("spec,match", [({"box": [1.0, -1.0]}, "lo <= hi"), ({"ball": 0}, "ball"),
                                        ({"disc": 1.0}, "box"), ({"box": [0.0]}, r"\[lo, hi\]"),
                                        ("box", "callable")])
def test_bad_constraints_are_refused(spec, match):
    game = _theta_phi(1.0, 1.0)
    with pytest.raises(ValueError, match=match):
        Extragradient([{"params": [game.x], "player": 0, "constraint": spec},
                       {"params": [game.y], "player": 1}], lr=0.5)


def test_config_selects_a_constraint(tmp_path):
    from gandyn.train import read_metrics, run_experiment

    cfg = {"game": "bilinear", "game_args": {"dim": 2}, "optimizer": "extragradient", "lr": 0.5,
           "steps": 20, "log_every": 1, "players": {"y": {"constraint": {"box": [-0.1, 0.1]}}}}
    run_experiment(cfg, tmp_path)
    rows = read_metrics(tmp_path)
    assert all(abs(r["coord1"]) <= 0.1 + 1e-7 for r in rows[1:])
    assert any(math.isclose(abs(r["coord1"]), 0.1, rel_tol=1e-6) for r in rows[1:])
