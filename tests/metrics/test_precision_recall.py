"""gandyn.metrics.precision_recall: against a brute-force scipy.spatial.distance.cdist
implementation (several k and chunk sizes), closed forms (identical sets, far sets, 1-D sets
counted by hand, the closed-ball convention on ties) and the argument checks."""
import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from gandyn.metrics import knn_radii, precision_recall


def reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    """Kynkäänniemi et al. / Naeem et al. by brute force on the full distance matrices."""
    def radii(x):
        d = cdist(x, x)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]
    r_real, r_fake = radii(real), radii(fake)
    d = cdist(real, fake)                                  # (N, M)
    in_real = d <= r_real[:, None]
    return {"precision": in_real.any(0).mean(), "recall": (d <= r_fake[None, :]).any(1).mean(),
            "density": in_real.sum() / (k * fake.shape[0]), "coverage": in_real.any(1).mean()}


def t(x):
    return torch.tensor(x, dtype=torch.float64).reshape(len(x), -1)


@pytest.mark.parametrize("n,m,d,k,chunk", [(60, 45, 3, 1, 7), (80, 90, 5, 3, 1024), (50, 50, 8, 5, 16),
                                           (40, 70, 2, 3, 33)])
def test_matches_brute_force_scipy(n, m, d, k, chunk):
    rng = np.random.default_rng(n * m + k)
    real = rng.normal(size=(n, d))
    # Half the fake samples near the real ones (narrower), half shifted away.
    fake = np.concatenate([rng.normal(size=(m // 2, d)) * 0.7, rng.normal(size=(m - m // 2, d)) + 4.0])
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk_size=chunk)
    ref = reference(real, fake, k)
    assert got == pytest.approx(ref, abs=1e-12)
    assert 0 < got["precision"] < 1  # a non-degenerate case: the shifted half lies off the real manifold


def test_knn_radii_match_scipy():
    x = np.random.default_rng(1).normal(size=(37, 4))
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    for k in (1, 2, 6):
        got = knn_radii(torch.from_numpy(x), k=k, chunk_size=5)
        np.testing.assert_allclose(got.numpy(), np.sort(d, 1)[:, k - 1], rtol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_identical_sets(k):
    x = torch.randn(200, 6, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
    got = precision_recall(x, x.clone(), k=k, chunk_size=64)
    # Each sample is its own fake twin; without ties a ball holds the sample and its k neighbours.
    assert got == pytest.approx({"precision": 1.0, "recall": 1.0, "density": (k + 1) / k, "coverage": 1.0})


def test_far_fake_set_scores_zero():
    x = torch.randn(100, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    got = precision_recall(x, x + 1000.0, k=3)
    assert got == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}


def test_one_dimensional_case_counted_by_hand():
    # k = 1. Real 0, 1, 2, 3, 10: radii 1, 1, 1, 1, 7. Fake 0.5, 2.5, 30, 31: radii 2, 2, 1, 1.
    # precision: 0.5 and 2.5 lie in real balls, 30 and 31 do not (20 > 7)      → 2/4
    # density:   0.5 is in the balls of 0 and 1, 2.5 in those of 2 and 3        → 4/(1·4)
    # coverage:  0, 1, 2, 3 have a fake within 1; 10's nearest fake is 7.5 away → 4/5
    # recall:    0, 1, 2, 3 lie within 2 of 0.5 or 2.5; 10 is 7.5 from 2.5 and 20 from 30 → 4/5
    got = precision_recall(t([0, 1, 2, 3, 10]), t([0.5, 2.5, 30, 31]), k=1)
    assert got == pytest.approx({"precision": 0.5, "recall": 0.8, "density": 1.0, "coverage": 0.8}, abs=1e-15)


def test_balls_are_closed_and_duplicates_are_neighbours():
    # k = 1, real 0, 0, 5: radii 0, 0, 5 (a duplicate is a neighbour at distance 0).
    # Fake 0 lies on the balls of both zeros (distance 0 <= 0) and on the boundary of 5's
    # (distance 5 <= 5): in 3 balls. Fake 100 in none. With open balls precision would be 0.
    got = precision_recall(t([0, 0, 5]), t([0, 100]), k=1)
    assert got["precision"] == 0.5
    assert got["density"] == 1.5
    assert got["coverage"] == pytest.approx(1.0)   # every real ball holds fake 0
    assert got["recall"] == pytest.approx(1.0)     # fake radii are 100: they hold every real sample


def test_float32_inputs_are_computed_in_float64():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(50, 3)).astype(np.float32), rng.normal(size=(40, 3)).astype(np.float32)
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=2)
    assert got == pytest.approx(reference(real.astype(np.float64), fake.astype(np.float64), 2), abs=1e-12)


def test_argument_checks_name_the_argument():
    x = torch.randn(10, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="real_feats must be a feature matrix"):
        precision_recall(x[:3], x, k=3)
    with pytest.raises(ValueError, match="fake_feats must be a feature matrix"):
        precision_recall(x, x[:3], k=3)
    with pytest.raises(ValueError, match="fake_feats must be a feature matrix"):
        precision_recall(x, x[0], k=3)
    with pytest.raises(ValueError, match="same feature dimension"):
        precision_recall(x, torch.randn(10, 4, dtype=torch.float64))
    bad = x.clone()
    bad[2, 1] = float("inf")
    with pytest.raises(ValueError, match="fake_feats contains non-finite"):
        precision_recall(x, bad)
    with pytest.raises(ValueError, match="k must be an int >= 1"):
        precision_recall(x, x, k=0)
    with pytest.raises(ValueError, match="chunk_size"):
        precision_recall(x, x, chunk_size=0)
    with pytest.raises(TypeError, match="real_feats"):
        precision_recall(x.long(), x)


def test_permuted_identical_set_resolves_ties_exactly():
    # Ties between d(x_i, x_j) and d(x_j, x_i) are decided by the symmetric direct formula.
    x = torch.randn(150, 9, generator=torch.Generator().manual_seed(7), dtype=torch.float64) * 3 + 50
    perm = torch.randperm(150, generator=torch.Generator().manual_seed(8))
    got = precision_recall(x, x[perm], k=4, chunk_size=32)
    assert got == {"precision": 1.0, "recall": 1.0, "density": 5 / 4, "coverage": 1.0}


def test_collapsed_fake_set_matches_brute_force():
    # A generator stuck on a few points: many exact duplicates (fake radii 0).
    rng = np.random.default_rng(5)
    real = rng.normal(size=(60, 4))
    fake = np.concatenate([np.repeat(real[:1], 30, 0), np.repeat(rng.normal(size=(1, 4)), 25, 0),
                           rng.normal(size=(5, 4))])
    for k in (1, 3):
        got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=k, chunk_size=16)
        assert got == pytest.approx(reference(real, fake, k), abs=1e-12)


def test_large_common_offset_matches_brute_force():
    rng = np.random.default_rng(6)
    real, fake = rng.normal(size=(70, 5)) + 1e4, rng.normal(size=(50, 5)) * 0.8 + 1e4 + 0.3
    got = precision_recall(torch.from_numpy(real), torch.from_numpy(fake), k=3, chunk_size=20)
    ref = reference(real - 1e4, fake - 1e4, 3)  # offsets cancel in distances; scipy on the small numbers
    assert got == pytest.approx(ref, abs=1e-12)
