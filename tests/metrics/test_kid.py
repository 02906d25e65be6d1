"""gandyn.metrics.kid: the unbiased MMD² against a direct O(n²) double loop, the subsets
against an independent numpy recomputation (np.std), unbiasedness under the null, and the
population MMD² of a Gaussian mean shift under the cubic kernel in closed form."""
import numpy as np
import pytest
import torch

from gandyn.metrics import kid, mmd2_unbiased, polynomial_kernel


def direct_mmd2(x: np.ndarray, y: np.ndarray, degree=3, gamma=None, coef0=1.0) -> float:
    """Σ_{i≠i'} k(xᵢ,xᵢ')/(m(m−1)) + Σ_{j≠j'} k(yⱼ,yⱼ')/(n(n−1)) − 2 Σ k(xᵢ,yⱼ)/(mn), by loops."""
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    k = lambda a, b: (gamma * float(a @ b) + coef0) ** degree  # noqa: E731
    m, n = len(x), len(y)
    sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    syy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j)
    sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n))
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def gaussian_shift_mmd2(d: int, shift: float) -> float:
    """Population MMD² of N(0, I_d) and N(μ, I_d), μ = shift·1, under k(x, y) = (xᵀy/d + 1)³.

    For x ~ N(a, I), y ~ N(b, I) independent, with c = aᵀb:
      E xᵀy = c,  E (xᵀy)² = d + |a|² + |b|² + c²,  E (xᵀy)³ = c³ + 3c(|a|² + |b|² + d + 2),
    and E k = 1 + 3E s + 3E s² + E s³ with s = xᵀy/d. With m = |μ|² = d·shift²:
      MMD² = E k(x,x') + E k(y,y') − 2 E k(x,y) = 3m/d + 3m²/d² + (m³ + 6m² + 3md + 6m)/d³.
    (d = 1: m³ + 9m² + 12m, the moment form 3Δ₁² + 3Δ₂² + Δ₃² of the kernel's features.)"""
    m = d * shift ** 2
    return 3 * m / d + 3 * m ** 2 / d ** 2 + (m ** 3 + 6 * m ** 2 + 3 * m * d + 6 * m) / d ** 3


def randn(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


@pytest.mark.parametrize("m,n,d,degree,gamma,coef0", [(12, 12, 3, 3, None, 1.0), (9, 15, 5, 3, None, 1.0),
                                                      (10, 8, 4, 2, 0.7, 0.5), (7, 11, 2, 1, None, 0.0)])
def test_unbiased_mmd2_matches_direct_double_loop(m, n, d, degree, gamma, coef0):
    x, y = randn(m, d, 1), randn(n, d, 2, shift=0.3)
    ref = direct_mmd2(x.numpy(), y.numpy(), degree, gamma, coef0)
    assert mmd2_unbiased(x, y, degree, gamma, coef0) == pytest.approx(ref, rel=1e-12, abs=1e-14)


def test_polynomial_kernel_values():
    x, y = randn(5, 3, 1), randn(4, 3, 2)
    np.testing.assert_allclose(polynomial_kernel(x, y).numpy(), (x.numpy() @ y.numpy().T / 3 + 1) ** 3, rtol=1e-14)


def test_one_full_subset_is_the_unbiased_mmd2_of_all_rows():
    x, y = randn(40, 6, 3), randn(40, 6, 4, shift=0.2)
    mean, std = kid(x, y, subsets=1, subset_size=40)
    assert mean == pytest.approx(direct_mmd2(x.numpy(), y.numpy()), rel=1e-12)
    assert std == 0.0


def test_subsets_match_an_independent_numpy_recomputation():
    # The subsets are torch.randperm(N)[:size] for the real set, then for the fake set, per subset.
    x, y = randn(60, 4, 5), randn(50, 4, 6, shift=0.4)
    mean, std = kid(x, y, subsets=7, subset_size=20, generator=torch.Generator().manual_seed(3))
    g = torch.Generator().manual_seed(3)
    vals = []
    for _ in range(7):
        i = torch.randperm(60, generator=g)[:20].numpy()
        j = torch.randperm(50, generator=g)[:20].numpy()
        a, b = x.numpy()[i], y.numpy()[j]
        kxx, kyy, kxy = ((a @ a.T) / 4 + 1) ** 3, ((b @ b.T) / 4 + 1) ** 3, ((a @ b.T) / 4 + 1) ** 3
        vals.append((kxx.sum() - np.trace(kxx)) / 380 + (kyy.sum() - np.trace(kyy)) / 380 - 2 * kxy.mean())
    assert mean == pytest.approx(np.mean(vals), rel=1e-12)
    assert std == pytest.approx(np.std(vals), rel=1e-10)   # ddof = 0, as torch-fidelity
    # Default generator: reproducible.
    assert kid(x, y, subsets=5, subset_size=20) == kid(x, y, subsets=5, subset_size=20)


def test_same_distribution_is_within_a_few_standard_deviations_of_zero():
    mean, std = kid(randn(600, 8, 7), randn(600, 8, 8), subsets=50, subset_size=200)
    assert std > 0 and abs(mean) < 3 * std


def test_estimator_is_unbiased_under_the_null():
    # 300 independent pairs of small samples of one distribution: the mean of MMD²_u is 0 within
    # 4 standard errors, while the biased V-statistic (diagonals kept) is clearly positive.
    u, v = [], []
    for r in range(300):
        x, y = randn(20, 2, 2 * r + 100), randn(20, 2, 2 * r + 101)
        u.append(mmd2_unbiased(x, y))
        kxx, kyy, kxy = (polynomial_kernel(a, b) for a, b in ((x, x), (y, y), (x, y)))
        v.append(float(kxx.mean() + kyy.mean() - 2 * kxy.mean()))
    se = np.std(u, ddof=1) / np.sqrt(len(u))
    assert abs(np.mean(u)) < 4 * se
    assert np.mean(v) > 10 * se


@pytest.mark.parametrize("d,shift", [(4, 0.5), (16, 0.25)])
def test_gaussian_mean_shift_matches_the_closed_form(d, shift):
    # KID on 16 independent pairs of data sets: the mean over them estimates the population
    # MMD² without bias; its standard error comes from the 16 values.
    target = gaussian_shift_mmd2(d, shift)
    vals = [kid(randn(800, d, 2 * r), randn(800, d, 2 * r + 1, shift), subsets=4, subset_size=500)[0]
            for r in range(16)]
    se = np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - target) < 4 * se
    assert abs(np.mean(vals) - target) < 0.15 * target


def test_argument_checks_name_the_argument():
    x = randn(30, 4, 0)
    with pytest.raises(ValueError, match="subset_size must be at most"):
        kid(x, x, subset_size=31)
    with pytest.raises(ValueError, match="subset_size must be an int >= 2"):
        kid(x, x, subset_size=1)
    with pytest.raises(ValueError, match="subsets must be an int >= 1"):
        kid(x, x, subsets=0, subset_size=10)
    with pytest.raises(ValueError, match="same feature dimension"):
        kid(x, randn(30, 5, 1), subset_size=10)
    with pytest.raises(ValueError, match="fake_feats must be a feature matrix"):
        kid(x, x[0], subset_size=10)
    bad = x.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="real_feats contains non-finite"):
        kid(bad, x, subset_size=10)
    with pytest.raises(ValueError, match="gamma must be a finite number > 0"):
        kid(x, x, subset_size=10, gamma=-1.0)
    with pytest.raises(ValueError, match="degree must be an int >= 1"):
        kid(x, x, subset_size=10, degree=0)
    with pytest.raises(TypeError, match="generator"):
        kid(x, x, subset_size=10, generator=3)
