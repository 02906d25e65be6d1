"""Averaged (gandyn/optim/averaging.py): uniform and EMA averages of the iterates against
transcriptions, Gidel et al. 2019's averaging result on θφ, lr schedulers on game
optimizers, state_dict round trips, and the [averaging] config table."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

from gandyn.games import Bilinear, Quadratic
from gandyn.optim import Averaged, Extragradient, LookaheadMinmax, Optimistic, SimGD


def _theta_phi(theta0=1.0, phi0=1.0) -> Bilinear:
    return Bilinear(torch.ones(1, 1, dtype=torch.float64), x0=torch.tensor([theta0], dtype=torch.float64),
                    y0=torch.tensor([phi0], dtype=torch.float64))


def _clipped_simgd(game):
    return SimGD([{"params": [game.x], "player": 0},
                  {"params": [game.y], "player": 1, "constraint": {"box": [-1.0, 1.0]}}], lr=1.0)


def test_lambda_lr_gives_the_step_sizes_it_is_asked_for():
    game = _theta_phi()
    opt = _clipped_simgd(game)
    sched = LambdaLR(opt, lambda t: 2 / math.sqrt(t + 1))
    theta, phi = 1.0, 1.0
    for t in range(50):
        assert all(g["lr"] == pytest.approx(2 / math.sqrt(t + 1), rel=1e-15) for g in opt.param_groups)
        eta = 2 / math.sqrt(t + 1)
        theta, phi = theta - eta * phi, min(1.0, max(-1.0, phi + eta * theta))
        opt.step(game)
        sched.step()
        assert (game.x.item(), game.y.item()) == pytest.approx((theta, phi), abs=1e-12)


def test_averaged_sgd_converges_where_the_last_iterate_does_not():
    """Gidel et al. 2019 (§3.2, Fig. 2): on min_θ max_φ θφ with φ ∈ [−1, 1], simultaneous
    SGD with η_t = 2/√(t+1) keeps |z_t| ≈ 1 while the uniform average of its iterates
    goes to the equilibrium 0. Transcription in numpy, then the numbers."""
    T = 2000
    game = _theta_phi()
    avg = Averaged(_clipped_simgd(game), "uniform")
    sched = LambdaLR(avg, lambda t: 2 / math.sqrt(t + 1))  # on the wrapper: the same groups
    z, zsum = np.array([1.0, 1.0]), np.zeros(2)
    for t in range(T):
        eta = 2 / math.sqrt(t + 1)
        z = np.array([z[0] - eta * z[1], np.clip(z[1] + eta * z[0], -1, 1)])
        zsum += z
        avg.step(game)
        sched.step()
    zbar = zsum / T
    got = torch.cat(avg.averaged())
    np.testing.assert_allclose(got.numpy(), zbar, atol=1e-12)
    assert np.hypot(*zbar) < 0.02          # the average converges (0.0134 here)
    assert math.hypot(game.x.item(), game.y.item()) > 0.9  # the last iterate stays on |z| ≈ 1
    np.testing.assert_allclose([game.x.item(), game.y.item()], z, atol=1e-12)


def test_ema_and_start_match_a_transcription():
    game = Quadratic.random(2, 2, mu=0.5, seed=3)
    opt = Averaged(Optimistic(game.players, lr=0.05), "ema", decay=0.9, start=3)
    ref = copy.deepcopy(game)
    ref_opt = Optimistic(ref.players, lr=0.05)
    ema = None
    for t in range(1, 11):
        opt.step(game)
        ref_opt.step(ref)
        z = torch.cat([p.detach().reshape(-1) for p in ref.params()])
        if t > 3:
            ema = z.clone() if ema is None else 0.9 * ema + 0.1 * z
        assert opt.n_averaged == max(0, t - 3)
    got = torch.cat([a.reshape(-1) for a in opt.averaged()])
    torch.testing.assert_close(got, ema, rtol=1e-6, atol=1e-7)


def test_swapped_puts_the_average_in_and_the_iterate_back():
    game = _theta_phi(0.5, -0.5)
    opt = Averaged(Extragradient(game.players, lr=0.3))
    for _ in range(3):
        opt.step(game)
    last = [p.detach().clone() for p in game.params()]
    with opt.swapped():
        inside = [p.detach().clone() for p in game.params()]
    assert all(torch.equal(a, b) for a, b in zip(inside, opt.averaged()))
    assert all(torch.equal(a, p.detach()) for a, p in zip(last, game.params()))
    assert not all(torch.equal(a, b) for a, b in zip(inside, last))


def test_state_dict_round_trip_is_bit_exact_over_lookahead():
    def make(g):
        return Averaged(LookaheadMinmax(SimGD(g.players, lr=0.05, momentum=0.5), k=(2, 4), seed=1),
                        "uniform", start=2)

    game = Quadratic.random(3, 2, mu=0.3, seed=7)
    opt = make(game)
    for _ in range(5):
        opt.step(game)
    saved = opt.state_dict()
    game2 = copy.deepcopy(game)
    opt2 = make(game2)
    opt2.load_state_dict(saved)
    for _ in range(7):
        opt.step(game)
        opt2.step(game2)
    for a, b in zip(game.params(), game2.params()):
        assert torch.equal(a, b)
    assert all(torch.equal(a, b) for a, b in zip(opt.averaged(), opt2.averaged()))
    assert opt.grad_evals == opt2.grad_evals == 12


@pytest.mark.parametrize("kw,match", [(dict(mode="median"), "mode"), (dict(decay=1.0), "decay"),
                                      (dict(start=-1), "start")])
def test_bad_options_are_refused(kw, match):
    game = _theta_phi()
    with pytest.raises(ValueError, match=match):
        Averaged(SimGD(game.players, lr=0.1), **kw)
    with pytest.raises(ValueError, match="inner_optimizer"):
        Averaged(torch.optim.SGD(game.params(), lr=0.1))


def test_config_logs_the_average_and_resumes(tmp_path):
    from gandyn.train import load_run, read_metrics, run_experiment

    cfg = {"game": "bilinear", "game_args": {"dim": 2}, "optimizer": "simgd", "lr": 0.05, "steps": 20,
           "log_every": 5, "checkpoint_every": 10, "averaging": {"mode": "uniform"}}
    run_experiment(cfg, tmp_path / "a")
    rows = read_metrics(tmp_path / "a")
    run = load_run(tmp_path / "a")
    with run.optimizer.swapped():
        d = run.game.distance_to_equilibrium()
    assert rows[-1]["average"]["distance"] == pytest.approx(d, rel=1e-12)
    assert rows[-1]["average"]["distance"] < rows[-1]["distance"]  # SimGD spirals out, its average less
    run_experiment({**cfg, "steps": 10}, tmp_path / "b")
    run_experiment(cfg, tmp_path / "b")  # resumed from step 10
    assert read_metrics(tmp_path / "b") == rows
    with pytest.raises(ValueError, match="averaging: unknown keys"):
        run_experiment({**cfg, "averaging": {"mode": "ema", "beta": 0.9}}, tmp_path / "c")


def test_random_and_nested_lookahead_periods():
    """k = (2, 4) backtracks at the steps drawn from the seeded generator; an outer lookahead
    around an inner one backtracks every k_outer steps, and fast and inner slow weights
    restart from the backtracked point."""
    game = _theta_phi(1.0, 0.0)
    inner = LookaheadMinmax(SimGD(game.players, lr=0.1), k=(2, 4), alpha=0.5, seed=3)
    g = torch.Generator().manual_seed(3)
    syncs, t = [], 0
    while t < 30:
        t += int(torch.randint(2, 5, (), generator=g))
        syncs.append(t)
    outer = LookaheadMinmax(inner, k=10, alpha=0.5)
    # transcription: fast SimGD, inner slow weights (k from the same draws), outer every 10 steps
    z = np.array([1.0, 0.0])
    slow_in, slow_out = z.copy(), z.copy()
    for step in range(1, 31):
        z = z - 0.1 * np.array([z[1], -z[0]])
        if step in syncs:
            slow_in = slow_in + 0.5 * (z - slow_in)
            z = slow_in.copy()
        if step % 10 == 0:
            slow_out = slow_out + 0.5 * (z - slow_out)
            z, slow_in = slow_out.copy(), slow_out.copy()
        outer.step(game)
        np.testing.assert_allclose([game.x.item(), game.y.item()], z, atol=1e-14)
    assert outer.grad_evals == 30
