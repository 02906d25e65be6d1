"""Item 3 of the theory lab: a GAN with a 1-D uniform latent learns the quantile function.
References: scipy.stats.norm.ppf (Φ⁻¹) and scipy.stats.wasserstein_distance; the mixture's
quantile function is checked against its CDF written here from scipy.stats.norm."""
import numpy as np
import pytest
import torch
from scipy.stats import norm, wasserstein_distance

from gandyn.data import Mixture
from gandyn.theory import empirical_w1, fit_generator, mixture_quantile

U = (np.arange(1000) + 0.5) / 1000


def fitted_on_grid(data, steps):
    game = fit_generator(data, 1, steps)
    with torch.no_grad():
        g = game.generate(torch.tensor(U, dtype=torch.float32)[:, None], ema=True)[:, 0].double().numpy()
    return g if g[-1] > g[0] else g[::-1]   # a decreasing G is Q(1 − u)


def test_gan_generator_of_a_uniform_latent_is_phi_inverse():
    g = fitted_on_grid(Mixture([[0.0]], 1.0), 1500)
    q = norm.ppf(U)
    # W₁(G(U), N(0, 1)) below 0.1 (N(0.3, 1) would be 0.3); G matches Φ⁻¹ on the bulk.
    assert wasserstein_distance(g, q) < 0.1
    assert np.abs(g - q)[100:900].max() < 0.25
    assert np.all(np.diff(g) > -1e-3)   # monotone: the 1-D optimal transport map


def test_mixture_quantile_inverts_the_cdf():
    data = Mixture([[-2.0], [2.0]], 0.5)
    u = np.array([1e-6, 0.01, 0.25, 0.5, 0.7, 0.999999])
    x = mixture_quantile(data, u)
    assert 0.5 * (norm.cdf(x, -2, 0.5) + norm.cdf(x, 2, 0.5)) == pytest.approx(u, abs=1e-12)
    assert x[3] == pytest.approx(0.0, abs=1e-9)   # the symmetric mixture's median
    assert mixture_quantile(Mixture([[1.0]], 2.0), u) == pytest.approx(1.0 + 2.0 * norm.ppf(u), abs=1e-9)
    with pytest.raises(ValueError, match="u"):
        mixture_quantile(data, [0.0])
    with pytest.raises(ValueError, match="data"):
        mixture_quantile(Mixture([[0.0, 0.0]], 1.0), [0.5])


def test_empirical_w1_is_the_optimal_matching():
    # Shifting a cloud by a vector t moves it by |t| when every point moves the same way (and
    # no matching does better, by the triangle inequality on the means).
    x = np.random.default_rng(0).normal(size=(200, 2))
    assert empirical_w1(x, x + [3.0, 4.0]) == pytest.approx(5.0, abs=1e-9)
    # 1-D: the matching is the sorted one, as SciPy's distance.
    a, b = np.random.default_rng(1).normal(size=(2, 300, 1))
    assert empirical_w1(a, b) == pytest.approx(wasserstein_distance(a[:, 0], b[:, 0]), rel=1e-9)
    with pytest.raises(ValueError, match="x, y"):
        empirical_w1(x, x[:10])
