"""Run directories a user cannot break: one writer at a time (a real second process),
recovery from a damaged checkpoint and a half-written metric line, status after a crash,
checkpoints that unpickle no code."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from gandyn import config as configs
from gandyn.cli import main as cli
from gandyn.run_dir import RunLock, checkpoint_path
from gandyn.train import checkpoints, load_run, read_metrics, read_status, run_experiment

REPO = Path(__file__).resolve().parents[1]
BASE = {"game": "bilinear", "game_args": {"dim": 3}, "optimizer": "extragradient", "lr": 0.2,
        "steps": 30, "log_every": 5, "checkpoint_every": 10}

HOLDER = textwrap.dedent("""
    import sys, time
    from gandyn.run_dir import RunLock
    with RunLock(sys.argv[1]):
        print("locked", flush=True)
        time.sleep(120)
""")


def _holder(run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run_dir)], stdout=subprocess.PIPE,
                            env=env, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_is_refused_naming_the_holder_and_a_killed_holder_blocks_nobody(tmp_path):
    d = tmp_path / "r"
    run_experiment(BASE, d)
    before = (d / "metrics.jsonl").read_text()
    proc = _holder(d)
    try:
        with pytest.raises(ValueError, match=rf"in use by another run \(pid {proc.pid}"):
            run_experiment({**BASE, "steps": 40}, d)
        with pytest.raises(ValueError, match=rf"pid {proc.pid}"):
            run_experiment(BASE, d, resume=False)
        assert (d / "metrics.jsonl").read_text() == before  # nothing written, nothing lost
        assert read_status(d) == {"status": "finished", "step": 30}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # The killed holder's lock file (its pid inside) stays; the lock itself died with it.
    assert (d / "run.lock").read_text().strip() == str(proc.pid)
    assert run_experiment({**BASE, "steps": 40}, d) == {"status": "finished", "step": 40}


def test_the_lock_holds_the_pid_and_is_exclusive_within_a_process_too(tmp_path):
    with RunLock(tmp_path) as lock:
        assert lock.path.read_text().strip() == str(os.getpid())
        with pytest.raises(ValueError, match=f"pid {os.getpid()}"):
            with RunLock(tmp_path):
                pass
    with RunLock(tmp_path):  # released at the end of the block
        pass


def _damage(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_checkpoint_and_partial_metric_line_resume_to_the_uninterrupted_stream(tmp_path):
    run_experiment(BASE, tmp_path / "full")
    part = tmp_path / "part"
    run_experiment({**BASE, "steps": 25}, part)  # killed after step 25: checkpoints 10, 20, 25
    _damage(checkpoint_path(part, 25))
    with open(part / "metrics.jsonl", "a") as f:
        f.write('{"step": 30, "grad_norm": 0.12')  # a write the kill cut short
    with pytest.warns(RuntimeWarning, match=r"step_00000025\.pt is damaged"):
        assert run_experiment(BASE, part) == {"status": "finished", "step": 30}
    assert read_metrics(part) == read_metrics(tmp_path / "full")
    # the damaged file is kept aside, not deleted, and no longer counts as a checkpoint
    assert (part / "checkpoints" / "step_00000025.pt.damaged").stat().st_size > 0
    assert checkpoints(part) == [10, 20, 30]
    a, b = load_run(part), load_run(tmp_path / "full")
    assert all(torch.equal(x, y) for xs, ys in zip(a.game.players, b.game.players) for x, y in zip(xs, ys))


def test_every_checkpoint_damaged_is_a_clear_error(tmp_path):
    run_experiment({**BASE, "steps": 10}, tmp_path)
    _damage(checkpoint_path(tmp_path, 10))
    with pytest.warns(RuntimeWarning), pytest.raises(FileNotFoundError, match="no intact checkpoint"):
        load_run(tmp_path)


def test_a_damaged_checkpoint_asked_for_by_step_is_named(tmp_path):
    run_experiment({**BASE, "steps": 20}, tmp_path)
    _damage(checkpoint_path(tmp_path, 10))
    with pytest.raises(ValueError, match=r"step_00000010\.pt is damaged"):
        load_run(tmp_path, 10)
    assert load_run(tmp_path).step == 20


def test_a_corrupt_metric_line_in_the_middle_names_file_and_line(tmp_path):
    run_experiment({**BASE, "steps": 10}, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:10]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl:2: not a JSON line"):
        read_metrics(tmp_path)


class _Boom(RuntimeError):
    pass


def test_status_records_a_failure_and_advances_at_each_checkpoint(tmp_path, monkeypatch):
    import gandyn.train as train

    seen = []
    save = train.save_checkpoint

    def save_then_look(run_dir, step, game, opt):
        path = save(run_dir, step, game, opt)
        seen.append(step)
        if step == 20:
            raise _Boom("disk full")
        return path

    monkeypatch.setattr(train, "save_checkpoint", save_then_look)
    statuses = []
    write = train._write_json
    monkeypatch.setattr(train, "_write_json", lambda p, o: (statuses.append(dict(o)), write(p, o)))
    with pytest.raises(_Boom):
        run_experiment(BASE, tmp_path)
    assert seen == [10, 20]
    assert statuses[:2] == [{"status": "running", "step": 0}, {"status": "running", "step": 10}]
    assert read_status(tmp_path) == {"status": "failed", "step": 20,
                                     "reason": "failed at step 20: _Boom: disk full"}


def test_fewer_steps_than_a_finished_run_says_what_it_is(tmp_path):
    run_experiment(BASE, tmp_path)
    status = run_experiment({**BASE, "steps": 5}, tmp_path)
    assert status["step"] == 30 and "finished at step 30 already" in status["reason"]
    assert "steps = 5" in status["reason"] and "nothing was run" in status["reason"]
    assert configs.load(tmp_path / "config.toml")["steps"] == 30  # config.toml not rewritten
    assert read_status(tmp_path) == {"status": "finished", "step": 30}


def test_different_config_error_names_the_cli_flag(tmp_path):
    run_experiment(BASE, tmp_path)
    with pytest.raises(ValueError, match="--fresh"):
        run_experiment({**BASE, "lr": 0.1}, tmp_path)


class _Marker:
    """Unpickling this would create a file: weights_only loading must never do it."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_checkpoints_unpickle_no_code(tmp_path):
    run_experiment({**BASE, "steps": 20}, tmp_path)
    marker = tmp_path / "code_ran"
    state = torch.load(checkpoint_path(tmp_path, 20), weights_only=True)
    state["evil"] = _Marker(marker)
    torch.save(state, checkpoint_path(tmp_path, 20))
    with pytest.warns(RuntimeWarning, match="damaged"):
        run = load_run(tmp_path)
    assert run.step == 10 and not marker.exists()


def test_gan_checkpoints_load_weights_only(tmp_path):
    cfg = {"game": "gan", "optimizer": "extragradient", "lr": 1e-3, "steps": 2, "checkpoint_every": 1,
           "optimizer_args": {"base": "adam"}, "lookahead": {"k": 2, "alpha": 0.5},
           "game_args": {"data": "ring", "batch_size": 8, "ema": 0.9, "penalty": "r1",
                         "model_args": {"hidden": 8, "depth": 1}}}
    run_experiment(cfg, tmp_path)
    state = torch.load(checkpoint_path(tmp_path, 2), weights_only=True)
    assert state["optimizer"]["inner"]["param_groups"][0]["base"] == "adam"
    assert load_run(tmp_path).step == 2


def test_cli_refuses_a_locked_directory_with_exit_2(tmp_path, capsys):
    d = tmp_path / "r"
    proc = _holder(d)
    try:
        assert cli(["run", "bilinear", "--steps", "3", "--out", str(d)]) == 2
        assert f"pid {proc.pid}" in capsys.readouterr().err
    finally:
        proc.kill()
        proc.wait()
    assert not (d / "metrics.jsonl").exists()
