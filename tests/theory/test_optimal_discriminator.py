"""Item 1 of the theory lab: D trained against a frozen G approaches D* = p/(p + p_g), and its
value approaches −log 4 + 2·JSD; the JSD and D* here are written independently of gandyn.theory
(scipy.stats.norm densities, scipy.integrate.quad)."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm

from gandyn.theory import (discriminator_value, gaussian_game, jensen_shannon, optimal_discriminator,
                           train_discriminator)


def jsd_reference(mu: float, s: float) -> float:
    def f(x):
        p, q = norm.pdf(x), norm.pdf(x, mu, s)
        m = (p + q) / 2
        return 0.5 * (p * math.log(p / m) if p > 0 else 0) + 0.5 * (q * math.log(q / m) if q > 0 else 0)
    return integrate.quad(f, -30, 30, points=[0.0, mu], limit=400)[0]


def trained_d(mu: float, s: float, steps: int = 800):
    torch.manual_seed(0)
    return train_discriminator(gaussian_game(mu, s, seed=1), steps=steps)


def d_on(game, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return torch.sigmoid(game.discriminate(torch.tensor(x, dtype=torch.float32)[:, None])).double().numpy()


@pytest.mark.parametrize("mu,s", [(1.0, 0.5), (2.0, 1.0)])
def test_trained_d_is_the_optimal_d_and_its_value_the_jsd(mu, s):
    game = trained_d(mu, s)
    x = np.linspace(-3, mu + 3 * s, 121)
    mass = (norm.pdf(x) + norm.pdf(x, mu, s)) / 2
    x = x[mass > 0.05]  # where the samples constrain D
    d_star = norm.pdf(x) / (norm.pdf(x) + norm.pdf(x, mu, s))
    assert np.abs(d_on(game, x) - d_star).max() < 0.03
    bound = -math.log(4) + 2 * jsd_reference(mu, s)
    assert discriminator_value(game) == pytest.approx(bound, abs=0.01)
    # V(G, D) <= V(G, D*) for every D; 200,000 samples put ~3e-3 of noise on the estimate.
    assert discriminator_value(game) < bound + 0.005


def test_at_p_g_equal_p_data_d_is_one_half_and_v_is_minus_log_4():
    game = trained_d(0.0, 1.0, steps=400)
    assert np.abs(d_on(game, np.linspace(-2.5, 2.5, 51)) - 0.5).max() < 0.01
    assert discriminator_value(game) == pytest.approx(-math.log(4), abs=0.005)


def test_untrained_d_is_far_from_the_optimum():
    """The tolerances above separate a converged D from one that is not."""
    game = trained_d(2.0, 1.0, steps=5)
    bound = -math.log(4) + 2 * jsd_reference(2.0, 1.0)
    assert discriminator_value(game) < bound - 0.05


@pytest.mark.parametrize("mu,s", [(0.0, 1.0), (1.0, 0.5), (3.0, 2.0), (8.0, 1.0)])
def test_jensen_shannon_quadrature_matches_the_reference(mu, s):
    q = lambda x: norm.pdf(x, mu, s)  # noqa: E731
    assert jensen_shannon(norm.pdf, q) == pytest.approx(jsd_reference(mu, s), abs=1e-7)


def test_jensen_shannon_closed_forms_on_uniforms():
    """U[0,1] against U[a, a+1]: JSD = a·log 2 for 0 <= a <= 1 (the non-overlapping mass), log 2 beyond."""
    u = lambda lo: (lambda x: 1.0 if lo <= x <= lo + 1 else 0.0)  # noqa: E731
    for a in (0.0, 0.25, 0.5, 1.0, 2.0):
        got = jensen_shannon(u(0.0), u(a), -1, 4, points=(0.0, 1.0, a, a + 1))
        assert got == pytest.approx(min(a, 1.0) * math.log(2), abs=1e-8)


def test_optimal_discriminator_closed_form():
    x = np.array([-1.0, 0.0, 2.0])
    got = optimal_discriminator(norm.pdf, lambda t: norm.pdf(t, 1.0, 1.0), x)
    # Equal variances: log D*/(1 − D*) = log p/q = (1 − 2x)/2.
    assert got == pytest.approx(1 / (1 + np.exp(-(1 - 2 * x) / 2)), rel=1e-12)
    assert optimal_discriminator(lambda t: 0.0, lambda t: 0.0, [3.0]) == pytest.approx([0.5])


def test_train_discriminator_argument_checks():
    game = gaussian_game(0.0, 1.0)
    with pytest.raises(ValueError, match="steps"):
        train_discriminator(game, steps=0)
    with pytest.raises(ValueError, match="final_lr"):
        train_discriminator(game, steps=1, lr=1e-3, final_lr=1e-2)
    with pytest.raises(ValueError, match="mu, s"):
        gaussian_game(0.0, -1.0)
    with pytest.raises(ValueError, match="game"):
        discriminator_value(gaussian_game(0.0, 1.0, loss="hinge"))
