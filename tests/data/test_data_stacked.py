"""gandyn.data.stacked: each channel is the digits image its drawn index names, the label
is 100·d_R + 10·d_G + d_B, and labels follow the product law of the three independent draws
(chi-square over the 1,000 modes)."""
import pytest
import torch
from scipy.stats import chi2 as chi2_dist

from gandyn.data import Digits, StackedDigits


def test_shape_contract():
    ds = StackedDigits(16)
    assert ds.shape == (3, 16, 16) and ds.num_classes == 1000
    x, y = ds.sample(50, torch.Generator().manual_seed(0))
    assert x.shape == (50, 3, 16, 16) and x.dtype == torch.float32 and x.is_contiguous()
    assert y.dtype == torch.int64 and y.min() >= 0 and y.max() < 1000
    assert x.min() >= -1 and x.max() <= 1
    assert ds.sample(0)[0].shape == (0, 3, 16, 16)


@pytest.mark.parametrize("size", [8, 32])
def test_channels_are_the_drawn_digits(size):
    ds = StackedDigits(size)
    digits = Digits(size)
    dx, dy = digits.get_batch(torch.arange(1797))
    torch.manual_seed(3)  # the global RNG plays no part
    x, y = ds.sample(200, torch.Generator().manual_seed(42))
    idx = torch.randint(1797, (200, 3), generator=torch.Generator().manual_seed(42))  # the 3n indices
    for c in range(3):
        assert torch.equal(x[:, c], dx[idx[:, c], 0])
        # channel c's digit is digit c (hundreds, tens, units) of the label
        assert torch.equal((y // 10 ** (2 - c)) % 10, dy[idx[:, c]])
    assert torch.equal(y, 100 * dy[idx[:, 0]] + 10 * dy[idx[:, 1]] + dy[idx[:, 2]])
    assert torch.equal(ds.sample_indices(200, torch.Generator().manual_seed(42)), idx)


def test_labels_follow_the_product_law_over_1000_modes():
    # P(label = 100a + 10b + c) = p_a p_b p_c with p_d = count_d / 1797 (nearly uniform: within ±10%
    # of 1/1000); a chi-square against those exact probabilities, 999 degrees of freedom.
    ds = StackedDigits(8)
    p = torch.bincount(ds.digits.labels, minlength=10).double() / 1797
    probs = (p[:, None, None] * p[None, :, None] * p[None, None, :]).reshape(1000)
    assert abs(probs.sum().item() - 1) < 1e-12 and (probs * 1000 - 1).abs().max() < 0.1
    g = torch.Generator().manual_seed(0)
    counts = torch.zeros(1000, dtype=torch.float64)
    n = 0
    for _ in range(10):
        _, y = ds.sample(10_000, g)
        counts += torch.bincount(y, minlength=1000).double()
        n += len(y)
    chi2 = ((counts - n * probs) ** 2 / (n * probs)).sum().item()
    assert chi2_dist.sf(chi2, df=999) > 1e-6
    assert (counts > 0).all()  # every mode is hit (expected ≥ 74 each)


def test_deterministic_and_split():
    a = StackedDigits(16).sample(30, torch.Generator().manual_seed(5))
    b = StackedDigits(16).sample(30, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    test = StackedDigits(16, split="test")
    idx = test.sample_indices(1000, torch.Generator().manual_seed(0))
    assert idx.max() < 297
    x, _ = test.from_indices(torch.tensor([[0, 1, 296]]))
    tx, _ = Digits(16, "test").get_batch(torch.tensor([0, 1, 296]))
    assert torch.equal(x[0], tx[:, 0])
    with pytest.raises(ValueError, match="^index: expected"):
        test.from_indices(torch.zeros(4, 2, dtype=torch.int64))
    assert repr(test) == "StackedDigits(size=16, split='test')"
