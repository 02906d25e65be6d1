"""`gandyn diagnose RUN_DIR [--checkpoint STEP] [-k 20] [--out DIR]`, and `diagnose()`, its Python API.

Loads a checkpoint of a run (the latest by default) and writes to DIR (default
RUN_DIR) `diagnostics.json` and `eigenvalues.png`:

- the differential-Nash / stability report (gandyn.diagnostics.nash),
- how rotational the game is (‖S‖, ‖A‖ of J),
- eigenvalues of J: all of them for games of at most `max_dense` parameters,
  else the k of largest magnitude and the k of smallest real part (Arnoldi),
- for games of at most `max_dense` parameters, the eigenvalues and spectral
  radius of the optimizer's one-step update map (`update_jacobian`).
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from gandyn.diagnostics.decomposition import rotation
from gandyn.diagnostics.eigen import jacobian_eigvals
from gandyn.diagnostics.jacobian import JacobianOperator
from gandyn.diagnostics.nash import nash_report
from gandyn.plots import plot_eigenvalues
from gandyn.diagnostics.update_map import update_jacobian


def _pairs(lam) -> list[list[float]]:
    return [[float(z.real), float(z.imag)] for z in lam]


def _finite(x):
    """JSON has no inf/nan: write them as strings."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x


def diagnose(run_dir, step: int | None = None, k: int = 20, out=None, *, max_dense: int = 1024) -> dict:
    """Diagnostics of a run at checkpoint `step`; writes diagnostics.json and eigenvalues.png
    into `out` (default: the run directory) and returns the JSON's content."""
    from gandyn.train import load_run

    if not (isinstance(k, int) and k >= 1):
        raise ValueError(f"k: expected a positive integer, got {k!r}")
    run = load_run(run_dir, step)
    game = run.game
    out = Path(run_dir) if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    op = JacobianOperator(game)
    n = op.n
    small = n <= max_dense
    result: dict = {"run_dir": str(run_dir), "step": run.step, "game": run.config.get("game"),
                    "optimizer": run.config.get("optimizer"), "lr": run.config.get("lr"), "num_params": n,
                    "player_sizes": op.sizes}
    report = nash_report(op, k=min(k, max(1, n - 2)), max_dense=max_dense)
    result["nash"] = report.to_dict()
    result["rotation"] = rotation(op.dense() if small else op, probes=None if small else 8)
    if small:
        lam = jacobian_eigvals(op.dense())
        result["jacobian_eigvals"] = {"all": _pairs(lam)}
        plotted = result["jacobian_eigvals"]["all"]
    else:
        kk = min(k, n - 2)
        lm = jacobian_eigvals(op, kk, "LM", method="arnoldi")
        sr = jacobian_eigvals(op, kk, "SR", method="arnoldi")
        result["jacobian_eigvals"] = {"largest_magnitude": _pairs(lm), "smallest_real": _pairs(sr)}
        plotted = _pairs(lm) + _pairs(sr)
    result["jacobian_mode"] = op.mode
    update = None
    if small and run.optimizer is not None:
        U = update_jacobian(run.optimizer, game).cpu().double().numpy()
        mu = np.linalg.eigvals(U)
        update = _pairs(mu)
        result["update_map"] = {"state_dim": int(U.shape[0]), "spectral_radius": float(np.abs(mu).max()),
                                "eigvals": update}
    result["seconds"] = time.perf_counter() - t0
    result = _finite(result)
    (out / "diagnostics.json").write_text(json.dumps(result, indent=1))
    plot_eigenvalues(out / "eigenvalues.png", plotted, update,
                     title=f"{result['game']} · {result['optimizer']} · step {run.step}")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gandyn diagnose", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--checkpoint", type=int, metavar="STEP", help="checkpoint step (default: the latest)")
    p.add_argument("-k", type=int, default=20, help="eigenvalues per kind for large games (default 20)")
    p.add_argument("--out", metavar="DIR", help="where to write (default: RUN_DIR)")
    args = p.parse_args(argv)
    if args.k < 1:
        p.error(f"-k: expected a positive integer, got {args.k}")
    if not Path(args.run_dir).is_dir():
        p.error(f"RUN_DIR: {args.run_dir} is not a directory")
    result = diagnose(args.run_dir, args.checkpoint, args.k, args.out)
    nash = result["nash"]
    print(f"step {result['step']}: ‖v‖ = {nash['grad_norm']:.3e}, DNE: {nash['is_dne']}, "
          f"locally stable: {nash['locally_stable']}, min Re λ(J) = {nash['jacobian_min_real']:.4g}"
          + (f", update spectral radius = {result['update_map']['spectral_radius']:.6g}"
             if "update_map" in result else ""))
    print(f"wrote {Path(args.out or args.run_dir) / 'diagnostics.json'} and eigenvalues.png")
    return 0
