"""Run directories: metrics, atomic checkpoints, resume, divergence, CLI."""
import json
import math

import pytest
import torch

from gandyn import config as configs
from gandyn.cli import main as cli
from gandyn.train import checkpoints, load_run, read_metrics, read_status, run_experiment

BASE = {"game": "bilinear", "game_args": {"dim": 3}, "optimizer": "extragradient", "lr": 0.2,
        "steps": 60, "log_every": 5, "checkpoint_every": 20}


def test_run_writes_its_directory(tmp_path):
    status = run_experiment(BASE, tmp_path / "r")
    assert status == {"status": "finished", "step": 60}
    rows = read_metrics(tmp_path / "r")
    assert [r["step"] for r in rows] == list(range(0, 61, 5))
    assert checkpoints(tmp_path / "r") == [20, 40, 60]
    # Extragradient spends two gradient evaluations per step.
    assert [r["grad_evals"] for r in rows] == [2 * r["step"] for r in rows]
    assert rows[-1]["distance"] < rows[0]["distance"]
    cfg = configs.load(tmp_path / "r" / "config.toml")
    assert cfg["optimizer"] == "extragradient" and cfg["game_args"] == {"dim": 3}
    # The logged distance is that of the game restored from the last checkpoint.
    run = load_run(tmp_path / "r")
    assert run.step == 60
    assert run.game.distance_to_equilibrium() == pytest.approx(rows[-1]["distance"], rel=1e-12)


def test_resume_continues_the_same_metric_stream(tmp_path):
    run_experiment(BASE, tmp_path / "full")
    # An interrupted run: it stopped at step 40 (last checkpoint) after logging up to 45.
    run_experiment({**BASE, "steps": 45}, tmp_path / "part")
    assert checkpoints(tmp_path / "part") == [20, 40, 45]
    (tmp_path / "part" / "checkpoints" / "step_00000045.pt").unlink()
    run_experiment(BASE, tmp_path / "part")
    assert read_metrics(tmp_path / "part") == read_metrics(tmp_path / "full")


def test_resume_refuses_another_config(tmp_path):
    run_experiment(BASE, tmp_path / "r")
    with pytest.raises(ValueError, match="different config"):
        run_experiment({**BASE, "lr": 0.1}, tmp_path / "r")


def test_divergence_is_recorded_with_metrics_kept(tmp_path):
    # SimGD on a bilinear game grows by sqrt(1 + lr²σ²) per step: with lr=3, σ≈1 it
    # passes diverge_above=1e6 within tens of steps.
    cfg = {**BASE, "optimizer": "simgd", "lr": 3.0, "steps": 1000, "log_every": 1,
           "diverge_above": 1e6, "game_args": {"dim": 2, "smin": 1.0, "smax": 1.0}}
    status = run_experiment(cfg, tmp_path / "r")
    assert status["status"] == "diverged"
    assert status["reason"].startswith(f"diverged at step {status['step']}")
    rows = read_metrics(tmp_path / "r")
    assert rows[-1]["step"] == status["step"] and rows[-1]["distance"] > 1e6
    assert rows[-2]["distance"] <= 1e6
    # The rate is the closed form: distance grows by sqrt(1 + 9) per step.
    assert rows[-1]["distance"] / rows[-2]["distance"] == pytest.approx(math.sqrt(10), rel=1e-9)
    assert read_status(tmp_path / "r") == status


def test_nan_stops_with_a_status(tmp_path):
    cfg = {**BASE, "optimizer": "simgd", "lr": 1e200, "steps": 50, "log_every": 10,
           "diverge_above": float("inf")}
    status = run_experiment(cfg, tmp_path / "r")
    assert status["status"] == "diverged" and "non-finite" in status["reason"]
    assert read_metrics(tmp_path / "r")[0]["step"] == 0


@pytest.mark.parametrize("bad,match", [({"lr": 0.0}, "lr: expected"), ({"lr": -1.0}, "lr: expected"),
                                       ({"steps": 0}, "steps: expected"), ({"bogus": 1}, "unknown keys"),
                                       ({"optimizer": "nope"}, "optimizer: expected one of")])
def test_bad_config(tmp_path, bad, match):
    with pytest.raises(ValueError, match=match):
        run_experiment({**BASE, **bad}, tmp_path / "r")


def test_cli_run_and_plot(tmp_path, capsys):
    out = tmp_path / "eg"
    assert cli(["run", "quadratic", "--optimizer", "optimistic", "--lr", "0.1", "--steps", "30",
                "--game-arg", "dim=2", "--out", str(out)]) == 0
    rows = read_metrics(out)
    assert rows[-1]["step"] == 30 and rows[-1]["distance"] < rows[0]["distance"]
    png = tmp_path / "d.png"
    assert cli(["plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli(["run", "bilinear", "--optimizer", "simgd", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    assert "lr: expected" in capsys.readouterr().err


def test_config_roundtrip():
    cfg = configs.with_defaults({**BASE, "lookahead": {"k": 5, "alpha": 0.5},
                                 "optimizer_args": {"base": "adam", "betas": [0.5, 0.9]}})
    import tomllib
    assert tomllib.loads(configs.dumps(cfg)) == cfg


def test_cli_default_directories_tell_configs_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = ["run", "bilinear", "--optimizer", "simgd", "--lr", "0.1", "--steps", "5"]
    assert cli(common) == 0
    assert cli(common + ["--lookahead", "5"]) == 0
    assert cli(common + ["--base", "adam"]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [
        "bilinear-simgd-adam-lr0.1-seed0", "bilinear-simgd-lookahead5-lr0.1-seed0", "bilinear-simgd-lr0.1-seed0"]


@pytest.mark.parametrize("optimizer,args,players", [
    ("hgd", {}, {}),
    ("acgd", {"zero_sum": True}, {}),
    ("unrolled", {"unroll_steps": 2, "base": "adam"}, {"y": {"weight_decay": 0.01}}),
    ("unrolled", {"unroll_steps": 2, "base": "adam", "unroll_base": "adam", "amsgrad": True},
     {"y": {"weight_decay": 0.01}}),
    ("extragradient-past", {"base": "adam", "past": "gradient", "amsgrad": True}, {}),
    ("extragradient", {"extrapolation_steps": 2}, {"y": {"constraint": {"ball": 0.5}}}),
])
def test_new_optimizers_from_a_config_resume_exactly(tmp_path, optimizer, args, players):
    cfg = {"game": "bilinear", "game_args": {"dim": 2}, "optimizer": optimizer, "lr": 0.05, "steps": 6,
           "log_every": 1, "checkpoint_every": 3, "optimizer_args": args, "players": players,
           "lookahead": {"k": [2, 3], "outer": {"k": 4}}}
    run_experiment(cfg, tmp_path / "a")
    run_experiment({**cfg, "steps": 3}, tmp_path / "b")
    run_experiment(cfg, tmp_path / "b")  # resumed from step 3: every optimizer state round-trips
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    assert read_status(tmp_path / "a")["status"] == "finished"
