"""Fit a generator with a uniform latent by a small GAN run (GANGame + a gandyn.optim optimizer).

    game = fit_generator(Mixture([[0.0]], 1.0), latent_dim=1, steps=2000)
    x = game.generate(u, ema=True)      # u (n, latent_dim) in [0, 1]

The choices that make a 1-D GAN settle instead of circling its equilibrium: Extra-Adam
(Gidel et al. 2019), an R1 penalty on D (Mescheder et al. 2018), and an EMA of G's weights
for evaluation (the last iterate still oscillates with the minibatch noise).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from gandyn.games.gan import GANGame
from gandyn.nn.models.mlp import MLPDiscriminator, MLPGenerator
from gandyn.optim import Extragradient
from gandyn.theory.one_dim import uniform_latent


def fit_generator(data, latent_dim: int = 1, steps: int = 2000, *, lr: float = 1e-3, batch_size: int = 256,
                  hidden: int = 64, r1: float = 1.0, ema: float = 0.998, seed: int = 0) -> GANGame:
    """A GAN run of MLPs (G: U[0, 1]^latent_dim -> data's space) on `data` (a gandyn data source);
    returns the game, whose `generate(u, ema=True)` is the fitted generator."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
    torch.manual_seed(seed)
    (dim,) = data.shape
    G = MLPGenerator(latent_dim, dim, hidden=hidden, depth=2, activation="leaky_relu")
    D = MLPDiscriminator(dim, hidden=hidden, depth=2, activation="tanh")
    game = GANGame(G, D, data, sample_latent=uniform_latent(latent_dim, seed), batch_size=batch_size,
                   penalty="r1", penalty_weight=r1, ema=ema, seed=seed)
    opt = Extragradient(game.players, lr=lr, base="adam", betas=(0.5, 0.999))
    for _ in range(steps):
        opt.step(game)      # draws the minibatch; ends with game.after_step(), the EMA of G
    return game


def empirical_w1(x: np.ndarray, y: np.ndarray) -> float:
    """Exact Wasserstein-1 distance between two equal-size point clouds (n, d): the optimal
    matching (scipy.optimize.linear_sum_assignment) of Euclidean distances, averaged."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"x, y: expected two (n, d) arrays of one shape, got {x.shape} and {y.shape}")
    cost = cdist(x, y)
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].mean())
