"""Figure 1a: Gidel et al. 2019 (ICLR, "A variational inequality perspective on GANs"),
the constrained bilinear game min_θ max_{φ ∈ [−1, 1]} θ·φ from (θ, φ) = (2, 0.5), 100 iterations:
simultaneous and alternating SGD at step 0.1, averaged SGD (uniform average of the
iterates, step 2/√(t+1)), extragradient at 0.6, extrapolation from the past at 0.5 and
(simultaneous) Adam at 0.01 with β = (0, 0.99); distance of the iterate (of the average
for averaged SGD) to the equilibrium (0, 0). φ's box is a projection after every move
(gandyn/optim/constraints.py). As in the paper, only averaging, extrapolation and
extrapolation from the past converge within 100 iterations (averaging at its O(1/√t)
pace); simultaneous SGD stays at distance ≈ 1 on the box's edge, alternating SGD
cycles and Adam, much slower, is still at ≈ 1.3. The step-size schedule is a torch LambdaLR, which
run configs cannot express, so this script steps the optimizers itself and writes the
distances to <runs>/distances.npz.
"""
from pathlib import Path

import numpy as np
import torch

from gandyn.games import Bilinear
from gandyn.optim import OPTIMIZERS
from gandyn.optim.averaging import Averaged
from gandyn.plots import figure_parser, plot_distance_arrays

ITERATIONS = 100
# Style name -> (optimizer, lr, optimizer options, legend label).
METHODS = {
    "simgd": ("simgd", 0.1, {}, "simultaneous SGD, η = 0.1"),
    "altgd": ("altgd", 0.1, {}, "alternating SGD, η = 0.1"),
    "averaged": ("simgd", 1.0, {}, "averaged SGD, η_t = 2/√(t+1)"),
    "extragradient": ("extragradient", 0.6, {}, "extragradient, η = 0.6"),
    "extragradient-past": ("extragradient-past", 0.5, {}, "extrapolation from the past, η = 0.5"),
    "adam": ("simgd", 0.01, {"base": "adam", "betas": (0.0, 0.99)}, "Adam, η = 0.01, β = (0, 0.99)"),
}


def distances(name: str, iterations: int = ITERATIONS) -> np.ndarray:
    """Distance to (0, 0) after each of `iterations` steps of METHODS[name] (index 0: the start)."""
    optimizer, lr, options, _ = METHODS[name]
    game = Bilinear(torch.ones(1, 1, dtype=torch.float64), x0=[2.0], y0=[0.5])
    groups = [{"params": [game.x], "player": 0},
              {"params": [game.y], "player": 1, "constraint": {"box": [-1.0, 1.0]}}]
    opt = OPTIMIZERS[optimizer](groups, lr=lr, **options)
    if name == "averaged":
        opt = Averaged(opt, "uniform")
        sched = torch.optim.lr_scheduler.LambdaLR(opt.inner, lambda t: 2 / np.sqrt(t + 1))
    out = [float(torch.hypot(game.x.detach(), game.y.detach()))]
    for _ in range(iterations):
        opt.step(game)
        if name == "averaged":
            sched.step()
            x, y = opt.averaged()
        else:
            x, y = game.x.detach(), game.y.detach()
        out.append(float(torch.hypot(x, y)))
    return np.array(out)


if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_bilinear_constrained").parse_args()
    npz = Path(a.runs) / "distances.npz"
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, **{name: distances(name) for name in METHODS})
    print(plot_distance_arrays(npz, Path(a.figures) / "bilinear_constrained.png", fmt=a.format,
                               labels={k: v[3] for k, v in METHODS.items()},
                               title="min over θ, max over φ ∈ [−1, 1] of θ·φ, from (θ, φ) = (2, 0.5) (Gidel et al. 2019)"))
