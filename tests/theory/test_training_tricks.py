"""Item 5 of the theory lab (the tricks that exist as GANGame options): one-sided label
smoothing caps the optimal D on real data at the smoothed label, and instance noise makes the
Dirac-GAN converge under simultaneous GD at the rate its linearization fixes."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import norm
from torch import nn

from gandyn.games.gan import GANGame
from gandyn.optim import SimGD
from gandyn.theory import gaussian_game, train_discriminator


def test_one_sided_label_smoothing_caps_the_optimal_d_at_the_smoothed_label():
    """Pointwise, D minimizes −(1 − s)p log D − s·p log(1 − D) − q log(1 − D):
    D* = (1 − s)·p/(p + q), which is 1 − s where only real data lives."""
    s = 0.2
    torch.manual_seed(0)
    game = train_discriminator(gaussian_game(3.0, 0.5, label_smoothing=s, seed=3), 800)
    x = np.linspace(-2.0, 3.5, 56)
    with torch.no_grad():
        d = torch.sigmoid(game.discriminate(torch.tensor(x, dtype=torch.float32)[:, None])).double().numpy()
    p, q = norm.pdf(x), norm.pdf(x, 3.0, 0.5)
    assert np.abs(d - (1 - s) * p / (p + q)).max() < 0.03
    assert np.abs(d[x < 0] - (1 - s)).max() < 0.02     # the cap, where q ≈ 0
    assert d.max() < 1 - s + 0.02


class Point(nn.Module):
    """The Dirac-GAN's generator: G(z) = θ for every z."""

    def __init__(self, theta: float):
        super().__init__()
        self.latent_dim, self.num_classes = 1, 0
        self.theta = nn.Parameter(torch.tensor([theta]))

    def forward(self, z):
        return self.theta.expand(z.shape[0], 1)


def dirac_distances(noise: float, steps: int, lr: float, start: float = 0.3) -> np.ndarray:
    torch.manual_seed(0)
    G, D = Point(start), nn.Linear(1, 1, bias=False)   # D(x) = ψ·x, data at 0
    nn.init.constant_(D.weight, start)
    game = GANGame(G, D, lambda n: torch.zeros(n, 1), loss="saturating", batch_size=8192,
                   instance_noise=noise, seed=0)
    opt = SimGD(game.players, lr=lr)
    out = []
    for _ in range(steps):
        out.append(math.hypot(float(G.theta.detach()), float(D.weight.detach())))
        opt.step(game)
    return np.array(out)


def test_instance_noise_makes_the_dirac_gan_converge_at_the_linearized_rate():
    """Near (θ, ψ) = 0 with noise σ the expected field is v = (−ψ/2, θ/2 + σ²ψ/2) (softplus'(0) = ½,
    softplus''(0) = ¼), so simultaneous GD's update map I − ηJ has |μ|² = 1 − ησ²/2 + η²/4:
    a contraction iff η < 2σ² — and without noise (σ = 0) |μ| > 1, an outward spiral."""
    lr, sigma, steps = 0.1, 0.5, 300
    dist = dirac_distances(sigma, steps, lr)
    rate = math.sqrt(1 - lr * sigma ** 2 / 2 + lr ** 2 / 4)
    measured = math.exp(np.polyfit(np.arange(steps), np.log(dist), 1)[0])
    assert measured == pytest.approx(rate, abs=1.5e-3)   # 0.99499; σ = 0 would give 1.00125
    plain = dirac_distances(0.0, steps, lr)
    assert plain[-1] > plain[0]
    assert math.exp(np.polyfit(np.arange(steps), np.log(plain), 1)[0]) == pytest.approx(
        math.sqrt(1 + lr ** 2 / 4), abs=1.5e-3)
