"""gandyn.data.mixtures: the centers the papers specify, sample statistics within the
tolerances sampling theory fixes (binomial counts, standard errors of means, chi-square of
the squared deviations), determinism, independence from the global RNG, the exact density."""
import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given
from hypothesis import strategies as st
from scipy.integrate import dblquad

from gandyn.data import Mixture, grid, grid16, ring

Z = 5.0  # tolerance in standard deviations: a false failure has probability ~6e-7 per check


def check_statistics(mix, n, seed):
    """Per component k: n_k ~ Binomial(n, 1/K); mean(x − c_k) ~ N(0, σ²/n_k) per coordinate;
    Σ|x − c_k|²/σ² ~ χ²(d·n_k) (mean d·n_k, sd √(2 d n_k)). Labels are the nearest centers."""
    x, y = mix.sample(n, torch.Generator().manual_seed(seed))
    assert x.shape == (n, *mix.shape) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.shape == (n,) and y.dtype == torch.int64
    K, d, s = mix.num_classes, mix.shape[0], mix.sigma
    p = 1 / K
    counts = torch.bincount(y, minlength=K)
    assert counts.shape == (K,)
    assert (counts - n * p).abs().max() <= Z * math.sqrt(n * p * (1 - p)) + 1
    dev = x.double() - mix.centers[y]
    for k in range(K):
        nk = int(counts[k])
        dk = dev[y == k]
        assert dk.mean(0).abs().max() <= Z * s / math.sqrt(nk)
        chi2 = (dk ** 2).sum() / s ** 2
        assert abs(chi2 - d * nk) <= Z * math.sqrt(2 * d * nk)
    return x, y


def test_ring_defaults_centers_exact():
    m = ring()
    assert m.num_classes == 8 and m.shape == (2,) and m.sigma == 0.01
    expected = torch.tensor([[math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8)] for k in range(8)],
                            dtype=torch.float64)
    assert m.centers.dtype == torch.float64
    assert torch.equal(m.centers, expected)
    assert torch.equal(m.modes, m.centers)
    assert torch.allclose(m.centers.norm(dim=1), torch.ones(8, dtype=torch.float64), atol=1e-15, rtol=0)


def test_grid_defaults_centers_exact():
    m = grid()
    assert m.num_classes == 25 and m.sigma == 0.05
    v = [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert m.centers.tolist() == [[a, b] for a in v for b in v]


def test_grid16_defaults_centers_exact():
    m = grid16()
    assert m.num_classes == 16 and m.sigma == 0.02
    v = [-1.5, -0.5, 0.5, 1.5]
    assert m.centers.tolist() == [[a, b] for a in v for b in v]


@pytest.mark.parametrize("make", [ring, grid, grid16], ids=["ring", "grid", "grid16"])
def test_default_protocol_statistics(make):
    mix = make()
    x, y = check_statistics(mix, 20_000, seed=0)
    # Every sample lies nearest to its own component's center (modes are ≥ 15σ apart).
    nearest = torch.cdist(x.double(), mix.centers).argmin(1)
    assert torch.equal(nearest, y)


@given(n_modes=st.integers(1, 12), radius=st.floats(0.5, 3.0), sigma=st.floats(0.005, 0.3),
       seed=st.integers(0, 2**31 - 1))
def test_ring_any_parameters(n_modes, radius, sigma, seed):
    mix = ring(n_modes=n_modes, radius=radius, sigma=sigma)
    assert mix.num_classes == n_modes and mix.sigma == sigma
    for k in range(n_modes):
        a = 2 * math.pi * k / n_modes
        assert mix.centers[k].tolist() == [radius * math.cos(a), radius * math.sin(a)]
    check_statistics(mix, 3000, seed)


@given(values=st.lists(st.integers(-6, 6), min_size=1, max_size=4, unique=True),
       sigma=st.floats(0.01, 0.5), seed=st.integers(0, 2**31 - 1))
def test_grid_any_values(values, sigma, seed):
    mix = grid(values=values, sigma=sigma)
    V = len(values)
    assert mix.num_classes == V * V
    for i in range(V):
        for j in range(V):
            assert mix.centers[i * V + j].tolist() == [float(values[i]), float(values[j])]
    check_statistics(mix, 3000, seed)


def test_deterministic_given_generator_and_independent_of_global_rng():
    mix = grid()
    torch.manual_seed(1)
    a = mix.sample(500, torch.Generator().manual_seed(7))
    torch.manual_seed(2)
    state = torch.get_rng_state()
    b = mix.sample(500, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG was not touched
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    g = torch.Generator().manual_seed(7)
    first, second = mix.sample(500, g), mix.sample(500, g)
    assert torch.equal(first[0], a[0]) and not torch.equal(second[0], first[0])
    c = mix.sample(500, torch.Generator().manual_seed(8))
    assert not torch.equal(c[0], a[0])


def test_sample_draws_components_then_noise_from_the_generator():
    mix = ring(n_modes=5, sigma=0.1)
    g = torch.Generator().manual_seed(3)
    x, y = mix.sample(64, g)
    g2 = torch.Generator().manual_seed(3)
    k = torch.randint(5, (64,), generator=g2)
    noise = torch.randn(64, 2, generator=g2, dtype=torch.float64)
    assert torch.equal(y, k)
    assert torch.equal(x, (mix.centers[k] + 0.1 * noise).float())


def test_sample_zero_and_global_rng():
    x, y = ring().sample(0)
    assert x.shape == (0, 2) and y.shape == (0,)
    torch.manual_seed(5)
    a = ring().sample(10)
    torch.manual_seed(5)
    b = ring().sample(10)
    assert torch.equal(a[0], b[0])


def test_log_prob_integrates_to_one():
    mix = Mixture([[-1.0, 0.0], [1.0, 0.5]], sigma=0.4)

    def density(y, x):
        return math.exp(mix.log_prob(torch.tensor([x, y], dtype=torch.float64)).item())

    # The box reaches ≥ 7.5σ past every center: the mass outside is < 1e-13.
    total, err = dblquad(density, -4, 4, -4, 4.5, epsabs=1e-11, epsrel=1e-11)
    assert abs(total - 1) < 1e-8


@pytest.mark.parametrize("make", [ring, grid, grid16], ids=["ring", "grid", "grid16"])
def test_log_prob_matches_scipy_mixture(make):
    mix = make(sigma=0.3)
    pts = np.random.default_rng(0).uniform(-5, 5, size=(200, 2))
    comps = np.stack([scipy.stats.multivariate_normal(c, 0.09 * np.eye(2)).pdf(pts) for c in mix.centers.numpy()])
    expected = np.log(comps.mean(0))
    got = mix.log_prob(torch.from_numpy(pts))
    assert got.dtype == torch.float64 and got.shape == (200,)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=1e-12)
    # batch dims broadcast; float32 input is read in float64
    assert mix.log_prob(torch.from_numpy(pts).reshape(10, 20, 2)).shape == (10, 20)
    assert torch.equal(mix.log_prob(torch.from_numpy(pts).float()), mix.log_prob(torch.from_numpy(pts).float().double()))


def test_log_prob_far_from_modes_is_finite():
    # logsumexp keeps far-away log densities exact instead of log(0) = −∞
    mix = ring(sigma=0.01)
    lp = mix.log_prob(torch.tensor([[100.0, 0.0]]))
    expected = -(99.0 ** 2) / (2 * 1e-4) - math.log(8) - math.log(2 * math.pi * 1e-4)
    assert math.isfinite(lp.item()) and abs(lp.item() - expected) / abs(expected) < 1e-9


def test_mixture_general_dimension_and_repr():
    mix = Mixture(torch.zeros(3, 4), 1.0)
    assert mix.shape == (4,) and mix.num_classes == 3
    check_statistics(mix, 3000, seed=1)
    r = repr(ring())
    assert r.startswith("Mixture(") and "n_modes=8" in r and "sigma=0.01" in r


@pytest.mark.parametrize("call, arg", [
    (lambda: ring(sigma=0), "sigma"),
    (lambda: ring(sigma=-1), "sigma"),
    (lambda: ring(sigma=float("nan")), "sigma"),
    (lambda: ring(sigma="x"), "sigma"),
    (lambda: ring(n_modes=0), "n_modes"),
    (lambda: ring(n_modes=2.5), "n_modes"),
    (lambda: ring(n_modes=True), "n_modes"),
    (lambda: ring(radius=0), "radius"),
    (lambda: ring(radius=float("inf")), "radius"),
    (lambda: grid(values=()), "values"),
    (lambda: grid(values=(0, float("inf"))), "values"),
    (lambda: grid(values=(1, 1)), "values"),
    (lambda: grid(values=None), "values"),
    (lambda: grid16(sigma=-0.1), "sigma"),
    (lambda: Mixture([1.0, 2.0], 0.1), "centers"),
    (lambda: Mixture(torch.empty(0, 2), 0.1), "centers"),
    (lambda: Mixture([[0.0, float("nan")]], 0.1), "centers"),
    (lambda: ring().sample(-1), "n"),
    (lambda: ring().sample(2.0), "n"),
    (lambda: ring().log_prob(torch.zeros(3, 3)), "x"),
])
def test_argument_errors_name_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}: expected"):
        call()
