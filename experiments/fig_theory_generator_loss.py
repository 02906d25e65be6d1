"""Figure: saturating vs non-saturating generator loss (Goodfellow et al. 2014, Sec. 3).

Left: |∂L_G/∂logit| against D(G(z)) — the closed forms D (saturating, log(1 − D(G(z)))) and
1 − D (non-saturating, −log D(G(z))) as lines, autograd through gandyn.nn.losses and a trained
1-D discriminator (p_data = N(0, 1) against a frozen N(4, 1)) as points. Middle: the gradient
that reaches G's samples through that D, |∂L_G/∂x|: where D rejects them (D(G(z)) → 0) the
saturating loss passes almost nothing. Right: the early-training failure on the 8-Gaussian
ring: a D first trained against the initial G (it rejects G's samples with confidence), then
both players by simultaneous Adam (GANGame + gandyn.optim.SimGD); the mean distance of G's
samples to the nearest mode. Writes RUNS/results.json and figures/theory_generator_loss.png.
"""
from pathlib import Path

import numpy as np
import torch

from gandyn.data import ring
from gandyn.games.gan import GANGame
from gandyn.nn.models import make_models
from gandyn.optim import SimGD
from gandyn.plots import plt, save_figure
from gandyn.theory import gaussian_game, train_discriminator
from gandyn.theory.generator_gradient import generator_gradients
from gandyn.theory.figure_script import figure_main

LOSSES = ("saturating", "non-saturating")


def gradients_through_d() -> dict:
    torch.manual_seed(0)
    game = train_discriminator(gaussian_game(4.0, 1.0), 600)
    x = torch.linspace(-2, 9, 45)[:, None]
    out = {"x": x[:, 0].tolist()}
    for loss in LOSSES:
        d, d_logit, d_x = generator_gradients(loss, game.D, x)
        out[loss] = {"D": d.tolist(), "d_logit": d_logit.abs().tolist(), "d_x": d_x[:, 0].abs().tolist()}
    return out


def ring_runs(steps: int, seed: int = 0) -> dict:
    data = ring()
    out = {}
    for loss in LOSSES:
        torch.manual_seed(seed)
        G, D = make_models("mlp", (2,), hidden=64)
        game = GANGame(G, D, data, loss=loss, batch_size=256, seed=seed)
        train_discriminator(game, 200, lr=1e-2, final_lr=1e-3)   # a confident D at the start
        opt = SimGD(game.players, lr=1e-3, base="adam", betas=(0.5, 0.999))
        z = torch.randn(2000, G.latent_dim, generator=torch.Generator().manual_seed(1))
        rows = []
        for k in range(steps + 1):
            if k % 25 == 0:
                with torch.no_grad():
                    dist = torch.cdist(G(z).double(), data.modes).min(1).values.mean()
                    d_fake = torch.sigmoid(game.discriminate(G(z))).mean()
                rows.append({"step": k, "distance": float(dist), "D_fake": float(d_fake)})
            if k < steps:
                opt.step(game)
        out[loss] = rows
        print(f"{loss}: mean distance to the nearest mode {rows[0]['distance']:.2f} -> {rows[-1]['distance']:.2f}, "
              f"D(G(z)) {rows[-1]['D_fake']:.2g}")
    return out


def draw(res: dict, out: Path, fmt: str) -> Path:
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(14, 4))
    d = np.logspace(-5, 0, 200)
    a.loglog(d, d, color="C3", lw=2.5, alpha=0.4, label="saturating: D  (closed form)")
    a.loglog(d, 1 - d, color="C0", lw=2.5, alpha=0.4, label="non-saturating: 1 − D")
    g = res["through_d"]
    for loss, color in zip(LOSSES, ("C3", "C0")):
        a.loglog(g[loss]["D"], g[loss]["d_logit"], "o", ms=3, color=color, label=f"{loss}: autograd")
        b.semilogy(g["x"], g[loss]["d_x"], "o-", ms=3, lw=1, color=color, label=loss)
    a.set_ylim(1e-6, 3)
    a.set_xlabel("D(G(z))")
    a.set_ylabel("|∂L_G / ∂logit|")
    a.set_title("gradient in the logit", fontsize=10)
    a.legend(fontsize=7)
    b2 = b.twinx()
    b2.plot(g["x"], g["saturating"]["D"], color="0.5", lw=1, ls=":")
    b2.set_ylabel("D(x)  (dotted)", color="0.4")
    b.set_xlabel("x = G(z);  p_data = N(0, 1), D trained against N(4, 1)")
    b.set_ylabel("|∂L_G / ∂x|  through D")
    b.set_title("gradient reaching G", fontsize=10)
    b.legend(fontsize=7, loc="lower left")
    for loss, color in zip(LOSSES, ("C3", "C0")):
        rows = res["ring"][loss]
        c.plot([r["step"] for r in rows], [r["distance"] for r in rows], color=color, label=loss)
    c.set_yscale("log")
    c.set_xlabel("step (simultaneous Adam, after 200 steps of D alone)")
    c.set_ylabel("mean distance of G(z) to the nearest mode")
    c.set_title("8-Gaussian ring: the saturating loss stalls", fontsize=10)
    c.legend(fontsize=7)
    return save_figure(fig, out / "theory_generator_loss.png", fmt)


def compute(fast: bool) -> dict:
    return {"through_d": gradients_through_d(), "ring": ring_runs(500 if fast else 1500)}


if __name__ == "__main__":
    figure_main(__doc__, "generator_loss", compute, draw)
