"""Data-parallel runs under torchrun, on the CPU with gloo and 2 processes: the metrics of a
mixture GAN and of a digits GAN (SyncBatchNorm in G, spectral norm in D) under SimGD-Adam,
Extra-Adam, consensus and AltGD with two D steps (and the mixture under CGD, SGA and the unrolled GAN, with a
replay buffer, and with feature matching) equal those of one process with the same global batch, to float
rounding; a resumed 2-process run equals an uninterrupted one and refuses another world
size; a diverging rank and a failing rank stop both, with the status recorded."""
from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gandyn import distributed
from gandyn.train import read_metrics, read_status, run_experiment

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")

RING = {"game": "gan", "lr": 1e-3, "steps": 10, "log_every": 5, "eval_every": 10, "checkpoint_every": 5,
        "game_args": {"data": "ring", "model": "mlp", "batch_size": 32, "model_args": {"hidden": 32},
                      "penalty": "r1", "penalty_weight": 0.1, "ema": 0.9, "eval_samples": 200},
        "optimizer_args": {"base": "adam", "betas": [0.5, 0.99]}}
DIGITS = {"game": "gan", "lr": 2e-4, "steps": 6, "log_every": 3, "eval_every": 6, "checkpoint_every": 6,
          "game_args": {"data": "digits", "model": "dcgan", "batch_size": 16, "eval_samples": 100,
                        "sync_batchnorm": True, "model_args": {"width": 8, "latent_dim": 16},
                        "d_args": {"spectral_norm": True}},
          "optimizer_args": {"base": "adam", "betas": [0.5, 0.999]}}
OPTIMIZERS = {"simgd": {}, "extragradient": {}, "consensus": {"gamma": 0.1},
              # CGD's conjugate gradients on the averaged operator (ring only: its HVPs are many)
              "cgd": {"base": "sgd", "cg_max_iter": 5, "cg_rtol": 1e-3},
              # SGA's Jᵀv and its alignment sign from the averaged products
              "sga": {"lam": 1.0},
              # SNGAN's optimizer: D first, n_dis fresh shards, G's step reusing G(z) (one D call with SN)
              "altgd": {"order": [1, 0], "player_steps": [1, 2]},
              # G differentiates through D's unrolled Adam steps on the global batch's gradient
              "unrolled": {"unroll_steps": 2, "unroll_base": "adam"}}
# D's fakes mixed with a replay buffer and instance noise: k = 8 of the global 32 replayed, so
# rank 1's shard (rows 16–31) holds 8 current and 8 replayed rows, rank 0's none replayed.
RING_REPLAY = {**RING, "game_args": {**RING["game_args"], "replay_buffer": 64, "replay_fraction": 0.25,
                                     "instance_noise": 0.1}}
# G's feature matching: a loss of the global batch's feature means, not linear in them
RING_FM = {**RING, "game_args": {**RING["game_args"], "feature_matching": True}}
BASES = {"ring": RING, "digits": DIGITS, "ring-replay": RING_REPLAY, "ring-fm": RING_FM}
CASES = [(name, opt) for name in ("ring", "digits") for opt in OPTIMIZERS
         if name == "ring" or opt not in ("cgd", "sga", "unrolled")] + \
    [("ring-replay", "simgd"), ("ring-fm", "consensus"), ("ring-fm", "altgd")]


def ckpt_replay(run_dir: Path, step: int) -> int:
    """The replay buffer's count in the run's checkpoint at `step`."""
    return torch.load(run_dir / "checkpoints" / f"step_{step:08d}.pt", weights_only=False)["game"]["replay"]["count"]


def _config(base: dict, optimizer: str, **changes) -> dict:
    return {**base, "optimizer": optimizer, "optimizer_args": {**base["optimizer_args"], **OPTIMIZERS[optimizer]},
            **changes}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(jobs: list[dict], tmp: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the jobs in order on 2 gloo processes launched by torchrun."""
    spec = tmp / f"jobs{_free_port()}.json"
    spec.write_text(json.dumps(jobs))
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(WORKER), str(spec)]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def assert_rows_close(two: list[dict], one: list[dict]) -> None:
    """Equal keys and steps; numbers equal to float32 rounding (relative 1e-5 or absolute 1e-9)."""
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):
        assert a.keys() == b.keys(), (a.keys(), b.keys())
        for key in a:
            x, y = a[key], b[key]
            xs, ys = (x, y) if isinstance(x, list) else ([x], [y])
            for u, v in zip(xs, ys):
                if isinstance(u, float) and isinstance(v, float) and math.isfinite(u):
                    assert u == pytest.approx(v, rel=1e-5, abs=1e-9), (a["step"], key, u, v)
                else:
                    assert u == v, (a["step"], key, u, v)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every 2-process run of the module in one torchrun launch (its start-up dominates)."""
    tmp = tmp_path_factory.mktemp("dist")
    jobs = [{"config": _config(BASES[name], opt), "out": str(tmp / f"{name}-{opt}")}
            for name, opt in CASES]
    # A run stopped at step 5 (its checkpoint) and resumed to 10 in the same directory.
    jobs += [{"config": _config(RING, "extragradient", steps=5), "out": str(tmp / "resumed")},
             {"config": _config(RING, "extragradient"), "out": str(tmp / "resumed")}]
    jobs.append({"config": DIAGNOSED, "out": str(tmp / "diagnosed")})
    jobs.append(FAULTY("nan", tmp / "nan"))  # last: the fault stays injected in the workers
    done = torchrun(jobs, tmp)
    assert done.returncode == 0, done.stderr[-4000:]
    return tmp


@pytest.mark.parametrize("name, optimizer", CASES)
def test_two_processes_train_the_one_process_run(runs, tmp_path, name, optimizer):
    cfg = _config(BASES[name], optimizer)
    run_experiment(cfg, tmp_path / "one")
    two = runs / f"{name}-{optimizer}"
    assert read_status(two) == read_status(tmp_path / "one") == {"status": "finished", "step": cfg["steps"]}
    assert_rows_close(read_metrics(two), read_metrics(tmp_path / "one"))
    assert "fid" in read_metrics(two)[-1] if name == "digits" else "modes_covered" in read_metrics(two)[-1]
    if name == "ring-replay":  # the buffer filled and was mixed in: 10 pushes of 32 into 64 entries
        assert ckpt_replay(two, cfg["steps"]) == 64
    assert sorted(p.name for p in (two / "samples").iterdir()) == \
        sorted(p.name for p in (tmp_path / "one" / "samples").iterdir())
    ckpt = torch.load(two / "checkpoints" / f"step_{cfg['steps']:08d}.pt", weights_only=False)
    assert ckpt["world_size"] == 2


DIAGNOSED = _config(RING, "simgd", diagnostics_every=5)


def test_diagnostics_of_two_processes_are_those_of_the_global_batch(runs, tmp_path):
    """The Jacobian products are averaged over ranks, so the Arnoldi eigenvalues and the
    Hutchinson rotation estimates of 2 processes are those of the one-process global batch."""
    run_experiment(DIAGNOSED, tmp_path / "one")
    two, one = read_metrics(runs / "diagnosed"), read_metrics(tmp_path / "one")
    found = [(a.pop("diagnostics"), b.pop("diagnostics")) for a, b in zip(two, one) if "diagnostics" in b]
    assert len(found) == 2 and all(a.keys() == b.keys() for a, b in found)
    for a, b in found:  # Arnoldi converged to tol 1e-6 from products that differ in rounding
        assert a == pytest.approx(b, rel=1e-4), (a, b)
    assert_rows_close(two, one)


def test_resumed_two_process_run_equals_uninterrupted_and_refuses_one_process(runs):
    resumed, full = read_metrics(runs / "resumed"), read_metrics(runs / "ring-extragradient")
    assert [r["step"] for r in resumed] == [r["step"] for r in full] == [0, 5, 10]
    # The stopped run evaluated at its last step, 5; otherwise the rows are the same, bit for bit.
    assert resumed[0] == full[0] and resumed[2] == full[2]
    assert full[1].items() <= resumed[1].items() and "modes_covered" in resumed[1]
    assert read_status(runs / "resumed") == {"status": "finished", "step": 10}
    with pytest.raises(ValueError, match="written by 2 process.*this run has 1.*--nproc_per_node 2"):
        run_experiment(_config(RING, "extragradient", steps=20), runs / "resumed")


def test_global_batch_not_divisible_by_world_size_is_refused(monkeypatch):
    from gandyn.games.registry import make_game
    monkeypatch.setattr(distributed, "world_size", lambda: 2)  # what a 2-process group reports
    with pytest.raises(ValueError, match=r"batch_size: the global batch 33 must be divisible by the "
                                         r"number of processes \(2\)"):
        make_game("gan", **{**RING["game_args"], "batch_size": 33})


def FAULTY(fault: str, out: Path) -> dict:
    """A 50-step run whose rank 1 goes wrong at its 4th minibatch (step 2; the game draws one at start)."""
    return {"config": _config(RING, "extragradient", steps=50, log_every=1), "out": str(out), "fault": fault, "at": 4}


def test_a_diverging_rank_stops_both_as_diverged(runs):
    # Rank 1's NaN losses reach every rank through the averaged field and losses.
    got = read_status(runs / "nan")
    assert got["status"] == "diverged" and got["step"] == 2 and got["reason"].startswith("diverged at step 2: "), got


def test_a_failing_rank_stops_both_with_its_status(tmp_path):
    start = time.time()
    done = torchrun([FAULTY("raise", tmp_path / "r")], tmp_path, timeout=120)
    assert time.time() - start < 120  # not a hang: both processes are gone
    assert done.returncode != 0
    got = read_status(tmp_path / "r")
    assert got == {"status": "failed", "step": 2,
                   "reason": "rank 1: failed at step 2: RuntimeError: injected failure at minibatch 4"}, got
