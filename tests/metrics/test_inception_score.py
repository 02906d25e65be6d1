"""gandyn.metrics.inception_score: closed forms (one-hot over distinct classes gives their
number, identical posteriors give 1), a scipy.stats.entropy reference with uneven
consecutive splits, and the argument checks."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from gandyn.metrics import inception_score


def reference(probs: np.ndarray, splits: int) -> tuple[float, float]:
    """Salimans et al.'s numpy code: consecutive chunks, exp(mean KL(p(y|x) ‖ p(y))), np.std."""
    n = probs.shape[0]
    scores = []
    for i in range(splits):
        part = probs[i * n // splits:(i + 1) * n // splits]
        py = part.mean(0)
        scores.append(math.exp(np.mean([scipy.stats.entropy(p, py) for p in part])))
    return float(np.mean(scores)), float(np.std(scores))


def test_one_hot_over_distinct_classes_gives_their_number():
    assert inception_score(torch.eye(3), splits=1) == pytest.approx((3.0, 0.0), abs=1e-12)
    # 10 one-hot rows over 10 classes in 2 consecutive chunks of 5 distinct classes: 5 each.
    assert inception_score(torch.eye(10, dtype=torch.float64), splits=2) == pytest.approx((5.0, 0.0), abs=1e-12)


def test_one_hot_with_repeats_is_exp_entropy_of_the_class_histogram():
    # Confident posteriors: IS = exp(H(p(y))); classes (0, 0, 1, 2) give p(y) = (1/2, 1/4, 1/4).
    probs = torch.eye(3)[[0, 0, 1, 2]]
    h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))
    assert inception_score(probs, splits=1)[0] == pytest.approx(math.exp(h), rel=1e-12)


def test_identical_posteriors_give_one():
    assert inception_score(torch.full((20, 7), 1 / 7), splits=4) == pytest.approx((1.0, 0.0), abs=1e-12)
    p = torch.tensor([0.7, 0.2, 0.1]).repeat(9, 1)
    assert inception_score(p, splits=3) == pytest.approx((1.0, 0.0), abs=1e-12)


@pytest.mark.parametrize("n,k,splits", [(31, 5, 3), (100, 10, 10), (50, 4, 1)])
def test_matches_scipy_entropy_reference(n, k, splits):
    rng = np.random.default_rng(n + k)
    probs = rng.dirichlet(np.full(k, 0.3), size=n)
    probs[0, 0], probs[0, 1:] = 1.0, 0.0  # an exact zero: 0 · log 0 = 0
    mean, std = inception_score(torch.from_numpy(probs), splits=splits)
    ref_mean, ref_std = reference(probs, splits)
    assert mean == pytest.approx(ref_mean, rel=1e-12)
    assert std == pytest.approx(ref_std, rel=1e-9, abs=1e-12)
    assert 1.0 <= mean <= k


def test_float32_input_is_accumulated_in_float64():
    rng = np.random.default_rng(0)
    p32 = torch.from_numpy(rng.dirichlet(np.ones(10), size=64)).float()
    q = p32.double().numpy()
    q /= q.sum(1, keepdims=True)  # rows renormalized in float64, as documented
    assert inception_score(p32, splits=2) == pytest.approx(reference(q, 2), rel=1e-12)


@pytest.mark.parametrize("probs,splits,match", [
    (torch.ones(5) / 5, 1, "probs must be a matrix"),
    (torch.tensor([[0.5, 0.5], [1.5, -0.5]]), 1, "probs must be non-negative"),
    (torch.randn(4, 3), 1, "probs"),
    (torch.tensor([[0.2, 0.2], [0.5, 0.5]]), 1, "sum to 1"),
    (torch.tensor([[float("nan"), 1.0]]), 1, "probs contains non-finite"),
    (torch.eye(3), 4, "at least splits"),
    (torch.eye(3), 0, "splits must be an int"),
    (torch.eye(3), 1.5, "splits must be an int"),
])
def test_argument_checks_name_the_argument(probs, splits, match):
    with pytest.raises(ValueError, match=match):
        inception_score(probs, splits=splits)


def test_integer_and_non_tensor_probs_are_rejected():
    with pytest.raises(TypeError, match="probs"):
        inception_score(torch.eye(3, dtype=torch.long), splits=1)
    with pytest.raises(TypeError, match="probs"):
        inception_score(np.eye(3), splits=1)
