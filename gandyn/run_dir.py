"""What keeps a run directory whole: one writer at a time, and recovery from damage.

- `RunLock(run_dir)`: an exclusive `fcntl.flock` on RUN_DIR/run.lock, held for the
  life of a run, with the holder's pid written in the file. A second run into the
  directory is refused naming that pid. The kernel drops a flock when its process
  dies, so the file a killed run leaves behind blocks nobody.
- `load_checkpoint(run_dir)`: the newest checkpoint that loads. A damaged one (a
  truncated write, a disk error) is moved aside to `step_XXXXXXXX.pt.damaged` (kept,
  not deleted) with a warning naming it, and the next older one is tried.
- `read_metric_lines(path)`: the rows of metrics.jsonl. A half-written last line (a
  run killed mid-write) is dropped; any other line that is not JSON is an error
  naming the file and the line.

Checkpoints are loaded with `weights_only=True`: they hold only tensors, numbers,
strings and containers of them, and unpickling a shared file runs no code.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import warnings
from pathlib import Path

import torch

CHECKPOINT = re.compile(r"step_(\d{8})\.pt$")
LOCK_FILE = "run.lock"


class RunDirLocked(ValueError):
    """Another process holds the run directory."""


class RunLock:
    """`with RunLock(run_dir):` — the directory is this process's until the block ends."""

    def __init__(self, run_dir):
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def __enter__(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirLocked(f"out_dir: {self.path.parent} is in use by another run (pid {holder}, "
                               f"holding {self.path}); wait for it or choose another directory") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def checkpoint_path(run_dir, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:08d}.pt"


def checkpoints(run_dir) -> list[int]:
    """Steps of the checkpoints in run_dir, ascending (those moved aside not included)."""
    d = Path(run_dir) / "checkpoints"
    return sorted(int(m.group(1)) for p in d.glob("step_*.pt") if (m := CHECKPOINT.search(p.name)))


def _read(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or not {"step", "game", "optimizer", "rng"} <= set(state):
        raise ValueError("not a gandyn checkpoint (expected the keys step, game, optimizer, rng)")
    return state


def load_checkpoint(run_dir, step: int | None = None) -> dict:
    """The checkpoint at `step`, or by default the newest intact one (damaged newer ones are
    moved aside with a warning). A damaged checkpoint asked for by its step is an error."""
    steps = checkpoints(run_dir)
    if not steps:
        raise FileNotFoundError(f"run_dir: {run_dir} has no checkpoints")
    if step is not None:
        if step not in steps:
            raise ValueError(f"step: no checkpoint at step {step} in {run_dir}; available: {steps}")
        path = checkpoint_path(run_dir, step)
        try:
            return _read(path)
        except Exception as e:
            raise ValueError(f"checkpoint {path} is damaged and cannot be loaded: {e}") from None
    for s in reversed(steps):
        path = checkpoint_path(run_dir, s)
        try:
            return _read(path)
        except Exception as e:  # torch raises RuntimeError, EOFError or UnpicklingError on damage
            aside = path.with_name(path.name + ".damaged")
            os.replace(path, aside)
            warnings.warn(f"checkpoint {path} is damaged ({type(e).__name__}: {str(e)[:200]}); moved it to "
                          f"{aside} and fell back to the previous checkpoint", RuntimeWarning, stacklevel=2)
    raise FileNotFoundError(f"run_dir: {run_dir} has no intact checkpoint (the damaged ones were moved "
                            f"aside as *.pt.damaged)")


def read_metric_lines(path) -> list[dict]:
    """The rows of a metrics.jsonl; a half-written last line is dropped."""
    path = Path(path)
    text = path.read_text()
    lines = text.split("\n")
    rows = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines) - 1:  # no newline after it: a write the run did not finish
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON line ({e})") from None
    return rows
