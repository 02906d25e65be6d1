"""The 1-D games of the theory lab: known densities, a generator with two parameters, a small D.

    game = gaussian_game(mu=1.0, s=0.5)          # p_data = N(0, 1), G(z) = μ + s·z, z ~ N(0, 1)
    train_discriminator(game, steps=2000)         # gandyn.theory.frozen_generator

Real data is a gandyn.data.Mixture in one dimension (N(0, 1) is Mixture([[0.]], 1.0)), so its
density is exact (`Mixture.log_prob`) and its samples come from the game's own generator.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gandyn.data import Mixture
from gandyn.games.gan import GANGame
from gandyn.nn.models.mlp import MLPDiscriminator


class AffineGenerator(nn.Module):
    """G(z) = μ + s·z for z (B, d): pushes N(0, I) forward to N(μ, s²I). μ is a number (d = 1)
    or a sequence of d numbers (e.g. one mode of the 2-D ring: a generator that collapsed there)."""

    def __init__(self, mu=0.0, s: float = 1.0) -> None:
        super().__init__()
        try:
            m = torch.tensor(mu, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            m = torch.tensor(math.nan)
        if m.ndim > 1 or m.numel() < 1 or not bool(torch.isfinite(m).all()) or not (math.isfinite(s) and s > 0):
            raise ValueError(f"mu, s: expected a finite number or sequence mu and s > 0, got mu={mu!r}, s={s!r}")
        self.latent_dim, self.num_classes = m.numel(), 0
        self.mu = nn.Parameter(m)
        self.s = nn.Parameter(torch.tensor(float(s)))

    def forward(self, z: Tensor) -> Tensor:
        return self.mu + self.s * z


def standard_normal() -> Mixture:
    """p_data = N(0, 1), as a 1-D data source with an exact density."""
    return Mixture([[0.0]], 1.0)


def mixture_pdf(data: Mixture):
    """The exact density x -> p(x) of a 1-D Mixture, as a float function (for SciPy quadrature)."""
    if data.shape != (1,):
        raise ValueError(f"data: expected a 1-D mixture, got samples of shape {data.shape}")
    return lambda x: float(data.log_prob(torch.tensor([float(x)])).exp())


def one_dim_discriminator(hidden: int = 64, depth: int = 2, activation: str = "tanh") -> MLPDiscriminator:
    """A small smooth MLP D: R -> R (logits). tanh units: the optimal D's logit log p/q is smooth."""
    return MLPDiscriminator(in_dim=1, hidden=hidden, depth=depth, activation=activation)


def gaussian_game(mu: float, s: float, data: Mixture | None = None, *, loss: str = "non-saturating",
                  D: nn.Module | None = None, batch_size: int = 512, seed: int = 0, **game_args) -> GANGame:
    """A GANGame of G(z) = μ + s·z against `data` (N(0, 1) by default) and a small MLP D.
    `game_args` go to GANGame (penalty, penalty_weight, label_smoothing, ...)."""
    return GANGame(AffineGenerator(mu, s), D if D is not None else one_dim_discriminator(),
                   data if data is not None else standard_normal(), loss=loss, batch_size=batch_size,
                   seed=seed, **game_args)


def uniform_latent(dim: int, seed: int = 0):
    """n -> U[0, 1]^dim latents (n, dim), from a torch.Generator of their own (for GANGame's
    sample_latent: the uniform latent of "a generator is a quantile function")."""
    g = torch.Generator().manual_seed(seed)
    return lambda n: torch.rand(n, dim, generator=g)
