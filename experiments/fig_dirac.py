"""Figure: the Dirac-GAN (Mescheder et al. 2018) under each optimizer and regularizer.

G(z) = θ, D(x) = ψ·x, data at 0. Unregularized simultaneous GD spirals out,
alternating GD circles, R1 (γ = 0.5), consensus and extragradient converge.
Draws figures/dirac_trajectories.png (θ against ψ) and figures/dirac_distance.png.
"""
from pathlib import Path

from gandyn.plots import figure_parser, plot_curves, plot_trajectories
from gandyn.train import run_experiment

BASE = {"game": "dirac", "game_args": {"loss": "saturating"}, "lr": 0.1, "steps": 500,
        "log_every": 1, "checkpoint_every": 500}
RUNS = {
    "simgd": {"optimizer": "simgd"},
    "altgd": {"optimizer": "altgd"},
    "simgd-r1": {"optimizer": "simgd", "game_args": {"loss": "saturating", "regularizer": "r1", "gamma": 0.5}},
    "consensus": {"optimizer": "consensus", "optimizer_args": {"gamma": 1.0}},
    "extragradient": {"optimizer": "extragradient"},
    "wgan-gp-simgd": {"optimizer": "simgd", "game_args": {"loss": "wasserstein", "regularizer": "wgan-gp",
                                                          "gamma": 0.5}},
}


def main(runs: Path, figures: Path) -> None:
    dirs = []
    for name, overrides in RUNS.items():
        status = run_experiment({**BASE, **overrides}, runs / name, resume=False)
        print(f"{name:>16}: {status.get('reason', status['status'])}")
        dirs.append(runs / name)
    print(plot_trajectories(dirs, figures / "dirac_trajectories.png",
                            title="Dirac-GAN: θ (generator) against ψ (discriminator)"))
    print(plot_curves(dirs, figures / "dirac_distance.png", title="Dirac-GAN: distance to (θ, ψ) = (0, 0)"))


if __name__ == "__main__":
    p = figure_parser(__doc__, runs="runs/fig_dirac")
    a = p.parse_args()
    main(Path(a.runs), Path(a.figures))
