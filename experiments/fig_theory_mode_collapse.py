"""Figure: mode collapse made visible on the 8-Gaussian ring (gandyn run, game "gan", data "ring").

MLP G and D (128 units), non-saturating loss, simultaneous Adam (simgd) against Extra-Adam
(extragradient), lr 1e-3, batch 128. For the simgd run, G's samples over D's decision surface
D(x) = σ(logit) at its checkpoints: G gathers on a few modes, D pushes it off them, and G hops;
right: the modes covered (PacGAN's protocol: 2,500 samples, within 3σ) against steps for both
optimizers, from the runs' metrics.jsonl. Writes runs under RUNS and figures/theory_mode_collapse.png.
"""
from pathlib import Path

import numpy as np
import torch

from gandyn.plots import figure_parser, plt, save_figure
from gandyn.train import checkpoints, load_run, read_metrics, run_experiment

BASE = {"game": "gan", "lr": 1e-3, "seed": 0, "log_every": 100, "eval_every": 250, "checkpoint_every": 500,
        "game_args": {"data": "ring", "model": "mlp", "model_args": {"hidden": 128},
                      "loss": "non-saturating", "batch_size": 128},
        "optimizer_args": {"base": "adam", "betas": [0.5, 0.999]}}
OPTIMIZERS = ("simgd", "extragradient")
SHOWN = "simgd"


def run_all(runs: Path, steps: int) -> dict:
    dirs = {}
    for opt in OPTIMIZERS:
        dirs[opt] = runs / opt
        status = run_experiment({**BASE, "optimizer": opt, "steps": steps}, dirs[opt], resume=False)
        covered = [r["modes_covered"] for r in read_metrics(dirs[opt]) if "modes_covered" in r]
        print(f"{opt}: {status['status']}, modes covered at the evaluations: {covered}")
    return dirs


def snapshot(run_dir: Path, step: int, grid: torch.Tensor):
    run = load_run(run_dir, step)
    game = run.game
    with torch.no_grad(), game.preserved():
        x = game.generate(game.latents(1000, torch.Generator().manual_seed(0)))
        d = torch.sigmoid(game.discriminate(grid))
    return x.numpy(), d.numpy(), game.evaluator.data.modes.numpy()


def draw(dirs: dict, out: Path, fmt: str) -> Path:
    steps = checkpoints(dirs[SHOWN])[-6:]
    fig, axes = plt.subplots(1, len(steps) + 1, figsize=(2.7 * len(steps) + 4, 3.2),
                             gridspec_kw={"width_ratios": [1] * len(steps) + [1.5]})
    t = np.linspace(-1.6, 1.6, 121)
    gx, gy = np.meshgrid(t, t)
    grid = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
    for ax, step in zip(axes, steps):
        x, d, modes = snapshot(dirs[SHOWN], step, grid)
        cs = ax.contourf(gx, gy, d.reshape(gx.shape), levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
        ax.scatter(x[:, 0], x[:, 1], s=1, color="k", alpha=0.5)
        ax.scatter(modes[:, 0], modes[:, 1], marker="x", s=25, color="gold")
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{SHOWN}, step {step}", fontsize=9)
    fig.colorbar(cs, ax=axes[len(steps) - 1], fraction=0.046, pad=0.02, label="D(x)")
    ax = axes[-1]
    for opt, d in dirs.items():
        rows = [r for r in read_metrics(d) if "modes_covered" in r]
        ax.plot([r["step"] for r in rows], [r["modes_covered"] for r in rows], "o-", ms=3, label=opt + "/adam")
    ax.set_ylim(-0.3, 8.3)
    ax.set_xlabel("step")
    ax.set_ylabel("modes covered (of 8)")
    ax.legend(fontsize=7)
    return save_figure(fig, out / "theory_mode_collapse.png", fmt)


if __name__ == "__main__":
    torch.set_num_threads(1)  # small MLPs: more threads only add overhead
    args = figure_parser(__doc__, runs="runs/theory_mode_collapse").parse_args()
    dirs = run_all(Path(args.runs), 1500 if args.fast else 3000)
    print(draw(dirs, Path(args.figures), args.format))
