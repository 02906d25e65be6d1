"""Figure: the WGAN critic estimates W₁, while the JSD saturates (Arjovsky et al. 2017, Fig. 1;
Gulrajani et al. 2017).

p = N(0, 1), q = N(Δ, 1): JSD(p ‖ q) (SciPy quadrature) saturates at log 2 as the two move
apart, so its gradient vanishes, while W₁(p, q) = |Δ| grows linearly. A critic f (small MLP,
Wasserstein loss + WGAN-GP, λ = 100) trained to convergence against the frozen q gives
E_p f − E_q f ≈ W₁ (points). The soft penalty lets f's slope exceed 1 a little: for these
shifted Gaussians the penalized optimum is linear, f = a·x with a = 1 + Δ/(2λ) maximizing
Δ·a − λ(a − 1)², so E_p f − E_q f = W₁ + Δ²/(2λ) (0.18 at Δ = 6, dashed). Writes RUNS/results.json and figures/theory_critic_w1.png.
"""
import math
from pathlib import Path

import numpy as np
import torch
from scipy.stats import norm

from gandyn.plots import plt, save_figure
from gandyn.theory import (discriminator_value, gaussian_game, jensen_shannon, one_dim_discriminator,
                           train_discriminator)
from gandyn.theory.figure_script import figure_main

LAMBDA = 100.0


def critic_estimate(shift: float, steps: int) -> float:
    torch.manual_seed(0)
    game = gaussian_game(shift, 1.0, loss="wasserstein", penalty="wgan-gp", penalty_weight=LAMBDA,
                         D=one_dim_discriminator(activation="leaky_relu"))
    return discriminator_value(train_discriminator(game, steps))


def compute(fast: bool) -> dict:
    curve = np.linspace(0, 6, 61)
    shifts = [0.0, 1.0, 2.0, 4.0, 6.0] if fast else np.linspace(0, 6, 13).tolist()
    res = {"curve": curve.tolist(),
           "jsd": [jensen_shannon(norm.pdf, lambda x, d=d: norm.pdf(x, d)) for d in curve],
           "shifts": shifts, "critic": []}
    for d in shifts:
        res["critic"].append(critic_estimate(d, 500 if fast else 800))
        print(f"Δ = {d:.1f}: critic E_p f − E_q f = {res['critic'][-1]:.4f}, W1 = {d:.4f}")
    return res


def draw(res: dict, out: Path, fmt: str) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4.2))
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
    return save_figure(fig, out / "theory_critic_w1.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "critic_w1", compute, draw)
