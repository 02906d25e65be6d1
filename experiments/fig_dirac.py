"""Figure 3: the Dirac-GAN (Mescheder et al. 2018, Figures 1 and 3) in the paper's settings.

G(z) = θ, D(x) = ψ·x, data at 0; step 0.2 from (θ, ψ) = (1, 1) for 500 steps, by
simultaneous GD and alternating GD (D first, 1 or 5 D steps per G step), for the GAN
(saturating), the non-saturating GAN, WGAN with weight clipping (|ψ| ≤ 1), WGAN-GP
(λ = 1), instance noise (σ = 1), the zero-centred gradient penalty R1 at γ = 0.3 and
at the critical γ = 1, and consensus optimization (γ = 1, on the GAN). Each panel of
dirac_trajectories.png is a streamline plot of the field each method follows with the
trajectories over it; dirac_distance.png is the distance to the equilibrium (0, 0).
As in the paper, the penalties, consensus and instance noise converge, while the
unregularized GAN, WGAN and WGAN-GP do not.
"""
from pathlib import Path

import numpy as np

from gandyn.plots import figure_parser, plot_distance_panels, plot_field_panels
from gandyn.train import run_experiment

LR, STEPS, CLIP = 0.2, 500, 1.0
BASE = {"game": "dirac", "lr": LR, "log_every": 1, "seed": 0}
# Panel -> (its title, game_args, optimizer options that every update of the panel shares).
PANELS = {
    "gan": ("GAN", {"loss": "saturating"}, {}),
    "nsgan": ("non-saturating GAN", {"loss": "non-saturating"}, {}),
    "wgan": (f"WGAN, clipping |ψ| ≤ {CLIP:g}", {"loss": "wasserstein"},
             {"players": {"D": {"constraint": {"box": [-CLIP, CLIP]}}}}),
    "wgan-gp": ("WGAN-GP, λ = 1", {"loss": "wasserstein", "regularizer": "wgan-gp", "gamma": 1.0}, {}),
    "instance-noise": ("instance noise, σ = 1", {"loss": "saturating", "instance_noise": 1.0, "batch_size": 256},
                       {}),
    "r1-0.3": ("R1, γ = 0.3", {"loss": "saturating", "regularizer": "r1", "gamma": 0.3}, {}),
    "r1-1": ("R1, γ = 1 (critical)", {"loss": "saturating", "regularizer": "r1", "gamma": 1.0}, {}),
    "consensus": ("consensus, γ = 1", {"loss": "saturating"}, {"consensus": 1.0}),
}
# Update -> optimizer settings; keys are gandyn.plots.STYLES names.
UPDATES = {
    "simgd": {"optimizer": "simgd"},
    "altgd": {"optimizer": "altgd", "optimizer_args": {"order": [1, 0]}},
    "altgd-5": {"optimizer": "altgd", "optimizer_args": {"order": [1, 0], "player_steps": [1, 5]}},
}


def config(panel: str, update: str, steps: int) -> dict:
    _, game_args, extra = PANELS[panel]
    cfg = {**BASE, "steps": steps, "checkpoint_every": steps, "game_args": game_args,
           **UPDATES.get(update, {})}
    if "players" in extra:
        cfg["players"] = extra["players"]
    if "consensus" in extra:  # consensus replaces the update: one run, its own style
        cfg.update(optimizer="consensus", optimizer_args={"gamma": extra["consensus"]})
    return cfg


def updates_of(panel: str) -> list[str]:
    return ["consensus"] if "consensus" in PANELS[panel][2] else list(UPDATES)


def run_panels(runs: Path, steps: int) -> dict[str, dict[str, Path]]:
    dirs = {}
    for panel in PANELS:
        dirs[panel] = {}
        for update in updates_of(panel):
            d = runs / panel / update
            status = run_experiment(config(panel, update, steps), d, resume=False)
            print(f"{panel:>15} {update:>9}: {status.get('reason', status['status'])}")
            dirs[panel][update] = d
    return dirs


def field_grid(panel: str, n: int, lim: float = 2.0) -> dict[str, np.ndarray]:
    """−(the field the panel's method follows) on an n×n grid of (θ, ψ) ∈ [−lim, lim]²:
    v, or consensus's v + γJᵀv; instance noise in expectation (many draws)."""
    import torch

    from gandyn.diagnostics import game_jacobian
    from gandyn.games.registry import make_game

    _, game_args, extra = PANELS[panel]
    args = {**game_args, "batch_size": 8192} if "instance_noise" in game_args else game_args
    game = make_game("dirac", **args)
    t = np.linspace(-lim, lim, n)
    U, V = np.zeros((n, n)), np.zeros((n, n))
    for i, psi in enumerate(t):
        for j, theta in enumerate(t):
            with torch.no_grad():
                game.theta.fill_(theta)
                game.psi.fill_(psi)
            v = torch.cat([g[0] for g in game.vector_field()]).detach()
            if "consensus" in extra:
                v = v + extra["consensus"] * game_jacobian(game).T @ v
            U[i, j], V[i, j] = -float(v[0]), -float(v[1])
    return {"theta": t, "psi": t, "d_theta": U, "d_psi": V}


def main(runs: Path, figures: Path, fast: bool, fmt: str) -> None:
    steps, n = (250, 17) if fast else (STEPS, 31)
    dirs = run_panels(runs, steps)
    fields = {}
    for panel in PANELS:
        path = runs / panel / "field.npz"
        np.savez(path, **field_grid(panel, n))
        fields[panel] = path
    titles = {p: PANELS[p][0] for p in PANELS}
    print(plot_field_panels(dirs, fields, titles, figures / "dirac_trajectories.png", box={"wgan": CLIP}, fmt=fmt,
                            title=f"Dirac-GAN, η = {LR}, {steps} steps from (θ, ψ) = (1, 1)"))
    print(plot_distance_panels(dirs, titles, figures / "dirac_distance.png", fmt=fmt,
                               title=f"Dirac-GAN: distance to the equilibrium (0, 0), η = {LR}"))


if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_dirac").parse_args()
    main(Path(a.runs), Path(a.figures), a.fast, a.format)
