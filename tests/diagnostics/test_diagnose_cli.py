"""`gandyn diagnose` end to end: a short bilinear run, then its diagnostics against closed forms."""
import json
import math

import pytest
from gandyn.diagnostics.cli import main
from gandyn.train import run_experiment

CONFIG = {"game": "bilinear", "optimizer": "simgd", "lr": 0.05, "steps": 20, "seed": 3,
          "checkpoint_every": 10, "log_every": 10, "game_args": {"dim": 3, "smin": 0.5, "smax": 2.0}}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    run_experiment(CONFIG, d)
    return d


def test_diagnose_latest_checkpoint(run_dir, capsys):
    assert main([str(run_dir), "-k", "4"]) == 0
    assert "diagnostics.json" in capsys.readouterr().out
    result = json.loads((run_dir / "diagnostics.json").read_text())
    assert (run_dir / "eigenvalues.png").stat().st_size > 0
    assert result["step"] == 20 and result["num_params"] == 6
    # Bilinear game with singular values evenly spaced in [0.5, 2]: eigenvalues ±iσ_j.
    lam = [complex(re, im) for re, im in result["jacobian_eigvals"]["all"]]
    assert sorted(abs(z) for z in lam) == pytest.approx([0.5, 0.5, 1.25, 1.25, 2.0, 2.0])
    assert max(abs(z.real) for z in lam) < 1e-12
    nash = result["nash"]
    assert not nash["is_dne"] and not nash["locally_stable"]
    assert [p["hessian_min"] for p in nash["players"]] == [0.0, 0.0]
    assert result["rotation"]["rotation_ratio"] == "inf"  # S = 0; JSON has no infinity
    # simultaneous GD: update map I − ηJ, radius √(1 + η²σ_max²)
    assert result["update_map"]["spectral_radius"] == pytest.approx(math.sqrt(1 + 0.05 ** 2 * 2.0 ** 2))
    assert result["update_map"]["state_dim"] == 6


def test_diagnose_chosen_checkpoint(run_dir, tmp_path):
    assert main([str(run_dir), "--checkpoint", "10", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "diagnostics.json").read_text())
    assert result["step"] == 10
    # ‖v‖ at the checkpoint is the one the training loop logged at that step.
    logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert result["nash"]["grad_norm"] == pytest.approx(
        next(r["grad_norm"] for r in logged if r["step"] == 10), rel=1e-10)


def test_diagnose_bad_arguments(run_dir, tmp_path):
    with pytest.raises(SystemExit):
        main([str(tmp_path / "missing")])
    with pytest.raises(SystemExit):
        main([str(run_dir), "-k", "0"])
    with pytest.raises(ValueError, match="step"):
        main([str(run_dir), "--checkpoint", "7"])
