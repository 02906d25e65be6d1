"""The flagship experiment: every optimizer on one bilinear game.

min_x max_y xᵀAy + bᵀx + cᵀy with A 4×4, singular values in [0.5, 1.5] and a
non-zero equilibrium. Simultaneous GD spirals out (ρ = √(1 + η²σ²) > 1),
alternating GD cycles, the extrapolation, optimism, consensus, SGA, CGD and
lookahead methods converge at the rates the theory predicts. Draws
<figures>/bilinear_distance.png and <figures>/bilinear_trajectories.png.
"""
from __future__ import annotations

from pathlib import Path

from gandyn.plots import plot_curves, plot_trajectories
from gandyn.train import run_experiment

GAME = {"game": "bilinear", "game_args": {"dim": 4, "smin": 0.5, "smax": 1.5, "offsets": True},
        "lr": 0.2, "steps": 600, "seed": 0, "log_every": 1, "checkpoint_every": 600}

RUNS = {
    "simgd": {"optimizer": "simgd"},
    "altgd": {"optimizer": "altgd"},
    "extragradient": {"optimizer": "extragradient"},
    "extragradient-past": {"optimizer": "extragradient-past"},
    "optimistic": {"optimizer": "optimistic"},
    "consensus": {"optimizer": "consensus", "optimizer_args": {"gamma": 1.0}},
    "sga": {"optimizer": "sga", "optimizer_args": {"lam": 1.0}},
    "cgd": {"optimizer": "cgd"},
    "lookahead-simgd": {"optimizer": "simgd", "lookahead": {"k": 5, "alpha": 0.5}},
    "extra-adam": {"optimizer": "extragradient", "lr": 0.02, "optimizer_args": {"base": "adam"}},
}


def main(out: Path, figures: Path) -> list[Path]:
    dirs = []
    for name, overrides in RUNS.items():
        cfg = {**GAME, **overrides}
        status = run_experiment(cfg, out / name, resume=False)
        print(f"{name:>20}: {status.get('reason', status['status'])}")
        dirs.append(out / name)
    paths = [plot_curves(dirs, figures / "bilinear_distance.png",
                         title="Bilinear game (4×4, σ ∈ [0.5, 1.5])"),
             plot_trajectories(dirs, figures / "bilinear_trajectories.png",
                               title="First coordinates (x₁, y₁): start ●, end ■")]
    for p in paths:
        print(p)
    return paths
