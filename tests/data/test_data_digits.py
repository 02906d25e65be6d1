"""gandyn.data.digits: the Digits dataset (all 1,797 sklearn digits, their labels, the fixed
split) and the in-memory base TensorImageData that MNIST and CIFAR share (exact pixel map,
the sampling contract, resizing on access)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader

from gandyn.data import TRAIN_SIZE, Digits, TensorImageData, digits_images


@pytest.mark.parametrize("size", [8, 16, 32])
def test_digits_images_shape_range_labels(size):
    ds = Digits(size)
    assert len(ds) == 1797 and ds.shape == (1, size, size) and ds.num_classes == 10
    x, y = ds.get_batch(torch.arange(len(ds)))
    assert x.shape == (1797, 1, size, size) and x.dtype == torch.float32 and x.is_contiguous()
    assert x.min() == -1 and x.max() == 1  # blank pixels and full strokes exist
    assert torch.equal(x, digits_images(size)[0])  # exactly the shared digits transform
    assert torch.equal(y, torch.as_tensor(load_digits().target, dtype=torch.int64))
    assert ds.classes == [str(d) for d in range(10)]


def test_digits_8_is_sklearn_scaled():
    x, _ = Digits(8).get_batch(torch.arange(1797))
    raw = torch.as_tensor(load_digits().images, dtype=torch.float64)
    assert torch.equal(x[:, 0], (raw / 16 * 2 - 1).float())


def test_split_sizes_disjoint_and_cover():
    full, train, test = Digits(16), Digits(16, "train"), Digits(16, "test")
    assert len(train) == TRAIN_SIZE == 1500 and len(test) == 297
    xf, yf = full.get_batch(torch.arange(1797))
    xtr, ytr = train.get_batch(torch.arange(1500))
    xte, yte = test.get_batch(torch.arange(297))
    assert torch.equal(torch.cat([xtr, xte]), xf) and torch.equal(torch.cat([ytr, yte]), yf)
    # disjoint as sets of index positions and (sklearn has no duplicate images across them) of images
    flat_tr = {tuple(r) for r in xtr.flatten(1).tolist()}
    assert not any(tuple(r) in flat_tr for r in xte.flatten(1).tolist())
    assert set(ytr.tolist()) == set(yte.tolist()) == set(range(10))
    with pytest.raises(ValueError, match="^split: expected"):
        Digits(16, "val")
    for bad in (20, 16.0, True):
        with pytest.raises(ValueError, match="^size: expected one of"):
            Digits(bad)


def test_sample_contract_uses_only_the_generator():
    ds = Digits(16)
    torch.manual_seed(0)
    x, y = ds.sample(100, torch.Generator().manual_seed(11))
    idx = torch.randint(1797, (100,), generator=torch.Generator().manual_seed(11))
    xe, ye = ds.get_batch(idx)
    assert torch.equal(x, xe) and torch.equal(y, ye)
    torch.manual_seed(99)
    state = torch.get_rng_state()
    x2, _ = ds.sample(100, torch.Generator().manual_seed(11))
    assert torch.equal(x2, x) and torch.equal(torch.get_rng_state(), state)
    assert x.shape == (100, 1, 16, 16) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert ds.sample(0)[0].shape == (0, 1, 16, 16)


def test_sampled_class_frequencies_match_the_data():
    # indices are uniform over the 1,797 images, so class c appears with probability count_c/1797
    ds = Digits(8)
    n = 30_000
    _, y = ds.sample(n, torch.Generator().manual_seed(0))
    p = torch.bincount(ds.labels, minlength=10).double() / len(ds)
    counts = torch.bincount(y, minlength=10).double()
    chi2 = ((counts - n * p) ** 2 / (n * p)).sum().item()
    from scipy.stats import chi2 as chi2_dist
    assert chi2_dist.sf(chi2, df=9) > 1e-6


def test_dataset_protocol_and_dataloader():
    ds = Digits(16)
    x, y = ds[5]
    xb, yb = ds.get_batch(torch.tensor([5]))
    assert torch.equal(x, xb[0]) and y.dtype == torch.int64 and y.ndim == 0 and y == yb[0]
    assert torch.equal(ds[-1][0], ds[1796][0])
    with pytest.raises(IndexError):
        ds[1797]
    batch_x, batch_y = next(iter(DataLoader(ds, batch_size=7)))
    assert torch.equal(batch_x, ds.get_batch(torch.arange(7))[0]) and torch.equal(batch_y, ds.labels[:7])
    assert "n=1797" in repr(ds)


@given(n=st.integers(1, 6), c=st.sampled_from([1, 3]), h=st.integers(1, 9), w=st.integers(1, 9),
       seed=st.integers(0, 2**31 - 1))
def test_uint8_pixels_map_exactly(n, c, h, w, seed):
    g = torch.Generator().manual_seed(seed)
    img = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    ds = TensorImageData(img, labels, 10)
    x, y = ds.get_batch(torch.arange(n))
    assert torch.equal(x, img.float() / 255 * 2 - 1) and torch.equal(y, labels)
    assert ds.shape == (c, h, w) and x.dtype == torch.float32
    assert torch.equal(TensorImageData(img, None, 0).labels, torch.zeros(n, dtype=torch.int64))


def test_uint8_ends_map_to_minus_one_and_one():
    img = torch.tensor([0, 255, 51], dtype=torch.uint8).reshape(1, 1, 1, 3)
    x, _ = TensorImageData(img, None, 0).get_batch(torch.tensor([0]))
    assert x.flatten()[:2].tolist() == [-1.0, 1.0]
    assert abs(x.flatten()[2].item() - (51 / 255 * 2 - 1)) < 1e-7


def test_resize_on_access_is_the_digits_bilinear():
    img = torch.randint(0, 256, (4, 1, 28, 28), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ds = TensorImageData(img, torch.arange(4), 10, size=32)
    assert ds.shape == (1, 32, 32)
    x, _ = ds.get_batch(torch.arange(4))
    expected = F.interpolate(img.float() / 255, size=(32, 32), mode="bilinear",
                             align_corners=False).clamp(0, 1) * 2 - 1
    assert torch.equal(x, expected) and x.min() >= -1 and x.max() <= 1
    # float storage in [-1, 1]: resized through [0, 1] the same way
    xf = img.float() / 255 * 2 - 1
    xr, _ = TensorImageData(xf, None, 0, size=32).get_batch(torch.arange(4))
    assert torch.allclose(xr, expected, atol=1e-6, rtol=0)
    assert TensorImageData(img, None, 0, size=28).size is None  # native size: no resize


@pytest.mark.parametrize("kwargs, match", [
    (dict(images=torch.zeros(2, 8, 8), labels=None, num_classes=0), "^images: expected a"),
    (dict(images=torch.zeros(0, 1, 8, 8), labels=None, num_classes=0), "^images: expected at least"),
    (dict(images=torch.zeros(2, 1, 8, 8, dtype=torch.int32), labels=None, num_classes=0), "^images: expected uint8"),
    (dict(images=torch.zeros(2, 1, 8, 8), labels=torch.tensor([0, 10]), num_classes=10), r"^labels: expected values"),
    (dict(images=torch.zeros(2, 1, 8, 8), labels=torch.tensor([0]), num_classes=10), "^labels: expected 2"),
    (dict(images=torch.zeros(2, 1, 8, 8), labels=torch.tensor([0.0, 1.0]), num_classes=10), "^labels: expected 2"),
    (dict(images=torch.zeros(2, 1, 8, 8), labels=None, num_classes=10), "^labels: required"),
    (dict(images=torch.zeros(2, 1, 8, 8), labels=None, num_classes=0, size=0), "^size: expected"),
])
def test_base_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TensorImageData(**kwargs)


def test_sample_size_errors():
    with pytest.raises(ValueError, match="^n: expected"):
        Digits(8).sample(-3)
    with pytest.raises(ValueError, match="^n: expected"):
        Digits(8).sample(np.float64(3))
    assert Digits(8).sample(np.int64(3))[0].shape == (3, 1, 8, 8)
