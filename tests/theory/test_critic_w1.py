"""Item 4 of the theory lab: a WGAN-GP critic trained against a frozen q estimates W₁(p, q).
References: the closed form W₁(N(0, 1), N(Δ, 1)) = |Δ| and scipy.stats.wasserstein_distance on
large samples; JSD's saturation at log 2 by scipy.integrate.quad."""
import math

import numpy as np
import pytest
import torch
from scipy import integrate
from scipy.stats import norm, wasserstein_distance

from gandyn.data import Mixture
from gandyn.theory import (discriminator_value, gaussian_game, one_dim_discriminator, regress_discriminator,
                           train_discriminator)

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


# ---- the symmetric pair: a genuine failure of the penalized critic ------------------------------

def symmetric_pair_critic(lam: float, seed: int, warm_start: bool = False):
    """p = ½N(−2, 0.5²) + ½N(2, 0.5²) against the frozen q = N(0, 1)."""
    torch.manual_seed(seed)
    game = gaussian_game(0.0, 1.0, Mixture([[-2.0], [2.0]], 0.5), loss="wasserstein", penalty="wgan-gp",
                         penalty_weight=lam, seed=seed, D=one_dim_discriminator(activation="leaky_relu"))
    if warm_start:
        regress_discriminator(game, lambda x: x.abs(), 500)
    return train_discriminator(game, 800)


def symmetric_pair_w1() -> float:
    rng = np.random.default_rng(0)
    p = np.where(rng.random(10 ** 6) < 0.5, -2.0, 2.0) + 0.5 * rng.normal(size=10 ** 6)
    return wasserstein_distance(p, rng.normal(size=10 ** 6))


@pytest.mark.parametrize("lam,seed", [(10.0, 0), (10.0, 1), (10.0, 2), (100.0, 0)])
def test_critic_of_a_symmetric_pair_stays_near_the_best_linear_critic(lam, seed):
    """E_p x = E_q x = 0, so every linear critic scores E_p f − E_q f = 0 while W₁ = 1.20
    (the critic |x|). The penalty pulls |f'| to 1 before f has bent, and from a linear f with
    slope ±1 bending towards |x| must cross |f'| < 1: training stays by the linear critic, at a
    value far below W₁ (measured 0.072–0.086 over 5 seeds at λ = 10, Gulrajani et al.'s; 0.015
    at λ = 100; unchanged by 3,000 steps of Adam(1e-4, β = (0, 0.9)) or a 512×3 MLP)."""
    game = symmetric_pair_critic(lam, seed)
    assert symmetric_pair_w1() == pytest.approx(1.2010, abs=2e-3)
    assert 0 <= discriminator_value(game) < 0.12
    x = torch.linspace(-2.5, 2.5, 51)[:, None].requires_grad_(True)
    slope, = torch.autograd.grad(game.discriminate(x).sum(), x)
    assert float(slope.abs().min()) > 0.8 and bool((slope > 0).all() or (slope < 0).all())  # linear-like


def test_warm_started_at_the_optimal_critic_the_penalized_objective_keeps_it():
    """The failure is the path, not the objective: started at f = |x| the same training stays
    there and estimates W₁ (+ the soft penalty's small excess)."""
    est = discriminator_value(symmetric_pair_critic(100.0, 0, warm_start=True))
    assert est == pytest.approx(symmetric_pair_w1(), abs=0.02)


def test_regress_discriminator_fits_the_target_and_checks_its_arguments():
    game = regress_discriminator(gaussian_game(0.0, 1.0, loss="wasserstein"), lambda x: x.abs(), 500)
    x = torch.linspace(-2, 2, 9)[:, None]
    with torch.no_grad():
        assert (game.discriminate(x) - x[:, 0].abs()).abs().max() < 0.1
    with pytest.raises(ValueError, match="steps"):
        regress_discriminator(game, lambda x: x, 0)
    with pytest.raises(ValueError, match="target"):
        regress_discriminator(game, 1.0, 10)
