"""Item 7 of the theory lab: the decision surface that pushes a collapsed G off its mode is the
optimal D of item 1. G frozen on one mode of the 8-Gaussian ring, G = N(m_k, σ²I) (a generator
that collapsed there), D trained to convergence approaches D* = p_data/(p_data + p_g): at m_k
p_data = p_g/8 (the mode's weight), so D* = (1/8)/(1/8 + 1) = 1/9, and at the seven other modes
p_g vanishes, so D* = 1. The densities are scipy.stats.multivariate_normal's, written
independently of gandyn.data.Mixture."""
import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from gandyn.data import ring
from gandyn.games.gan import GANGame
from gandyn.nn.models.mlp import MLPDiscriminator
from gandyn.theory import AffineGenerator, discriminator_value, train_discriminator

SIGMA = 0.01   # the ring's mode std
MODES = np.array([[math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)] for i in range(8)])


def densities(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    cov = SIGMA ** 2 * np.eye(2)
    p_data = sum(multivariate_normal(m, cov).pdf(x) for m in MODES) / 8
    return p_data, multivariate_normal(MODES[k], cov).pdf(x)


def collapsed_game(k: int, steps: int) -> GANGame:
    torch.manual_seed(k)
    game = GANGame(AffineGenerator(MODES[k].tolist(), SIGMA), MLPDiscriminator(in_dim=2, hidden=64, activation="tanh"),
                   ring(), batch_size=512, seed=k)
    return train_discriminator(game, steps)


@pytest.mark.parametrize("k", [0, 5])
def test_d_against_a_collapsed_generator_is_one_ninth_on_its_mode_and_one_elsewhere(k):
    game = collapsed_game(k, steps=1500)
    with torch.no_grad():
        d = torch.sigmoid(game.discriminate(torch.tensor(MODES, dtype=torch.float32))).double().numpy()
    p, q = densities(MODES, k)
    d_star = p / (p + q)
    assert d_star[k] == pytest.approx(1 / 9, abs=1e-12)
    assert np.delete(d_star, k) == pytest.approx(1.0, abs=1e-12)
    # Measured over 8 seeds at 1500 steps: |D(m_k) − 1/9| <= 0.006, D >= 0.995 at the other modes.
    assert d[k] == pytest.approx(1 / 9, abs=0.01)
    assert np.delete(d, k).min() > 0.99
    # V(G, D*) = (1/8)·log(1/9) + log(8/9) (the collapsed mode's mass under p_data and p_g), and
    # V(G, D) <= V(G, D*); 200,000 samples put ~3e-3 of noise on the estimate.
    v_star = math.log(1 / 9) / 8 + math.log(8 / 9)
    assert discriminator_value(game) == pytest.approx(v_star, abs=0.01)
    assert discriminator_value(game) < v_star + 0.005


def test_an_untrained_d_does_not_see_the_collapse():
    """The tolerances above separate a converged D from one that is not."""
    game = collapsed_game(0, steps=5)
    with torch.no_grad():
        d = torch.sigmoid(game.discriminate(torch.tensor(MODES, dtype=torch.float32))).double().numpy()
    assert abs(d[0] - 1 / 9) > 0.05 and np.delete(d, 0).min() < 0.9   # measured: 0.25, 0.35


def test_affine_generator_in_two_dimensions():
    G = AffineGenerator([1.0, -2.0], 0.5)
    assert G.latent_dim == 2
    z = torch.tensor([[0.0, 0.0], [2.0, -2.0]])
    assert G(z).tolist() == [[1.0, -2.0], [2.0, -3.0]]
    for bad in ([[1.0, 2.0]], [], [1.0, math.inf], "a"):
        with pytest.raises(ValueError, match="mu, s"):
            AffineGenerator(bad, 1.0)
