"""gandyn.metrics.frechet: against pytorch-fid's scipy.linalg.sqrtm formula in float64, the
exact feature form on singular covariances, batches against loops, gradients, the cached
reference, and the argument checks."""
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn.metrics import FrechetReference, frechet_distance, frechet_distance_from_features
from gandyn.ops.frechet import METHODS


def pytorch_fid(mu1, sigma1, mu2, sigma2):
    """pytorch-fid's calculate_frechet_distance (float64 NumPy + scipy.linalg.sqrtm)."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def features(n, d, seed, offset=0.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, dtype=torch.float64, generator=g) * torch.linspace(0.3, 2.0, d, dtype=torch.float64)
    mix = torch.eye(d, dtype=torch.float64) + 0.3 * torch.randn(d, d, dtype=torch.float64, generator=g) / d ** 0.5
    return (x @ mix + offset).to(dtype)


def stats(x):
    return x.mean(0), torch.from_numpy(np.cov(x.double().numpy(), rowvar=False, ddof=1)).to(x.dtype)


@pytest.mark.parametrize("method", METHODS)
def test_matches_pytorch_fid_float64_well_conditioned(method):
    mu1, s1 = stats(features(200, 24, seed=1))
    mu2, s2 = stats(features(150, 24, seed=2, offset=0.5))
    ours = frechet_distance(mu1, s1, mu2, s2, method=method).item()
    ref = pytorch_fid(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert abs(ours - ref) <= 1e-8 * abs(ref)


def test_identical_distributions_give_zero_and_mean_shift_gives_its_square():
    mu, s = stats(features(100, 10, seed=3))
    assert abs(frechet_distance(mu, s, mu, s).item()) < 1e-11 * s.trace().item()
    shift = torch.full((10,), 0.5, dtype=torch.float64)
    assert frechet_distance(mu, s, mu + shift, s).item() == pytest.approx(10 * 0.25, rel=1e-9)


def test_gaussian_closed_form_for_scaled_covariance():
    # Σ₂ = c² Σ₁: Tr sqrt(Σ₁Σ₂) = c Tr Σ₁, so d² = (1 − c)² Tr Σ₁.
    mu, s = stats(features(60, 8, seed=4))
    c = 1.7
    expect = (1 - c) ** 2 * s.trace().item()
    for method in METHODS:
        assert frechet_distance(mu, s, mu, c * c * s, method=method).item() == pytest.approx(expect, rel=1e-10)


@pytest.mark.parametrize("n1,n2", [(5, 7), (12, 3), (2, 2)])
def test_singular_covariances_real_non_negative_and_equal_to_feature_form(n1, n2):
    # N < d: rank-deficient covariances, where sqrtm of the product is ill-posed.
    d = 16
    x1, x2 = features(n1, d, seed=5), features(n2, d, seed=6, offset=0.2)
    (mu1, s1), (mu2, s2) = stats(x1), stats(x2)
    exact = frechet_distance_from_features(x1, x2).item()
    for method in ("eigh", "jacobi"):
        dist, diag = frechet_distance(mu1, s1, mu2, s2, method=method, return_diagnostics=True)
        assert dist.item() >= 0 and dist.dtype == torch.float64
        assert dist.item() == pytest.approx(exact, rel=1e-10)
        assert diag.rank.item() <= min(n1, n2) - 1
        assert diag.min_eigenvalue.item() > -1e-12 * s1.trace().item() * s2.trace().item()
        assert 0 <= diag.clamped_mass.item() < 1e-10


def test_feature_form_matches_covariance_form_when_n_exceeds_d():
    x1, x2 = features(40, 6, seed=7), features(30, 6, seed=8, offset=1.0)
    (mu1, s1), (mu2, s2) = stats(x1), stats(x2)
    ref = pytorch_fid(mu1.numpy(), s1.numpy(), mu2.numpy(), s2.numpy())
    assert frechet_distance_from_features(x1, x2).item() == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("method", METHODS)
def test_batch_matches_loop(method):
    mus1 = torch.stack([stats(features(30, 5, seed=s))[0] for s in range(6)]).reshape(2, 3, 5)
    sig1 = torch.stack([stats(features(30, 5, seed=s))[1] for s in range(6)]).reshape(2, 3, 5, 5)
    mus2 = torch.stack([stats(features(25, 5, seed=10 + s))[0] for s in range(6)]).reshape(2, 3, 5)
    sig2 = torch.stack([stats(features(25, 5, seed=10 + s))[1] for s in range(6)]).reshape(2, 3, 5, 5)
    batched = frechet_distance(mus1, sig1, mus2, sig2, method=method)
    assert batched.shape == (2, 3)
    loop = [pytorch_fid(*(t.reshape(6, *t.shape[2:])[i].numpy() for t in (mus1, sig1, mus2, sig2)))
            for i in range(6)]
    # Newton-Schulz: float32 iterations, trace corrected to second order in their error.
    np.testing.assert_allclose(batched.reshape(-1).numpy(), loop, rtol=1e-7 if method == "newton-schulz" else 1e-9)


@settings(deadline=None, max_examples=10)
@given(d=st.integers(1, 10), batch=st.lists(st.integers(1, 2), max_size=2).map(tuple),
       dtype=st.sampled_from([torch.float32, torch.float64]), method=st.sampled_from(["eigh", "jacobi"]),
       seed=st.integers(0, 10_000))
def test_property_against_pytorch_fid(d, batch, dtype, method, seed):
    n = int(np.prod(batch)) if batch else 1
    pairs = [(stats(features(d + 8, d, seed + i)), stats(features(d + 4, d, seed + 100 + i, 0.3))) for i in range(n)]
    mu1 = torch.stack([p[0][0] for p in pairs]).reshape(*batch, d).to(dtype)
    s1 = torch.stack([p[0][1] for p in pairs]).reshape(*batch, d, d).to(dtype)
    mu2 = torch.stack([p[1][0] for p in pairs]).reshape(*batch, d).to(dtype)
    s2 = torch.stack([p[1][1] for p in pairs]).reshape(*batch, d, d).to(dtype)
    ours = frechet_distance(mu1, s1, mu2, s2, method=method)  # float64 by default
    assert ours.shape == batch and ours.dtype == torch.float64
    ref = [pytorch_fid(*(t.reshape(n, *t.shape[len(batch):])[i].double().numpy() for t in (mu1, s1, mu2, s2)))
           for i in range(n)]
    np.testing.assert_allclose(ours.reshape(-1).numpy(), ref, rtol=1e-8, atol=1e-10)


def test_gradcheck_means_and_both_covariances():
    (mu1, s1), (mu2, s2) = stats(features(20, 4, seed=9)), stats(features(20, 4, seed=10, offset=0.4))
    args = tuple(t.clone().requires_grad_() for t in (mu1, s1, mu2, s2))
    assert torch.autograd.gradcheck(lambda *a: frechet_distance(*a), args)


def test_reference_scores_equal_frechet_distance():
    mu, s = stats(features(50, 9, seed=11))
    ref = FrechetReference(mu, s)
    cands = [stats(features(n, 9, seed=20 + n)) for n in (4, 30, 60)]  # one singular candidate
    mus = torch.stack([c[0] for c in cands])
    sigs = torch.stack([c[1] for c in cands])
    scores, diag = ref.score(mus, sigs, return_diagnostics=True)
    direct = frechet_distance(mu.expand(3, 9), s.expand(3, 9, 9), mus, sigs)
    np.testing.assert_allclose(scores.numpy(), direct.numpy(), rtol=1e-10)
    assert diag.rank.tolist() == [3, 9, 9]


def test_argument_errors_name_the_argument():
    mu, s = stats(features(30, 4, seed=12))
    with pytest.raises(ValueError, match="sigma1 must be a covariance matrix"):
        frechet_distance(mu, s[:, :3], mu, s)
    with pytest.raises(ValueError, match="sigma1 and sigma2 must have one shape"):
        frechet_distance(mu, s, mu, s.expand(2, 4, 4))
    with pytest.raises(ValueError, match="mu2 must have shape"):
        frechet_distance(mu, s, mu[:3], s)
    with pytest.raises(ValueError, match="sigma2 contains non-finite"):
        frechet_distance(mu, s, mu, s.clone().fill_diagonal_(float("nan")))
    with pytest.raises(ValueError, match="mu1 contains non-finite"):
        frechet_distance(mu.clone().fill_(float("inf")), s, mu, s)
    asym = s.clone()
    asym[0, 1] += 0.1
    with pytest.raises(ValueError, match="sigma1 must be symmetric"):
        frechet_distance(mu, asym, mu, s)
    with pytest.raises(ValueError, match="sigma2 must be positive semi-definite"):
        frechet_distance(mu, s, mu, s - 2 * s.trace() * torch.eye(4, dtype=torch.float64) / 4)
    with pytest.raises(ValueError, match="method"):
        frechet_distance(mu, s, mu, s, method="sqrtm")
    with pytest.raises(ValueError, match="diagnostics"):
        frechet_distance(mu, s, mu, s, method="newton-schulz", return_diagnostics=True)
    with pytest.raises(TypeError, match="sigma1 must be a floating-point"):
        frechet_distance(mu, s.long(), mu, s)
    with pytest.raises(ValueError, match="x2 must be a feature matrix"):
        frechet_distance_from_features(features(5, 3, 0), features(1, 3, 1))
    with pytest.raises(ValueError, match="feature dimension"):
        frechet_distance_from_features(features(5, 3, 0), features(5, 4, 1))
    with pytest.raises(ValueError, match="sigma must be positive semi-definite"):
        FrechetReference(mu, -s)


def test_rank_deficient_psd_is_accepted_not_flagged():
    # A PSD covariance with exact zero eigenvalues (and rounding's tiny negative ones) passes.
    x = features(3, 12, seed=13)
    mu, s = stats(x)
    assert frechet_distance(mu, s, mu, s).item() == pytest.approx(0.0, abs=1e-10 * s.trace().item())
