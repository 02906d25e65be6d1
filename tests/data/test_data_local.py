"""gandyn.data.local: small copies written in the exact formats torchvision reads (IDX,
CIFAR python pickles, ImageFolder PNGs) load to the very pixels written (v ↦ v/255·2 − 1),
labels and sizes; missing or malformed files raise errors naming the path and the layout."""
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gandyn.data import ImageFolderData, cifar10, fashion_mnist, image_folder, mnist


def signed(array):
    return torch.from_numpy(np.ascontiguousarray(array)).float() / 255 * 2 - 1


# --- MNIST / Fashion-MNIST ---------------------------------------------------------------

@pytest.mark.parametrize("loader, folder", [(mnist, "MNIST"), (fashion_mnist, "FashionMNIST")])
def test_idx_roundtrip_both_splits(tmp_path, rng, files, loader, folder):
    train_x, train_y = files.random_mnist(rng, 7)
    test_x, test_y = files.random_mnist(rng, 3)
    files.write_mnist_split(tmp_path, folder, "train", train_x, train_y)
    files.write_mnist_split(tmp_path, folder, "t10k", test_x, test_y)
    for train, (xs, ys) in ((True, (train_x, train_y)), (False, (test_x, test_y))):
        ds = loader(tmp_path, train=train)
        assert len(ds) == len(xs) and ds.shape == (1, 28, 28) and ds.num_classes == 10
        assert ds.images.dtype == torch.uint8  # kept as uint8 in memory
        x, y = ds.get_batch(torch.arange(len(ds)))
        assert torch.equal(x, signed(xs)[:, None]) and torch.equal(y, torch.from_numpy(ys).long())
        assert x[0, 0, 0, 0] == -1 and x[0, 0, 0, 1] == 1
    assert len(ds.classes) == 10


def test_mnist_size_32_is_bilinear(tmp_path, rng, files):
    xs, ys = files.random_mnist(rng, 4)
    files.write_mnist_split(tmp_path, "MNIST", "train", xs, ys)
    ds = mnist(str(tmp_path), size=32)
    assert ds.shape == (1, 32, 32)
    x, _ = ds.sample(16, torch.Generator().manual_seed(0))
    idx = torch.randint(4, (16,), generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(torch.from_numpy(xs[idx.numpy()]).float()[:, None] / 255, size=(32, 32),
                             mode="bilinear", align_corners=False).clamp(0, 1) * 2 - 1
    assert x.shape == (16, 1, 32, 32) and torch.equal(x, expected)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # `files` holds no state
@given(n=st.integers(1, 5), h=st.integers(1, 6), w=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_idx_any_dims(files, n, h, w, seed):
    rng = np.random.default_rng(seed)
    xs = rng.integers(0, 256, size=(n, h, w), dtype=np.uint8)
    ys = rng.integers(0, 10, size=n, dtype=np.uint8)
    with tempfile.TemporaryDirectory() as root:
        files.write_mnist_split(Path(root), "MNIST", "train", xs, ys)
        ds = mnist(root, size=h if h == w else 28)
        x, y = ds.get_batch(torch.arange(n))
    if h == w:
        assert torch.equal(x, signed(xs)[:, None])
    else:  # non-square sources are resized to size×size
        assert x.shape == (n, 1, 28, 28)
    assert torch.equal(y, torch.from_numpy(ys).long())


def test_only_the_requested_split_is_needed(tmp_path, rng, files):
    xs, ys = files.random_mnist(rng, 2)
    files.write_mnist_split(tmp_path, "MNIST", "t10k", xs, ys)
    assert len(mnist(tmp_path, train=False)) == 2
    with pytest.raises(FileNotFoundError, match="has no MNIST/raw/train-images-idx3-ubyte"):
        mnist(tmp_path, train=True)


def test_mnist_missing_root_and_files(tmp_path, rng, files):
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as e:
        mnist(missing)
    assert str(missing) in str(e.value) and "root/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte" in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"has no FashionMNIST/raw/train-images-idx3-ubyte; expected "
                                                r"torchvision's FashionMNIST layout"):
        fashion_mnist(tmp_path)
    xs, ys = files.random_mnist(rng, 2)
    files.write_idx(tmp_path / "MNIST/raw/train-images-idx3-ubyte", xs)
    with pytest.raises(FileNotFoundError, match="has no MNIST/raw/train-labels-idx1-ubyte"):
        mnist(tmp_path)
    # a compressed copy: say what to do
    (tmp_path / "MNIST/raw/train-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(FileNotFoundError, match="decompress it"):
        mnist(tmp_path)
    with pytest.raises(ValueError, match="^root: expected a directory path"):
        mnist(None)


@pytest.mark.parametrize("corrupt, match", [
    (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08"), "too short for an IDX header"),
    (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(
        (raw / "train-images-idx3-ubyte").read_bytes()[:-1]), "expected 1584 for IDX dims"),
    (lambda raw: (raw / "train-labels-idx1-ubyte").write_bytes(
        (raw / "train-labels-idx1-ubyte").read_bytes() + b"\x00"), "expected 10 for IDX dims"),
    (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(
        b"\x00\x00\x08\x01" + (raw / "train-images-idx3-ubyte").read_bytes()[4:]), "magic number 0x00000801, expected 0x00000803"),
    (lambda raw: (raw / "train-images-idx3-ubyte").write_bytes(
        b"\x1f\x8b\x08\x00" + (raw / "train-images-idx3-ubyte").read_bytes()[4:]), "uncompressed IDX"),
])
def test_mnist_malformed_files(tmp_path, rng, files, corrupt, match):
    xs, ys = files.random_mnist(rng, 2)
    files.write_mnist_split(tmp_path, "MNIST", "train", xs, ys)
    corrupt(tmp_path / "MNIST/raw")
    with pytest.raises(ValueError, match=match) as e:
        mnist(tmp_path)
    assert str(tmp_path / "MNIST/raw") in str(e.value)


def test_mnist_label_count_and_range(tmp_path, rng, files):
    xs, ys = files.random_mnist(rng, 3)
    files.write_mnist_split(tmp_path, "MNIST", "train", xs, ys[:2])
    with pytest.raises(ValueError, match="2 labels for the 3 images"):
        mnist(tmp_path)
    files.write_mnist_split(tmp_path, "MNIST", "train", xs, np.array([1, 10, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 10\), found 10"):
        mnist(tmp_path)
    with pytest.raises(ValueError, match="^train: expected True or False"):
        mnist(tmp_path, train="yes")
    with pytest.raises(ValueError, match="^size: expected a positive integer"):
        mnist(tmp_path, size=0)


# --- CIFAR-10 -----------------------------------------------------------------------------

@pytest.mark.parametrize("bytes_keys", [True, False], ids=["bytes-keys", "str-keys"])
def test_cifar_roundtrip(tmp_path, files, bytes_keys):
    written = files.write_cifar(tmp_path, bytes_keys=bytes_keys)
    for split, train in (("train", True), ("test", False)):
        ds = cifar10(tmp_path, train=train)
        data, labels = written[split]
        assert len(ds) == len(data) == (10 if train else 3)
        assert ds.shape == (3, 32, 32) and ds.num_classes == 10 and ds.classes == files.cifar_names
        x, y = ds.get_batch(torch.arange(len(ds)))
        # rows are CHW: 1024 red, then green, then blue values, row-major
        assert torch.equal(x, signed(data).reshape(-1, 3, 32, 32)) and torch.equal(y, torch.from_numpy(labels))
        assert x.is_contiguous() and x.dtype == torch.float32


def test_cifar_python2_pickles(tmp_path, files):
    """The real files are Python 2 pickles: str keys (SHORT_BINSTRING) and numpy.core globals."""
    written = files.write_cifar(tmp_path, bytes_keys=False)
    base = tmp_path / "cifar-10-batches-py"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        blob = (base / name).read_bytes()
        assert b"numpy._core.multiarray\n" in blob
        (base / name).write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))

    def py2_str(s):
        b = s.encode("latin1")
        return b"U" + bytes([len(b)]) + b

    meta = (b"\x80\x02}(" + py2_str("label_names") + b"](" + b"".join(py2_str(s) for s in files.cifar_names)
            + b"e" + py2_str("num_vis") + b"M\x00\x0cu.")
    assert pickle.loads(meta, encoding="latin1")["num_vis"] == 3072
    (base / "batches.meta").write_bytes(meta)
    ds = cifar10(tmp_path)
    assert ds.classes == files.cifar_names
    assert torch.equal(ds.get_batch(torch.arange(10))[0], signed(written["train"][0]).reshape(-1, 3, 32, 32))


def test_cifar_missing(tmp_path, files):
    with pytest.raises(FileNotFoundError, match=r"has no cifar-10-batches-py/data_batch_1; expected torchvision's CIFAR-10"):
        cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        cifar10(tmp_path / "x")
    files.write_cifar(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    (base / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="has no cifar-10-batches-py/data_batch_3"):
        cifar10(tmp_path)
    assert len(cifar10(tmp_path, train=False)) == 3  # the test split does not need it
    (base / "batches.meta").unlink()
    with pytest.raises(FileNotFoundError, match="has no cifar-10-batches-py/batches.meta"):
        cifar10(tmp_path, train=False)


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("payload, match", [
    (lambda p: b"not a pickle at all", "not a CIFAR python pickle"),
    (lambda p: pickle.dumps([1, 2]), "holds a list, expected a dict"),
    (lambda p: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8)}), "expected data and labels"),
    (lambda p: pickle.dumps({b"data": np.zeros((2, 3071), np.uint8), b"labels": [0, 1]}), r"expected a uint8 array \(N, 3072\)"),
    (lambda p: pickle.dumps({b"data": np.zeros((2, 3072), np.float32), b"labels": [0, 1]}), "data is float32"),
    (lambda p: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), r"labels must be 2 integers in \[0, 10\)"),
    (lambda p: pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "labels must be 2 integers"),
    (lambda p: pickle.dumps({b"data": _Evil(str(p)), b"labels": [0]}), r"refusing global (io|builtins)\.open"),
])
def test_cifar_malformed(tmp_path, files, payload, match):
    files.write_cifar(tmp_path)
    flag = tmp_path / "pwned"
    target = tmp_path / "cifar-10-batches-py/test_batch"
    target.write_bytes(payload(flag))
    with pytest.raises(ValueError, match=match) as e:
        cifar10(tmp_path, train=False)
    assert str(target) in str(e.value) and "cifar-10-batches-py" in str(e.value)
    assert not flag.exists()  # nothing a file names is ever run


def test_cifar_malformed_meta(tmp_path, files):
    files.write_cifar(tmp_path)
    (tmp_path / "cifar-10-batches-py/batches.meta").write_bytes(pickle.dumps({b"label_names": ["a"]}))
    with pytest.raises(ValueError, match="label_names must be a list of 10 strings"):
        cifar10(tmp_path)


# --- image folders --------------------------------------------------------------------------

def make_folder(root, files, rng, shape):
    arrays = {}
    for cls, names in (("cat", ["a", "b"]), ("dog", ["c"])):
        for name in names:
            arr = rng.integers(0, 256, size=shape, dtype=np.uint8)
            files.write_png(root / cls / f"{name}.png", arr)
            arrays[(cls, name)] = arr
    return [arrays[("cat", "a")], arrays[("cat", "b")], arrays[("dog", "c")]]


def test_image_folder_rgb_exact(tmp_path, rng, files):
    arrays = make_folder(tmp_path, files, rng, (8, 8, 3))
    ds = image_folder(tmp_path, size=8)
    assert isinstance(ds, ImageFolderData)
    assert len(ds) == 3 and ds.classes == ["cat", "dog"] and ds.num_classes == 2 and ds.shape == (3, 8, 8)
    x, y = ds.get_batch(torch.arange(3))
    assert torch.equal(x, signed(np.stack(arrays)).permute(0, 3, 1, 2)) and y.tolist() == [0, 0, 1]
    assert x.dtype == torch.float32 and x.is_contiguous()


def test_image_folder_gray_exact_and_crop(tmp_path, rng, files):
    arrays = make_folder(tmp_path, files, rng, (8, 12))
    ds = image_folder(tmp_path, size=8, channels=1)
    x, y = ds.get_batch(torch.tensor([2, 0]))
    # the shorter side is already 8: the center crop keeps columns 2..9
    assert torch.equal(x, signed(np.stack([arrays[2], arrays[0]])[:, None, :, 2:10]))
    xr, _ = image_folder(tmp_path, size=4, channels=3).sample(5, torch.Generator().manual_seed(0))
    assert xr.shape == (5, 3, 4, 4) and xr.min() >= -1 and xr.max() <= 1
    # a grayscale source read as RGB repeats the gray value in all three channels
    x3, _ = image_folder(tmp_path, size=8, channels=3).get_batch(torch.tensor([2]))
    assert torch.equal(x3, x[:1].expand(1, 3, 8, 8))


def test_image_folder_sample_contract(tmp_path, rng, files):
    make_folder(tmp_path, files, rng, (8, 8, 3))
    ds = image_folder(tmp_path, size=8)
    torch.manual_seed(0)
    x, y = ds.sample(6, torch.Generator().manual_seed(9))
    xe, ye = ds.get_batch(torch.randint(3, (6,), generator=torch.Generator().manual_seed(9)))
    assert torch.equal(x, xe) and torch.equal(y, ye)
    assert ds.sample(0)[0].shape == (0, 3, 8, 8)
    item_x, item_y = ds[-1]
    assert item_x.shape == (3, 8, 8) and item_y.item() == 1
    with pytest.raises(IndexError):
        ds[3]


def test_image_folder_errors(tmp_path, rng, files):
    with pytest.raises(FileNotFoundError, match="is not a directory; expected torchvision's ImageFolder layout"):
        image_folder(tmp_path / "none")
    with pytest.raises(FileNotFoundError, match=r"has no images in class subfolders .*root/<class>/<image>"):
        image_folder(tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="has no images in class subfolders"):
        image_folder(tmp_path)
    (tmp_path / "empty_class").rmdir()
    make_folder(tmp_path, files, rng, (8, 8, 3))
    (tmp_path / "dog" / "broken.png").write_bytes(b"definitely not a png")
    ds = image_folder(tmp_path, size=8)
    with pytest.raises(ValueError, match=r"broken\.png: not a readable image"):
        ds.get_batch(torch.arange(len(ds)))
    with pytest.raises(ValueError, match="^channels: expected 1"):
        image_folder(tmp_path, channels=2)
    with pytest.raises(ValueError, match="^size: expected a positive integer"):
        image_folder(tmp_path, size=-1)
