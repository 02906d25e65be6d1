"""Figure: the optimal discriminator and the JSD identity (Goodfellow et al. 2014, Prop. 1 and Thm. 1).

p_data = N(0, 1), G(z) = μ + s·z frozen; a small MLP D trained to convergence on the
non-saturating D loss approaches D*(x) = p_data/(p_data + p_g), and its value V(G, D) =
E log D(x) + E log(1 − D(G(z))) approaches −log 4 + 2·JSD(p_data ‖ p_g) (JSD by SciPy
quadrature); at p_g = p_data, D = ½ and V = −log 4. Writes RUNS/results.json and
figures/theory_optimal_discriminator.png.
"""
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

from gandyn.plots import plt, save_figure
from gandyn.theory import (discriminator_value, gaussian_game, jensen_shannon, mixture_pdf,
                           optimal_discriminator, standard_normal, train_discriminator)
from gandyn.theory.figure_script import figure_main

SHOWN = [(0.0, 1.0), (1.0, 0.5), (2.0, 1.0)]   # D against D* for these generators


def family(fast: bool) -> list[tuple[float, float]]:
    mus, ss = ((0.0, 1.0, 2.0, 3.0), (0.5, 1.0)) if fast else ((0.0, 0.5, 1.0, 2.0, 3.0), (0.5, 1.0, 2.0))
    return sorted(set(SHOWN) | {(m, s) for m in mus for s in ss})


def compute(fast: bool) -> dict:
    grid = np.linspace(-4, 5, 181)
    p = mixture_pdf(standard_normal())
    rows = []
    for mu, s in family(fast):
        torch.manual_seed(0)
        game = train_discriminator(gaussian_game(mu, s), steps=600 if fast else 1500)
        q = lambda x, mu=mu, s=s: norm.pdf(x, mu, s)  # noqa: E731
        with torch.no_grad():
            d = torch.sigmoid(game.discriminate(torch.tensor(grid, dtype=torch.float32)[:, None]))
        rows.append({"mu": mu, "s": s, "V": discriminator_value(game),
                     "bound": -math.log(4) + 2 * jensen_shannon(p, q),
                     "D": d.tolist(), "D_star": optimal_discriminator(p, q, grid).tolist()})
        print(f"mu={mu:4.1f} s={s:3.1f}  V={rows[-1]['V']:+.4f}  -log4+2JSD={rows[-1]['bound']:+.4f}")
    return {"grid": grid.tolist(), "rows": rows}


def draw(res: dict, out: Path, fmt: str) -> Path:
    grid = np.asarray(res["grid"])
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for i, r in enumerate(r for r in res["rows"] if (r["mu"], r["s"]) in SHOWN):
        a.plot(grid, r["D_star"], color=f"C{i}", lw=2.5, alpha=0.35)
        a.plot(grid, r["D"], "--", color=f"C{i}", lw=1.2, label=f"p_g = N({r['mu']:g}, {r['s']:g}²)")
    a.plot([], [], color="0.3", lw=2.5, alpha=0.35, label="closed form p/(p+p_g)")
    a.plot([], [], "--", color="0.3", lw=1.2, label="trained D (G frozen)")
    a.set_xlabel("x")
    a.set_ylabel("D(x)")
    a.set_title("optimal discriminator, p_data = N(0, 1)", fontsize=10)
    a.legend(fontsize=7)
    bound = np.array([r["bound"] for r in res["rows"]])
    v = np.array([r["V"] for r in res["rows"]])
    lo, hi = -math.log(4) - 0.05, max(bound.max(), v.max()) + 0.05
    b.plot([lo, hi], [lo, hi], color="0.6", lw=0.8, label="V = −log 4 + 2·JSD")
    b.axhline(-math.log(4), color="0.8", lw=0.8, ls=":")
    b.scatter(bound, v, s=18, zorder=3, label="trained D, one (μ, s) each")
    b.set_xlabel("−log 4 + 2·JSD(p_data ‖ p_g)   (SciPy quadrature)")
    b.set_ylabel("V(G, D) of the trained D")
    b.set_title("the value of the game is the JSD", fontsize=10)
    b.legend(fontsize=7, loc="upper left")
    return save_figure(fig, out / "theory_optimal_discriminator.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "optimal_discriminator", compute, draw)
