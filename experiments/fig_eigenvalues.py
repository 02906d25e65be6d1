"""Figure 4: eigenvalues of the game Jacobian J and of each optimizer's one-step update map
in the complex plane (Mescheder et al. 2017, Figure 2; Berard et al. 2020), read from the
diagnostics.json that `gandyn diagnose` writes into each run directory.

Two games at the end of short training: the Dirac-GAN (saturating loss, η = 0.2, 20 steps
from (θ, ψ) = (0.05, 0.05), so J is that of the equilibrium to within 1e-3: ±i/2) and a
mixture-of-Gaussians GAN (8 Gaussians on a ring, G and D MLPs of one hidden layer of
8 units, batch 64, η = 0.05). J's eigenvalues with Re λ ≤ 0 mark rotation
without damping; an update map converges locally iff all its eigenvalues lie inside
the unit circle. SimGD's map on the Dirac-GAN sits outside (1 − ηλ with λ ≈ ±i/2),
extragradient's and consensus's inside.
"""
from pathlib import Path

from gandyn.diagnostics.cli import diagnose
from gandyn.plots import figure_parser, plot_eigenvalue_panels
from gandyn.train import run_experiment

OPTIMIZERS = {
    "simgd": {"optimizer": "simgd"},
    "altgd": {"optimizer": "altgd", "optimizer_args": {"order": [1, 0]}},
    "extragradient": {"optimizer": "extragradient"},
    "optimistic": {"optimizer": "optimistic"},
    "consensus": {"optimizer": "consensus", "optimizer_args": {"gamma": 1.0}},
}
GAMES = {
    "Dirac-GAN": {"game": "dirac", "game_args": {"loss": "saturating", "theta0": 0.05, "psi0": 0.05}, "lr": 0.2},
    "mixture GAN (8 Gaussians)": {
        "game": "gan", "lr": 0.05,
        "game_args": {"data": "ring", "model": "mlp", "batch_size": 64, "loss": "non-saturating",
                      "model_args": {"hidden": 8, "depth": 1}}},
}


def run_and_diagnose(runs: Path, steps: dict[str, int]) -> dict[str, dict[str, Path]]:
    out = {}
    for g, (game_name, game) in enumerate(GAMES.items()):
        out[game_name] = {}
        for name, opt in OPTIMIZERS.items():
            d = runs / f"game{g}" / name
            n = steps[game_name]
            cfg = {**game, **opt, "steps": n, "checkpoint_every": n, "log_every": n, "seed": 0}
            status = run_experiment(cfg, d, resume=False)
            diagnose(d)
            print(f"{game_name:>26} {name:>13}: {status.get('reason', status['status'])}")
            out[game_name][name] = d / "diagnostics.json"
    return out


if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_eigenvalues").parse_args()
    steps = {"Dirac-GAN": 20, "mixture GAN (8 Gaussians)": 100 if a.fast else 400}
    files = run_and_diagnose(Path(a.runs), steps)
    print(plot_eigenvalue_panels(files, Path(a.figures) / "eigenvalues.png", steps=steps, fmt=a.format))
