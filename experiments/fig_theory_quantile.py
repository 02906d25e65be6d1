"""Figure: a generator is a quantile function (any distribution on R is Q(U), U ~ U[0, 1]).

A GAN with a 1-D uniform latent (gandyn.theory.fit_generator: Extra-Adam, R1, EMA of G) learns
G(u) ≈ Φ⁻¹(u) for N(0, 1) and ≈ the quantile function of the bimodal mixture ½N(−2, 0.5²) +
½N(2, 0.5²) (by root-finding its CDF), up to orientation (the monotone 1-D transport map may
be decreasing: then G(u) ≈ Q(1 − u)); W₁ by scipy.stats.wasserstein_distance. On a 2-D
target N(0, I), a latent of dimension 1 can only draw a curve, a latent of dimension 2 fills
the plane (exact W₁ of 1,000 points by optimal matching). Writes RUNS/results.json and
figures/theory_quantile.png.
"""
from pathlib import Path

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from gandyn.data import Mixture
from gandyn.plots import plt, save_figure
from gandyn.theory import empirical_w1, fit_generator, mixture_quantile
from gandyn.theory.figure_script import figure_main

TARGETS = {"N(0, 1)": Mixture([[0.0]], 1.0), "½N(−2, 0.5²) + ½N(2, 0.5²)": Mixture([[-2.0], [2.0]], 0.5)}
PLANE = Mixture([[0.0, 0.0]], 1.0)


def oriented(g: np.ndarray) -> tuple[np.ndarray, bool]:
    """G on increasing u, flipped when G is decreasing overall (then G(u) ≈ Q(1 − u))."""
    decreasing = g[-1] < g[0]
    return (g[::-1] if decreasing else g), bool(decreasing)


def compute(fast: bool) -> dict:
    steps = 1500 if fast else 3000
    u = (np.arange(1000) + 0.5) / 1000
    res = {"u": u.tolist(), "one_dim": [], "plane": []}
    for name, data in TARGETS.items():
        game = fit_generator(data, 1, steps)
        with torch.no_grad():
            g = game.generate(torch.tensor(u, dtype=torch.float32)[:, None], ema=True)[:, 0].double().numpy()
        g, flipped = oriented(g)
        q = mixture_quantile(data, u)
        res["one_dim"].append({"name": name, "G": g.tolist(), "Q": q.tolist(), "flipped": flipped,
                               "w1": wasserstein_distance(g, q)})
        print(f"{name}: W1(G(U), target) = {res['one_dim'][-1]['w1']:.4f}")
    gen = torch.Generator().manual_seed(3)
    real = PLANE.sample(1000, gen)[0].double().numpy()
    floor = empirical_w1(real, PLANE.sample(1000, gen)[0].double().numpy())
    for latent_dim in (1, 2):
        game = fit_generator(PLANE, latent_dim, steps)
        with torch.no_grad():
            x = game.generate(torch.rand(1000, latent_dim, generator=gen), ema=True).double().numpy()
        res["plane"].append({"latent_dim": latent_dim, "x": x.tolist(), "w1": empirical_w1(x, real)})
        print(f"2-D N(0, I), latent dim {latent_dim}: W1 = {res['plane'][-1]['w1']:.3f} "
              f"(two samples of the target: {floor:.3f})")
    res["floor"], res["real"] = floor, real.tolist()
    return res


def draw(res: dict, out: Path, fmt: str) -> Path:
    u = np.asarray(res["u"])
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, r in zip(axes[:2], res["one_dim"]):
        ax.plot(u, r["Q"], color="0.3", lw=3, alpha=0.4, label="true quantile Q(u)")
        ax.plot(u, r["G"], "--", color="C1", lw=1.3,
                label="G(1 − u), G decreasing" if r["flipped"] else "trained G(u)")
        ax.set_xlabel("u")
        ax.set_title(f"{r['name']}: W₁ = {r['w1']:.3f}", fontsize=10)
        ax.legend(fontsize=7, loc="upper left")
    for ax, r in zip(axes[2:], res["plane"]):
        x = np.asarray(r["x"])
        real = np.asarray(res["real"])
        ax.scatter(real[:, 0], real[:, 1], s=2, color="0.75", label="target samples")
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.6, color="C0", label="G(u)")
        ax.legend(fontsize=7, loc="upper left", markerscale=3)
        ax.set_xlim(-3.5, 3.5)
        ax.set_ylim(-3.5, 3.5)
        ax.set_aspect("equal")
        ax.set_title(f"N(0, I₂) from a {r['latent_dim']}-D latent: W₁ = {r['w1']:.2f} "
                     f"(floor {res['floor']:.2f})", fontsize=9)
    axes[0].set_ylabel("x")
    return save_figure(fig, out / "theory_quantile.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "quantile", compute, draw)
