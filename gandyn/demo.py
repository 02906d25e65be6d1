"""The flagship experiment: every optimizer on bilinear games (figures 1b and 1c).

1b: min_x max_y x·y from one start, η = 0.2: simultaneous GD spirals out
(|1 ± iη| = √(1 + η²) > 1 per step), alternating GD cycles on an ellipse, the
extrapolation, optimism, consensus, SGA, CGD and lookahead methods spiral in.
1c: min_x max_y xᵀAy + bᵀx + cᵀy with A 10×10, singular values evenly in
[0.5, 1.5] and a non-zero equilibrium, distance against gradient evaluations
(Hessian–vector products counted as one each), so that methods costing two
evaluations per step (extragradient) or more (CGD, SGA, consensus) are
compared at equal cost. Draws <figures>/bilinear_trajectories.png and
<figures>/bilinear_distance.png.
"""
from __future__ import annotations

from pathlib import Path

from gandyn.plots import plot_curves, plot_trajectories
from gandyn.train import run_experiment

LR = 0.2
TRAJECTORY_GAME = {"game": "bilinear", "game_args": {"dim": 1, "smin": 1.0, "smax": 1.0, "offsets": False},
                   "lr": LR, "seed": 4, "log_every": 1}
DISTANCE_GAME = {"game": "bilinear", "game_args": {"dim": 10, "smin": 0.5, "smax": 1.5, "offsets": True},
                 "lr": LR, "seed": 0, "log_every": 1}

# Keys are the style names of gandyn.plots.STYLES.
RUNS = {
    "simgd": {"optimizer": "simgd"},
    "altgd": {"optimizer": "altgd"},
    "extragradient": {"optimizer": "extragradient"},
    "extragradient-past": {"optimizer": "extragradient-past"},
    "optimistic": {"optimizer": "optimistic"},
    "consensus": {"optimizer": "consensus", "optimizer_args": {"gamma": 1.0}},
    "sga": {"optimizer": "sga", "optimizer_args": {"lam": 1.0}},
    "cgd": {"optimizer": "cgd"},
    "lookahead": {"optimizer": "simgd", "lookahead": {"k": 5, "alpha": 0.5}},
    "extra-adam": {"optimizer": "extragradient", "lr": 0.02, "optimizer_args": {"base": "adam"}},
}
LABELS = {"consensus": "consensus (γ = 1)", "sga": "SGA (λ = 1)", "lookahead": "lookahead (SimGD, k = 5, α = ½)",
          "extra-adam": "Extra-Adam (η = 0.02)"}


def run_all(game: dict, steps: int, out: Path) -> dict[str, Path]:
    """Every optimizer of RUNS on `game` for `steps` steps; {style name: run directory}."""
    dirs = {}
    for name, overrides in RUNS.items():
        cfg = {**game, "steps": steps, "checkpoint_every": steps, **overrides}
        status = run_experiment(cfg, out / name, resume=False)
        print(f"{name:>20}: {status.get('reason', status['status'])}")
        dirs[name] = out / name
    return dirs


def main(out: Path, figures: Path, *, fast: bool = False, fmt: str = "png") -> list[Path]:
    steps, budget = (120, 400) if fast else (200, 1200)
    traj = run_all(TRAJECTORY_GAME, steps, out / "trajectories")
    dist = run_all(DISTANCE_GAME, budget, out / "distance")
    paths = [plot_trajectories(traj, figures / "bilinear_trajectories.png", labels=LABELS, window=1.6,
                               axis_names=("x", "y"), fmt=fmt,
                               title=f"min_x max_y x·y, η = {LR}, {steps} steps from ○ (equilibrium ★)"),
             plot_curves(dist, figures / "bilinear_distance.png", x="evals", xmax=budget, labels=LABELS,
                         fmt=fmt, title=f"Bilinear game xᵀAy + bᵀx + cᵀy, A 10×10, σ ∈ [0.5, 1.5], η = {LR}")]
    for p in paths:
        print(p)
    return paths
