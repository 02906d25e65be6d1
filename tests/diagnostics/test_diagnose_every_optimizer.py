"""Every optimizer `gandyn run` accepts, plain and inside lookahead, works with `diagnose`
and with `diagnostics_every`; a lookahead's update map is that of one cycle, against the
closed form (1 − α)I + α Mᵏ derived here in NumPy."""
import json

import numpy as np
import pytest
import torch

from gandyn.diagnostics.cli import main as diagnose
from gandyn.diagnostics.update_map import update_jacobian
from gandyn.games import Bilinear
from gandyn.optim import OPTIMIZERS, Extragradient, LookaheadMinmax, SimGD
from gandyn.train import load_run, read_metrics, run_experiment

LR, K, ALPHA = 0.1, 3, 0.5


@pytest.mark.parametrize("lookahead", [False, True], ids=["plain", "lookahead"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_diagnose_and_diagnostics_every(name, lookahead, tmp_path, capsys):
    cfg = {"game": "bilinear", "optimizer": name, "lr": LR, "steps": 4, "log_every": 2,
           "checkpoint_every": 2, "diagnostics_every": 2, "game_args": {"dim": 2}}
    if lookahead:
        cfg["lookahead"] = {"k": K, "alpha": ALPHA}
    assert run_experiment(cfg, tmp_path)["status"] == "finished"
    logged = read_metrics(tmp_path)[-1]["diagnostics"]["update_spectral_radius"]
    assert diagnose([str(tmp_path), "-k", "2"]) == 0
    assert "update spectral radius" in capsys.readouterr().out
    result = json.loads((tmp_path / "diagnostics.json").read_text())
    # the same point (the last checkpoint is the last logged step) gives the same map
    assert result["update_map"]["spectral_radius"] == pytest.approx(logged, rel=1e-9)
    assert np.isfinite(logged) and logged > 0


def _J(game: Bilinear) -> np.ndarray:
    """v = (Ay + b, −(Aᵀx + c)) for min_x max_y xᵀAy + bᵀx + cᵀy."""
    A = game.A.double().numpy()
    m, n = A.shape
    return np.block([[np.zeros((m, m)), A], [-A.T, np.zeros((n, n))]])


@pytest.mark.parametrize("inner", ["simgd", "extragradient"])
def test_lookahead_update_map_is_one_cycle(inner):
    game = Bilinear.random(3, 2, seed=1, dtype=torch.float64)
    J = _J(game)
    I = np.eye(J.shape[0])
    M = I - LR * J if inner == "simgd" else I - LR * J @ (I - LR * J)
    cls = SimGD if inner == "simgd" else Extragradient
    opt = LookaheadMinmax(cls(game.players, lr=LR), k=K, alpha=ALPHA)
    before = [p.detach().clone() for ps in game.players for p in ps]
    U = update_jacobian(opt, game).numpy()
    np.testing.assert_allclose(U, (1 - ALPHA) * I + ALPHA * np.linalg.matrix_power(M, K), atol=1e-12)
    # the game and the optimizer are left as they were
    assert all(torch.equal(a, p) for a, p in zip(before, (p for ps in game.players for p in ps)))
    assert opt.inner_steps == 0 and opt.inner.grad_evals == 0


def test_diagnose_lookahead_run_matches_the_closed_form(tmp_path):
    cfg = {"game": "bilinear", "optimizer": "simgd", "lr": LR, "steps": 5, "checkpoint_every": 5,
           "lookahead": {"k": K, "alpha": ALPHA}, "game_args": {"dim": 3}}
    run_experiment(cfg, tmp_path)
    assert diagnose([str(tmp_path)]) == 0
    result = json.loads((tmp_path / "diagnostics.json").read_text())
    J = _J(load_run(tmp_path).game)
    I = np.eye(J.shape[0])
    cycle = (1 - ALPHA) * I + ALPHA * np.linalg.matrix_power(I - LR * J, K)
    assert result["update_map"]["spectral_radius"] == pytest.approx(np.abs(np.linalg.eigvals(cycle)).max(),
                                                                     rel=1e-12)
