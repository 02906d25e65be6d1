"""Item 4 of the theory lab: a WGAN-GP critic trained against a frozen q estimates W₁(p, q).
References: the closed form W₁(N(0, 1), N(Δ, 1)) = |Δ| and scipy.stats.wasserstein_distance on
large samples; JSD's saturation at log 2 by scipy.integrate.quad."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm, wasserstein_distance

from gandyn.theory import discriminator_value, gaussian_game, one_dim_discriminator, train_discriminator

LAMBDA = 100.0


def critic(mu: float, s: float, steps: int = 500) -> float:
    torch.manual_seed(0)
    game = gaussian_game(mu, s, loss="wasserstein", penalty="wgan-gp", penalty_weight=LAMBDA, seed=2,
                         D=one_dim_discriminator(activation="leaky_relu"))
    return discriminator_value(train_discriminator(game, steps))


def test_critic_of_shifted_gaussians_gives_the_shift():
    # The penalized optimum is linear, f = a·x, maximizing Δ·a − λ(a − 1)²: a = 1 + Δ/(2λ), so
    # E_p f − E_q f = Δ·a = W₁ + Δ²/(2λ) = 3.045 at Δ = 3.
    est = critic(3.0, 1.0)
    assert est == pytest.approx(3.0 + 9 / (2 * LAMBDA), abs=0.015)
    assert est == pytest.approx(3.0, abs=0.06)


def test_critic_matches_scipy_wasserstein_distance():
    rng = np.random.default_rng(0)
    ref = wasserstein_distance(rng.normal(size=10 ** 6), rng.normal(1.0, 0.5, size=10 ** 6))
    assert critic(1.0, 0.5) == pytest.approx(ref, abs=0.03)


def test_an_untrained_critic_does_not():
    assert abs(critic(3.0, 1.0, steps=3) - 3.0) > 0.5


def test_jsd_saturates_at_log_2_while_w1_grows():
    def jsd(d):
        f = lambda x: sum(0.5 * a * math.log(2 * a / (norm.pdf(x) + norm.pdf(x, d)))  # noqa: E731
                          for a in (norm.pdf(x), norm.pdf(x, d)) if a > 0)
        return integrate.quad(f, -40, 40 + d, points=[0.0, d], limit=400)[0]
    assert jsd(10.0) == pytest.approx(math.log(2), abs=1e-6)
    assert jsd(20.0) == pytest.approx(math.log(2), abs=1e-12)
    from gandyn.theory import jensen_shannon
    assert jensen_shannon(norm.pdf, lambda x: norm.pdf(x, 10.0)) == pytest.approx(jsd(10.0), abs=1e-7)
