"""Item 6 of the theory lab: the Inception Score's bounds are reached exactly (float64 KL form):
N one-hot posteriors over N distinct classes give N, identical posteriors give 1, and every
set of posteriors over K classes scores in [1, K]."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from gandyn.metrics import inception_score


def test_three_one_hot_rows_give_three():
    # exp(KL) with KL = log 3 in float64: 3 up to the one rounding of exp(log 3) (3 + 4.4e-16).
    mean, std = inception_score(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1]]), splits=1)
    assert abs(mean - 3.0) <= 2 * math.ulp(3.0) and std == 0.0


@given(n=st.integers(1, 200), seed=st.integers(0, 2 ** 16), float32=st.booleans())
def test_n_one_hot_posteriors_over_n_distinct_classes_give_n(n, seed, float32):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    probs = torch.eye(n, dtype=torch.float32 if float32 else torch.float64)[perm]
    mean, std = inception_score(probs, splits=1)
    assert mean == pytest.approx(n, rel=1e-13) and std == 0.0


@given(n=st.integers(1, 100), k=st.integers(1, 50))
def test_uniform_posteriors_give_one(n, k):
    assert inception_score(torch.full((n, k), 1.0 / k), splits=1)[0] == pytest.approx(1.0, abs=1e-13)


@given(n=st.integers(2, 60), k=st.integers(2, 12), alpha=st.floats(0.05, 5.0), seed=st.integers(0, 2 ** 16))
def test_any_posteriors_score_between_one_and_k(n, k, alpha, seed):
    probs = np.random.default_rng(seed).dirichlet(np.full(k, alpha), size=n)
    mean = inception_score(torch.from_numpy(probs), splits=1)[0]
    assert 1.0 - 1e-12 <= mean <= k + 1e-12
    # Closed form: IS = exp(H(p(y)) − E_x H(p(y|x))), written here with numpy.
    ent = lambda p: -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0), axis=-1)  # noqa: E731
    assert mean == pytest.approx(math.exp(ent(probs.mean(0)) - ent(probs).mean()), rel=1e-10)
