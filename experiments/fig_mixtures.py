"""Figure 5: mixtures of Gaussians over training — the consensus figure of Mescheder et al. 2017
(The Numerics of GANs, Fig. 5) and the unrolled figure of Metz et al. 2017 (Unrolled GANs, Fig. 1).

On the 8-Gaussian ring (radius 1, σ = 0.01) and the 25-Gaussian grid ({−4, …, 4}², σ = 0.05),
one shared setting per dataset: MLP G and D (3 hidden layers of 128 units), non-saturating
loss, batch 128, lr 1e-3, Adam β = (0.5, 0.999), for SimGD-Adam, Consensus-Adam (γ = 1),
Extra-Adam and the unrolled GAN (5 unrolled steps of D's own Adam update, from copies of its
moments, as Metz et al.'s reference code unrolls; unroll_base = "adam"). Rows: optimizers;
columns: G's samples at checkpoints (the evaluator's 2,500 fixed latents, so each panel is
exactly the sample set that the modes-covered curve counts at that step), true modes as +;
bottom: PacGAN's modes covered (2,500 samples, within 3σ) against steps. Writes the runs
and RUNS/results.json (every evaluation's modes covered, high-quality fraction and reverse
KL; the panels' samples in RUNS/samples.npz), from which `--redraw` draws the figures again;
`--only KEY ...` runs those optimizers again and keeps the others' results from RUNS.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from gandyn.plots import STYLES, figure_parser, legend_outside, plt, save_figure, style
from gandyn.train import load_run, read_metrics, run_experiment

BASE = {"game": "gan", "lr": 1e-3, "seed": 0, "log_every": 100,
        "game_args": {"model": "mlp", "model_args": {"hidden": 128}, "loss": "non-saturating",
                      "batch_size": 128},
        "optimizer_args": {"base": "adam", "betas": [0.5, 0.999]}}
# STYLES key -> (optimizer, its options beyond the Adam base).
OPTIMIZERS = {
    "adam": ("simgd", {}),
    "consensus-adam": ("consensus", {"gamma": 1.0}),
    "extra-adam": ("extragradient", {}),
    "unrolled": ("unrolled", {"unroll_steps": 5, "unroll_base": "adam"}),
}
LABELS = {"adam": "SimGD-Adam", "consensus-adam": "Consensus-Adam (γ = 1)", "unrolled": "unrolled GAN (5 Adam steps)"}
DATASETS = {"ring": (1.5, [-1, 0, 1]), "grid": (5.5, [-4, -2, 0, 2, 4])}   # data -> panels' half-width, ticks
COLUMNS = 5                             # checkpoints drawn per run, equally spaced


def label(key: str) -> str:
    return LABELS.get(key, STYLES[key][0])


def config(data: str, key: str, steps: int, eval_every: int, seed: int = 0) -> dict:
    name, extra = OPTIMIZERS[key]
    if steps % COLUMNS or (steps // COLUMNS) % eval_every:
        raise ValueError(f"steps, eval_every: the {COLUMNS} panels' steps (multiples of steps / {COLUMNS}) must be "
                         f"evaluated; got steps = {steps}, eval_every = {eval_every}")
    return {**BASE, "optimizer": name, "steps": steps, "seed": seed, "eval_every": eval_every,
            "checkpoint_every": steps // COLUMNS,
            "game_args": {**BASE["game_args"], "data": data},
            "optimizer_args": {**BASE["optimizer_args"], **extra}}


def run_all(runs: Path, data: str, steps: int, eval_every: int, keys=tuple(OPTIMIZERS), seed: int = 0) -> dict:
    """Run each optimizer on `data`; {STYLES key: run directory}."""
    dirs = {}
    for key in keys:
        dirs[key] = runs / data / key
        status = run_experiment(config(data, key, steps, eval_every, seed), dirs[key], resume=False)
        print(f"{data} {label(key)}: {status.get('reason', status['status'])}, modes covered "
              f"{[r['modes_covered'] for r in evaluations(dirs[key])]}", flush=True)
    return dirs


def evaluations(run_dir) -> list[dict]:
    """The run's evaluations: step, modes covered, high-quality fraction, reverse KL (None
    where no sample is high quality: PacGAN's KL is undefined there)."""
    return [{"step": r["step"], "modes_covered": r["modes_covered"], "high_quality": r["high_quality"],
             "reverse_kl": r["reverse_kl"] if math.isfinite(r["reverse_kl"]) else None}
            for r in read_metrics(run_dir) if "modes_covered" in r]


def panel_samples(run_dir, step: int) -> tuple[np.ndarray, np.ndarray, float]:
    """G's samples at checkpoint `step` from the evaluator's fixed latents (the set its
    metrics count), the true modes and σ."""
    game = load_run(run_dir, step).game
    with game.preserved():
        x = game.evaluator.samples(game)
    data = game.evaluator.data
    return x.numpy(), data.modes.numpy(), data.sigma


def collect(dirs: dict, data: str, steps: int) -> tuple[dict, dict]:
    """(the results entry of `data`, {"data/key/step": samples}) from the runs."""
    shown = [steps * (i + 1) // COLUMNS for i in range(COLUMNS)]
    entry, samples = {"runs": {}, "panel_steps": shown}, {}
    for key, d in dirs.items():
        name, extra = OPTIMIZERS[key]
        entry["runs"][key] = {"dir": str(d), "optimizer": name, "options": extra, "evaluations": evaluations(d)}
        for step in shown:
            x, modes, sigma = panel_samples(d, step)
            samples[f"{data}/{key}/{step}"] = x
    entry["modes"], entry["sigma"] = modes.tolist(), sigma
    return entry, samples


def draw(entry: dict, samples, data: str, out: Path, fmt: str) -> Path:
    keys, shown = list(entry["runs"]), entry["panel_steps"]
    modes, (lim, ticks) = np.array(entry["modes"]), DATASETS[data]
    fig = plt.figure(figsize=(2.0 * len(shown) + 1.2, 2.0 * len(keys) + 2.8))
    grid = fig.add_gridspec(len(keys) + 1, len(shown), height_ratios=[1] * len(keys) + [1.25])
    for i, key in enumerate(keys):
        color = STYLES[key][1]
        logged = {r["step"]: r for r in entry["runs"][key]["evaluations"]}
        for j, step in enumerate(shown):
            ax = fig.add_subplot(grid[i, j])
            x = samples[f"{data}/{key}/{step}"]
            # samples over the modes' markers: a G collapsed onto one mode must not hide under its +
            ax.scatter(modes[:, 0], modes[:, 1], marker="+", s=22, color="k", lw=0.8, zorder=1)
            ax.scatter(x[:, 0], x[:, 1], s=1.0, color=color, alpha=0.35, lw=0, rasterized=True, zorder=2)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            # the count, since a G collapsed onto a single mode is a dot hard to see
            ax.text(0.03, 0.97, f"{logged[step]['modes_covered']}/{len(modes)}", transform=ax.transAxes,
                    ha="left", va="top", fontsize=6.5, bbox={"fc": "w", "ec": "none", "alpha": 0.8, "pad": 1})
            ax.set_aspect("equal")
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.tick_params(labelsize=6, length=2)
            if j:
                ax.set_yticklabels([])
            else:
                ax.set_ylabel(label(key), color=color, fontsize=8.5, fontweight="bold")
            if i < len(keys) - 1:
                ax.set_xticklabels([])
            if i == 0:
                ax.set_title(f"step {step}", fontsize=9)
    ax = fig.add_subplot(grid[-1, :])
    k = len(modes)
    for key in keys:
        rows = entry["runs"][key]["evaluations"]
        ax.plot([r["step"] for r in rows], [r["modes_covered"] for r in rows], **{**style(key), "label": label(key)})
    ax.axhline(k, color="0.6", lw=0.8, ls=":", zorder=0)
    ax.set_ylim(-0.04 * k, 1.06 * k)
    ax.set_xlim(0, shown[-1])
    ax.set_xlabel("step")
    ax.set_ylabel(f"modes covered (of {k})")
    ax.grid(True, alpha=0.3)
    legend_outside(ax, fontsize=8)
    name = {"ring": "8 Gaussians on a ring", "grid": "25 Gaussians on a grid"}[data]
    fig.suptitle(f"{name}: G's samples over training (2,500 fixed latents; + true modes; "
                 "corner: modes covered)", fontsize=10)
    return save_figure(fig, out / f"mixtures_{data}.png", fmt, rect=(0, 0, 1, 0.98))


def _saved(runs: Path, steps: int, eval_every: int) -> tuple[dict, dict]:
    """RUNS/results.json and samples.npz of an earlier run of this script at the same length."""
    if not (runs / "results.json").exists() or not (runs / "samples.npz").exists():
        raise SystemExit(f"--only: reuses the other runs from {runs}/results.json and samples.npz, "
                         "which do not exist; run the script without --only first")
    results = json.loads((runs / "results.json").read_text())
    if (results["steps"], results["eval_every"]) != (steps, eval_every):
        raise SystemExit(f"--only: {runs}/results.json holds {results['steps']} steps evaluated every "
                         f"{results['eval_every']}, not {steps} and {eval_every} (--fast or not, as it was run)")
    return results, dict(np.load(runs / "samples.npz"))


def main(runs: Path, figures: Path, fast: bool, fmt: str, redraw: bool, only: tuple[str, ...] = ()) -> None:
    steps, eval_every = (250, 25) if fast else (3000, 100)
    if not redraw:
        if only:  # run these optimizers again; every other run's results are kept from RUNS
            results, samples = _saved(runs, steps, eval_every)
        else:
            results, samples = {"steps": steps, "eval_every": eval_every, "base": BASE}, {}
        for data in DATASETS:
            entry, s = collect(run_all(runs, data, steps, eval_every, keys=only or tuple(OPTIMIZERS)), data, steps)
            if only:
                results[data]["runs"].update(entry["runs"])
            else:
                results[data] = entry
            samples.update(s)
        runs.mkdir(parents=True, exist_ok=True)
        (runs / "results.json").write_text(json.dumps(results, indent=1))
        np.savez_compressed(runs / "samples.npz", **samples)
    results = json.loads((runs / "results.json").read_text())
    samples = np.load(runs / "samples.npz")
    for data in DATASETS:
        print(draw(results[data], samples, data, figures, fmt))


if __name__ == "__main__":
    torch.set_num_threads(1)  # small MLPs: more threads only add overhead
    p = figure_parser(__doc__, runs="runs/fig_mixtures")
    p.add_argument("--redraw", action="store_true", help="draw from RUNS/results.json and samples.npz only")
    p.add_argument("--only", nargs="+", choices=list(OPTIMIZERS), default=(), metavar="KEY",
                   help=f"run only these of {list(OPTIMIZERS)} again, keeping the others' results from RUNS")
    a = p.parse_args()
    main(Path(a.runs), Path(a.figures), a.fast, a.format, a.redraw, tuple(a.only))
