"""Figure: the WGAN critic estimates W₁, while the JSD saturates (Arjovsky et al. 2017, Fig. 1;
Gulrajani et al. 2017).

p = N(0, 1), q = N(Δ, 1): JSD(p ‖ q) (SciPy quadrature) saturates at log 2 as the two move
apart, so its gradient vanishes, while W₁(p, q) = |Δ| grows linearly. A critic f (small MLP,
Wasserstein loss + WGAN-GP, λ = 100) trained to convergence against the frozen q gives
E_p f − E_q f ≈ W₁ (points). The soft penalty lets f's slope exceed 1 a little: for these
shifted Gaussians the penalized optimum is linear, f = a·x with a = 1 + Δ/(2λ) maximizing
Δ·a − λ(a − 1)², so E_p f − E_q f = W₁ + Δ²/(2λ) (0.18 at Δ = 6, dashed).
Right: a genuine failure, the symmetric pair p = ½N(−2, 0.5²) + ½N(2, 0.5²), q = N(0, 1). Every
linear critic scores E_p f − E_q f = 0 there (E_p x = E_q x), while W₁ = 1.20 is reached by
f = |x|. Trained from its initialization, the penalty makes f linear (|f'| = 1) before it bends,
and bending a slope-±1 line towards |x| must cross |f'| < 1: the critic stays near the linear
one, at λ = 10 (Gulrajani et al.'s) as at λ = 100. Warm-started at |x|
(gandyn.theory.regress_discriminator), the same training keeps it and estimates W₁.
Writes RUNS/results.json and figures/theory_critic_w1.png.
"""
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm, wasserstein_distance

from gandyn.data import Mixture

from gandyn.plots import plt, save_figure
from gandyn.theory import (discriminator_value, gaussian_game, jensen_shannon, mixture_pdf,
                           one_dim_discriminator, regress_discriminator, train_discriminator)
from gandyn.theory.figure_script import figure_main

LAMBDA = 100.0


def critic_estimate(shift: float, steps: int) -> float:
    torch.manual_seed(0)
    game = gaussian_game(shift, 1.0, loss="wasserstein", penalty="wgan-gp", penalty_weight=LAMBDA,
                         D=one_dim_discriminator(activation="leaky_relu"))
    return discriminator_value(train_discriminator(game, steps))


SYMMETRIC = Mixture([[-2.0], [2.0]], 0.5)
SYMMETRIC_CASES = {"from scratch, λ = 10": (10.0, False), "from scratch, λ = 100": (100.0, False),
                   "warm start at |x|, λ = 100": (100.0, True)}


def symmetric_pair(steps: int) -> dict:
    grid = np.linspace(-4, 4, 161)
    x, _ = SYMMETRIC.sample(10 ** 6, torch.Generator().manual_seed(0))
    res = {"grid": grid.tolist(), "w1": float(wasserstein_distance(x[:, 0].numpy(), np.random.default_rng(0).normal(
        size=10 ** 6))), "p": [mixture_pdf(SYMMETRIC)(t) for t in grid], "q": norm.pdf(grid).tolist(), "cases": {}}
    for name, (lam, warm) in SYMMETRIC_CASES.items():
        torch.manual_seed(0)
        game = gaussian_game(0.0, 1.0, SYMMETRIC, loss="wasserstein", penalty="wgan-gp", penalty_weight=lam,
                             D=one_dim_discriminator(activation="leaky_relu"))
        if warm:
            regress_discriminator(game, lambda t: t.abs(), 500)
        train_discriminator(game, steps)
        with torch.no_grad():
            f = game.discriminate(torch.tensor(grid, dtype=torch.float32)[:, None])
        res["cases"][name] = {"estimate": discriminator_value(game), "f": (f - f[len(grid) // 2]).tolist()}
        print(f"symmetric pair, {name}: E_p f − E_q f = {res['cases'][name]['estimate']:.4f}, W1 = {res['w1']:.4f}")
    return res


def compute(fast: bool) -> dict:
    curve = np.linspace(0, 6, 61)
    shifts = [0.0, 1.0, 2.0, 4.0, 6.0] if fast else np.linspace(0, 6, 13).tolist()
    res = {"curve": curve.tolist(),
           "jsd": [jensen_shannon(norm.pdf, lambda x, d=d: norm.pdf(x, d)) for d in curve],
           "shifts": shifts, "critic": []}
    for d in shifts:
        res["critic"].append(critic_estimate(d, 500 if fast else 800))
        print(f"Δ = {d:.1f}: critic E_p f − E_q f = {res['critic'][-1]:.4f}, W1 = {d:.4f}")
    res["symmetric"] = symmetric_pair(500 if fast else 800)
    return res


def draw(res: dict, out: Path, fmt: str) -> Path:
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2))
    curve = np.asarray(res["curve"])
    ax.plot(curve, curve, color="C0", lw=1.5, label="W₁(p, q) = |Δ|")
    ax.scatter(res["shifts"], res["critic"], color="C0", s=22, zorder=3,
               label=f"WGAN-GP critic (λ = {LAMBDA:g}): E_p f − E_q f")
    ax.plot(curve, curve + curve ** 2 / (2 * LAMBDA), color="C0", ls="--", lw=0.8,
            label="penalized optimum: W₁ + Δ²/(2λ)")
    ax.plot(curve, res["jsd"], color="C3", lw=1.5, label="JSD(p ‖ q)  (quadrature)")
    ax.axhline(math.log(2), color="C3", ls=":", lw=0.8)
    ax.text(curve[-1], math.log(2) + 0.08, "log 2", color="C3", ha="right", fontsize=8)
    ax.set_xlabel("Δ: p = N(0, 1), q = N(Δ, 1)")
    ax.set_ylabel("distance")
    ax.set_title("JSD saturates, W₁ grows linearly", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    sym = res["symmetric"]
    grid = np.asarray(sym["grid"])
    bx.plot(grid, np.abs(grid), color="0.6", lw=2.5, alpha=0.5, label=f"|x|: the optimal critic, W₁ = {sym['w1']:.3f}")
    for (name, c), color in zip(sym["cases"].items(), ("C3", "C1", "C0")):
        bx.plot(grid, c["f"], color=color, lw=1.3, label=f"{name}: E_p f − E_q f = {c['estimate']:.3f}")
    scale = 4 / max(max(sym["p"]), max(sym["q"]))
    bx.fill_between(grid, -4, -4 + scale * np.asarray(sym["p"]), color="C2", alpha=0.25, lw=0, label="p (scaled)")
    bx.fill_between(grid, -4, -4 + scale * np.asarray(sym["q"]), color="C4", alpha=0.25, lw=0, label="q (scaled)")
    bx.set_ylim(-4, 5.6)
    bx.set_xlabel("x:  p = ½N(−2, 0.5²) + ½N(2, 0.5²),  q = N(0, 1)")
    bx.set_ylabel("critic f(x) − f(0)")
    bx.set_title("a symmetric pair: a linear critic scores 0, the trained one stays near it", fontsize=10)
    bx.legend(fontsize=7, loc="upper center")
    return save_figure(fig, out / "theory_critic_w1.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "critic_w1", compute, draw)
