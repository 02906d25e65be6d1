"""Writers of small local dataset copies in the exact on-disk formats torchvision reads:
IDX (MNIST), python pickles (CIFAR-10), class subfolders of PNGs (ImageFolder)."""
import pickle
import struct

import numpy as np
import pytest
from PIL import Image


def write_idx(path, array, magic=None):
    """Big-endian IDX: magic 0x0000080{ndim} (uint8), the dims as big-endian uint32, the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x800 + array.ndim if magic is None else magic
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
                     + array.tobytes())


def write_mnist_split(root, folder, split, images, labels):
    raw = root / folder / "raw"
    write_idx(raw / f"{split}-images-idx3-ubyte", images)
    write_idx(raw / f"{split}-labels-idx1-ubyte", labels)


def random_mnist(rng, n, h=28, w=28):
    images = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    images[0, 0, 0], images[0, 0, 1] = 0, 255  # both ends of the range
    return images, (np.arange(n) % 10).astype(np.uint8)


CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root, sizes=(2, 3, 1, 2, 2), test_size=3, seed=0, bytes_keys=True):
    """cifar-10-batches-py with data_batch_1..5 (sizes[i] images each), test_batch, batches.meta.

    Returns {"train": (data (N, 3072) uint8, labels), "test": (...)} as written."""
    rng = np.random.default_rng(seed)
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    key = (lambda s: s.encode()) if bytes_keys else (lambda s: s)
    written = {}
    for split, names, counts in (("train", [f"data_batch_{i}" for i in range(1, 6)], sizes),
                                 ("test", ["test_batch"], (test_size,))):
        datas, labels = [], []
        for name, n in zip(names, counts):
            data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            lab = [int(v) for v in rng.integers(0, 10, size=n)]
            with open(base / name, "wb") as f:
                pickle.dump({key("batch_label"): key(name), key("labels"): lab, key("data"): data,
                             key("filenames"): [key(f"img{i}.png") for i in range(n)]}, f, protocol=2)
            datas.append(data)
            labels += lab
        written[split] = (np.concatenate(datas), np.array(labels, dtype=np.int64))
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({key("label_names"): [key(s) for s in CIFAR_NAMES], key("num_vis"): 3072}, f, protocol=2)
    return written


def write_png(path, array):
    """array (H, W) uint8 → grayscale PNG, (H, W, 3) → RGB PNG (lossless)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)).save(path)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def files():
    """The writers above, for the tests (conftest modules are not importable by name)."""
    import types

    return types.SimpleNamespace(write_idx=write_idx, write_mnist_split=write_mnist_split,
                                 random_mnist=random_mnist, write_cifar=write_cifar, write_png=write_png,
                                 cifar_names=CIFAR_NAMES)
