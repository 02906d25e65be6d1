"""GAN runs from a config: metrics and samples in the run directory, determinism, logging
that does not perturb training, a real kill mid-run resumed exactly, divergence, per-player
options, and the sample / eval commands."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from gandyn.cli import main as cli
from gandyn.train import checkpoints, load_run, read_metrics, read_status, run_experiment

REPO = Path(__file__).resolve().parents[1]

RING = {"game": "gan", "optimizer": "extragradient", "lr": 1e-3, "steps": 40, "log_every": 5,
        "eval_every": 20, "checkpoint_every": 10,
        "game_args": {"data": "ring", "model": "mlp", "batch_size": 32, "model_args": {"hidden": 32},
                      "penalty": "r1", "penalty_weight": 0.1, "ema": 0.9, "eval_samples": 200},
        "optimizer_args": {"base": "adam", "betas": [0.5, 0.99]}, "players": {"D": {"lr": 2e-3}}}

DIGITS = {"game": "gan", "optimizer": "simgd", "lr": 2e-4, "steps": 8, "log_every": 2, "eval_every": 4,
          "checkpoint_every": 4,
          "game_args": {"data": "digits", "model": "dcgan", "batch_size": 16, "eval_samples": 100,
                        "model_args": {"width": 8, "latent_dim": 16}, "d_args": {"spectral_norm": True}},
          "optimizer_args": {"base": "adam", "betas": [0.5, 0.999]}}


def _params(run_dir):
    run = load_run(run_dir)
    return [p.detach().clone() for p in run.game.params()], run


def test_ring_run_logs_losses_stats_and_mode_metrics(tmp_path):
    assert run_experiment(RING, tmp_path / "r") == {"status": "finished", "step": 40}
    rows = read_metrics(tmp_path / "r")
    assert [r["step"] for r in rows] == list(range(0, 41, 5))
    for r in rows:
        assert {"grad_norm", "losses", "d_real", "d_fake", "penalty", "grad_evals"} <= set(r)
        assert r["grad_evals"] == 2 * r["step"]  # extragradient
    evals = [r for r in rows if "modes_covered" in r]
    assert [r["step"] for r in evals] == [0, 20, 40]
    assert all(0 <= r["modes_covered"] <= 8 and 0 <= r["high_quality"] <= 1 and r["ema"] for r in evals)
    assert sorted(p.name for p in (tmp_path / "r" / "samples").iterdir()) == [
        "step_00000000.png", "step_00000020.png", "step_00000040.png"]
    run = load_run(tmp_path / "r")
    lrs = [g["lr"] for g in run.optimizer.param_groups]
    assert lrs == [1e-3, 2e-3]  # [players.D] lr


def test_same_config_same_metrics_and_logging_does_not_perturb(tmp_path):
    run_experiment(DIGITS, tmp_path / "a")
    run_experiment(DIGITS, tmp_path / "b")
    assert read_metrics(tmp_path / "a") == read_metrics(tmp_path / "b")
    # log and evaluate at other steps: batch norm, spectral-norm vectors, RNG streams are
    # put back after each, so the trajectory is the same to the bit
    run_experiment({**DIGITS, "log_every": 3, "eval_every": 1}, tmp_path / "c")
    pa, ra = _params(tmp_path / "a")
    pc, rc = _params(tmp_path / "c")
    assert all(torch.equal(a, c) for a, c in zip(pa, pc))
    for (ka, a), (kc, c) in zip(ra.game.D.state_dict().items(), rc.game.D.state_dict().items()):
        assert ka == kc and torch.equal(a, c), ka
    fid = [r["fid"] for r in read_metrics(tmp_path / "a") if "fid" in r]
    assert len(fid) == 3 and all(f > 0 for f in fid)


def test_killed_run_resumes_with_identical_metrics(tmp_path):
    cfg = {**RING, "steps": 200, "checkpoint_every": 25, "eval_every": 50}
    run_experiment(cfg, tmp_path / "full")
    cfg_path = tmp_path / "ring.toml"
    from gandyn import config as configs
    cfg_path.write_text(configs.dumps(configs.with_defaults(cfg)))
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gandyn", "run", str(cfg_path), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(checkpoints(out)) < 2 and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # mid-run, at whatever point of a step it is
    proc.wait()
    assert 2 <= len(checkpoints(out)) < 8, checkpoints(out)
    assert read_status(out)["status"] == "running"
    subprocess.run(cmd, env=env, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    assert read_metrics(out) == read_metrics(tmp_path / "full")
    assert read_status(out) == {"status": "finished", "step": 200}


def test_diverging_gan_stops_with_its_status(tmp_path):
    cfg = {**RING, "optimizer": "simgd", "lr": 1e30, "optimizer_args": {}, "players": {}, "steps": 30}
    status = run_experiment(cfg, tmp_path / "r")
    assert status["status"] == "diverged", status
    rows = read_metrics(tmp_path / "r")
    assert rows[0]["step"] == 0 and read_status(tmp_path / "r") == status


def test_cli_config_overrides_sample_and_eval(tmp_path):
    out = tmp_path / "r"
    assert cli(["run", str(REPO / "experiments" / "ring.toml"), "steps=6", "log_every=3", "eval_every=6",
                "checkpoint_every=3", "game_args.model=mlp", "game_args.eval_samples=100",
                "players.D.lr=3e-4", "--out", str(out)]) == 0
    cfg = load_run(out).config
    assert cfg["steps"] == 6 and cfg["players"] == {"D": {"lr": 3e-4}} and cfg["game_args"]["model"] == "mlp"
    assert cli(["sample", str(out), "-n", "50", "--out", str(tmp_path / "s.npy")]) == 0
    x = np.load(tmp_path / "s.npy")
    assert x.shape == (50, 2) and np.isfinite(x).all()
    assert cli(["sample", str(out), "--checkpoint", "3", "-n", "20", "--out", str(tmp_path / "s.png")]) == 0
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert cli(["eval", str(out), "--out", str(tmp_path / "e.json")]) == 0
    row = json.loads((tmp_path / "e.json").read_text())
    logged = [r for r in read_metrics(out) if r["step"] == 6][0]
    # eval of the last checkpoint reproduces the metrics the run logged there
    assert row["step"] == 6 and row["modes_covered"] == logged["modes_covered"]
    assert row["high_quality"] == pytest.approx(logged["high_quality"])
    assert cli(["sample", str(out), "--ema", "-n", "5", "--out", str(tmp_path / "x.npy")]) == 2


def test_tensorboard_events_and_bad_player_names(tmp_path):
    run_experiment({**RING, "steps": 5, "tensorboard": True}, tmp_path / "r")
    assert any((tmp_path / "r" / "tensorboard").iterdir())
    with pytest.raises(ValueError, match="players.X: no such player"):
        run_experiment({**RING, "players": {"X": {"lr": 1.0}}}, tmp_path / "q")
    with pytest.raises(ValueError, match="optimizer_args.lr"):
        run_experiment({**RING, "optimizer_args": {"lr": 1.0}}, tmp_path / "q")


def test_sample_and_eval_at_the_averaged_iterate(tmp_path):
    out = tmp_path / "r"
    assert cli(["run", str(REPO / "experiments" / "ring.toml"), "steps=4", "log_every=2", "checkpoint_every=4",
                "game_args.model=mlp", "game_args.eval_samples=100", "--average", "uniform",
                "--out", str(out)]) == 0
    assert "average" in read_metrics(out)[-1]
    assert cli(["sample", str(out), "--average", "-n", "30", "--out", str(tmp_path / "a.npy")]) == 0
    assert cli(["sample", str(out), "-n", "30", "--out", str(tmp_path / "l.npy")]) == 0
    run = load_run(out)
    ev = run.game.evaluator
    ev.num_samples, ev._fixed = 30, None
    with run.optimizer.swapped(), run.game.preserved():
        ref = ev.samples(run.game, ema=False).cpu().numpy()
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), ref)
    assert not np.array_equal(np.load(tmp_path / "l.npy"), ref)
    assert cli(["eval", str(out), "--average", "--out", str(tmp_path / "e.json")]) == 0
    assert json.loads((tmp_path / "e.json").read_text())["average"] is True
    assert cli(["sample", str(out), "--average", "--ema", "-n", "5", "--out", str(tmp_path / "x.npy")]) == 2
