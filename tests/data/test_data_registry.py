"""gandyn.data.registry: every name builds its source, unknown names and keywords are refused
with the valid ones listed, and every source keeps the data contract the GAN game relies on."""
import numpy as np
import pytest
import torch

import gandyn.data as data
from gandyn.data import DATASETS, make_dataset


def test_names_and_builders():
    assert DATASETS == {"ring": data.ring, "grid": data.grid, "grid16": data.grid16, "digits": data.Digits,
                        "stacked-digits": data.StackedDigits, "mnist": data.mnist,
                        "fashion-mnist": data.fashion_mnist, "cifar10": data.cifar10,
                        "image-folder": data.image_folder}
    assert set(data.__all__) >= {"make_dataset", "DATASETS", "Mixture", "TensorImageData", "ImageFolderData"}
    assert all(hasattr(data, name) for name in data.__all__)


def test_keywords_reach_the_builder():
    m = make_dataset("ring", n_modes=4, radius=2.0, sigma=0.1)
    assert m.num_classes == 4 and m.sigma == 0.1 and m.centers[0].tolist() == [2.0, 0.0]
    assert make_dataset("grid16").num_classes == 16
    assert make_dataset("digits", size=8, split="test").shape == (1, 8, 8)
    assert make_dataset("Stacked_Digits", size=8).num_classes == 1000  # "_" reads as "-"


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        make_dataset("celeba")
    msg = str(e.value)
    assert msg.startswith("name: unknown dataset 'celeba'") and all(name in msg for name in DATASETS)
    with pytest.raises(ValueError, match="^name: unknown dataset"):
        make_dataset(3)


def test_unknown_keyword_names_it_and_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"^ring: unknown keyword 'modes'; valid keywords: n_modes, radius, sigma$"):
        make_dataset("ring", modes=4)
    with pytest.raises(ValueError, match=r"^digits: unknown keywords 'train', 'root'; valid keywords: size, split$"):
        make_dataset("digits", train=True, root="/x")
    with pytest.raises(ValueError, match=r"^mnist: missing required keyword 'root'; valid keywords: root, train, size$"):
        make_dataset("mnist")


@pytest.fixture
def sources(tmp_path, rng, files):
    """One of every source, the local ones from small files written in their formats."""
    xs, ys = files.random_mnist(rng, 5)
    files.write_mnist_split(tmp_path, "MNIST", "train", xs, ys)
    files.write_mnist_split(tmp_path, "FashionMNIST", "train", xs, ys)
    files.write_cifar(tmp_path)
    for cls in ("a", "b", "c"):
        files.write_png(tmp_path / "folder" / cls / "0.png", rng.integers(0, 256, (9, 9, 3), dtype=np.uint8))
    local = {"mnist": dict(root=tmp_path, size=32), "fashion-mnist": dict(root=tmp_path),
             "cifar10": dict(root=tmp_path), "image-folder": dict(root=tmp_path / "folder", size=8)}
    return {name: make_dataset(name, **local.get(name, {})) for name in DATASETS}


def test_every_source_keeps_the_contract(sources):
    expected_shape = {"ring": (2,), "grid": (2,), "grid16": (2,), "digits": (1, 16, 16),
                      "stacked-digits": (3, 16, 16), "mnist": (1, 32, 32), "fashion-mnist": (1, 28, 28),
                      "cifar10": (3, 32, 32), "image-folder": (3, 8, 8)}
    expected_classes = {"ring": 8, "grid": 25, "grid16": 16, "digits": 10, "stacked-digits": 1000,
                        "mnist": 10, "fashion-mnist": 10, "cifar10": 10, "image-folder": 3}
    for name, src in sources.items():
        assert src.shape == expected_shape[name] and src.num_classes == expected_classes[name], name
        torch.manual_seed(0)
        x, y = src.sample(9, torch.Generator().manual_seed(1))
        torch.manual_seed(1)
        state = torch.get_rng_state()
        x2, y2 = src.sample(9, torch.Generator().manual_seed(1))
        assert torch.equal(torch.get_rng_state(), state), name  # only the given generator is used
        assert torch.equal(x, x2) and torch.equal(y, y2), name
        assert x.shape == (9, *src.shape) and x.dtype == torch.float32 and x.is_contiguous(), name
        assert y.shape == (9,) and y.dtype == torch.int64 and y.min() >= 0 and y.max() < src.num_classes, name
        if len(src.shape) == 3:
            assert x.min() >= -1 and x.max() <= 1, name
        if isinstance(src, torch.utils.data.Dataset):  # finite: sample = get_batch(randint(len, (n,)))
            idx = torch.randint(len(src), (9,), generator=torch.Generator().manual_seed(1))
            xe, ye = src.get_batch(idx)
            assert torch.equal(x, xe) and torch.equal(y, ye), name
            xi, yi = src[int(idx[0])]
            assert torch.equal(xi, x[0]) and yi == y[0], name
