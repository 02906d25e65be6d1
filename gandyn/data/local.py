"""Users' own local copies of MNIST, Fashion-MNIST, CIFAR-10 and image folders, never downloaded.

Each loader reads the layout torchvision's dataset class expects with download=False and
checks it first, so a missing or malformed file raises FileNotFoundError / ValueError naming
the path and the expected layout, never a torchvision traceback:

- `mnist`, `fashion_mnist`: root/{MNIST,FashionMNIST}/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte,
  the uncompressed IDX files torchvision.datasets.MNIST reads, parsed by torchvision's own
  IDX reader (`torchvision.datasets.mnist.read_image_file` / `read_label_file`). Only the
  requested split's two files need exist (torchvision's class wants all four).
- `cifar10`: root/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}, the python
  pickles torchvision.datasets.CIFAR10 reads, read the same way (latin1 pickles of dicts
  with data (N, 3072) uint8 in CHW order and labels), keys bytes or str.
- `image_folder`: torchvision.datasets.ImageFolder, root/<class>/<image>, loaded lazily.

MNIST and CIFAR load once into `TensorImageData` as uint8 (resized on access if asked).
"""
from __future__ import annotations

import functools
import operator
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from gandyn.data.digits import TensorImageData, check_sample_size, check_size, uint8_to_signed

_IDX_IMAGES, _IDX_LABELS = 0x00000803, 0x00000801  # IDX magic: uint8 (0x08), 3-D / 1-D


def _root_dir(root, layout: str) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise ValueError(f"root: expected a directory path, got {root!r}; {layout}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"root: {path} is not a directory; {layout}")
    return path


def _require_file(root: Path, rel: str, layout: str) -> Path:
    path = root / rel
    if not path.is_file():
        gz = path.with_name(path.name + ".gz")
        hint = f" (found {gz.name}: decompress it, e.g. gunzip -k {gz})" if gz.is_file() else ""
        raise FileNotFoundError(f"root: {root} has no {rel}{hint}; {layout}")
    return path


def _check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def _check_idx(path: Path, magic: int, layout: str) -> list[int]:
    """The dims of an uncompressed uint8 IDX file, after checking its magic and exact length."""
    ndim = magic & 0xFF
    head = 4 + 4 * ndim
    nbytes = path.stat().st_size
    with open(path, "rb") as f:
        header = f.read(head)
    if len(header) < head:
        raise ValueError(f"{path}: {nbytes} bytes, too short for an IDX header of {head} bytes; {layout}")
    found = int.from_bytes(header[:4], "big")
    if found != magic:
        raise ValueError(f"{path}: IDX magic number 0x{found:08x}, expected 0x{magic:08x} "
                         f"(uint8, {ndim}-D, big-endian; an uncompressed IDX file); {layout}")
    dims = [int.from_bytes(header[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    if 0 in dims:
        raise ValueError(f"{path}: IDX dims {dims}, expected no zero dimension; {layout}")
    expected = head + int(np.prod(dims))
    if nbytes != expected:
        raise ValueError(f"{path}: {nbytes} bytes, expected {expected} for IDX dims {dims} "
                         f"({head}-byte header + uint8 data); {layout}")
    return dims


def _idx_dataset(root, train: bool, size: int, folder: str, name: str, classes) -> TensorImageData:
    layout = (f"expected torchvision's {folder} layout "
              f"root/{folder}/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte")
    train = _check_bool(train, "train")
    size = check_size(size)
    root = _root_dir(root, layout)
    split = "train" if train else "t10k"
    image_path = _require_file(root, f"{folder}/raw/{split}-images-idx3-ubyte", layout)
    label_path = _require_file(root, f"{folder}/raw/{split}-labels-idx1-ubyte", layout)
    n_images = _check_idx(image_path, _IDX_IMAGES, layout)[0]
    n_labels = _check_idx(label_path, _IDX_LABELS, layout)[0]
    if n_images != n_labels:
        raise ValueError(f"{label_path}: {n_labels} labels for the {n_images} images of {image_path.name}; {layout}")
    from torchvision.datasets.mnist import read_image_file, read_label_file

    images = read_image_file(str(image_path)).unsqueeze(1).contiguous()  # (N, 1, H, W) uint8
    labels = read_label_file(str(label_path)).to(torch.int64)
    if int(labels.max()) >= 10:
        raise ValueError(f"{label_path}: labels must lie in [0, 10), found {int(labels.max())}; {layout}")
    return TensorImageData(images, labels, 10, size=size, classes=list(classes),
                           name=f"{name}[{'train' if train else 'test'}]")


def mnist(root, train: bool = True, size: int = 28) -> TensorImageData:
    """MNIST from root/MNIST/raw (60,000 train / 10,000 test), (1, size, size); size=32 for DCGAN."""
    from torchvision.datasets import MNIST

    return _idx_dataset(root, train, size, "MNIST", "mnist", MNIST.classes)


def fashion_mnist(root, train: bool = True, size: int = 28) -> TensorImageData:
    """Fashion-MNIST from root/FashionMNIST/raw, the same IDX format and sizes as `mnist`."""
    from torchvision.datasets import FashionMNIST

    return _idx_dataset(root, train, size, "FashionMNIST", "fashion-mnist", FashionMNIST.classes)


# --- CIFAR-10 ---------------------------------------------------------------------------

_CIFAR_DIR = "cifar-10-batches-py"
_CIFAR_LAYOUT = (f"expected torchvision's CIFAR-10 layout root/{_CIFAR_DIR}/"
                 "{data_batch_1..data_batch_5,test_batch,batches.meta} (python pickles of dicts with "
                 "data (N, 3072) uint8 and labels, batches.meta with label_names)")


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR batch holds (dicts, lists, strings, numpy arrays) and nothing else:
    torchvision unpickles these files unrestricted, which would run any code a file names."""

    _ALLOWED = {("_codecs", "encode"), ("numpy", "ndarray"), ("numpy", "dtype")} | {
        (f"numpy.{core}.{mod}", fn) for core in ("core", "_core")
        for mod, fn in (("multiarray", "_reconstruct"), ("multiarray", "scalar"), ("numeric", "_frombuffer"))}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing global {module}.{name}")


def _read_cifar_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as e:  # a malformed pickle raises almost any exception type
        raise ValueError(f"{path}: not a CIFAR python pickle ({type(e).__name__}: {e}); {_CIFAR_LAYOUT}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, expected a dict; {_CIFAR_LAYOUT}")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    entry = _read_cifar_pickle(path)
    if "data" not in entry or "labels" not in entry:
        raise ValueError(f"{path}: keys {sorted(map(str, entry))}, expected data and labels; {_CIFAR_LAYOUT}")
    data, labels = entry["data"], entry["labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path}: data is {desc}, expected a uint8 array (N, 3072); {_CIFAR_LAYOUT}")
    try:
        labels = np.asarray(labels)
    except Exception:
        labels = np.asarray([], dtype=object)
    if (labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu"
            or (labels.size and (labels.min() < 0 or labels.max() >= 10))):
        raise ValueError(f"{path}: labels must be {data.shape[0]} integers in [0, 10), got "
                         f"{labels.dtype} {labels.shape}; {_CIFAR_LAYOUT}")
    return data, labels.astype(np.int64)


def cifar10(root, train: bool = True) -> TensorImageData:
    """CIFAR-10 from root/cifar-10-batches-py (50,000 train / 10,000 test), (3, 32, 32), 10 classes."""
    train = _check_bool(train, "train")
    root = _root_dir(root, _CIFAR_LAYOUT)
    names = [f"data_batch_{i}" for i in range(1, 6)] if train else ["test_batch"]
    paths = [_require_file(root, f"{_CIFAR_DIR}/{name}", _CIFAR_LAYOUT) for name in names]
    meta_path = _require_file(root, f"{_CIFAR_DIR}/batches.meta", _CIFAR_LAYOUT)
    batches = [_read_cifar_batch(p) for p in paths]
    names = _read_cifar_pickle(meta_path).get("label_names")
    if (not isinstance(names, (list, tuple)) or len(names) != 10
            or not all(isinstance(s, (str, bytes)) for s in names)):
        raise ValueError(f"{meta_path}: label_names must be a list of 10 strings; {_CIFAR_LAYOUT}")
    classes = [s.decode("latin1") if isinstance(s, bytes) else s for s in names]
    data = np.concatenate([d for d, _ in batches])
    images = torch.from_numpy(np.ascontiguousarray(data)).reshape(-1, 3, 32, 32)  # CHW rows
    labels = torch.from_numpy(np.concatenate([y for _, y in batches]))
    return TensorImageData(images, labels, 10, classes=classes, name=f"cifar10[{'train' if train else 'test'}]")


# --- image folders ----------------------------------------------------------------------

def _load_image(path: str, mode: str):
    """ImageFolder's loader, converting to `mode` ("L" or "RGB"); an unreadable file names itself."""
    from PIL import Image

    try:
        with open(path, "rb") as f:
            return Image.open(f).convert(mode)
    except OSError as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


class ImageFolderData(Dataset):
    """A lazy torchvision ImageFolder, root/<class>/<image>: images resized (shorter side,
    bilinear with antialias), center-cropped to size×size and mapped to [−1, 1] float32;
    labels are the class subfolders' indices in sorted order, `classes` their names."""

    def __init__(self, root, size: int = 32, channels: int = 3):
        layout = ("expected torchvision's ImageFolder layout root/<class>/<image> "
                  "(.png, .jpg, ... files in one subfolder per class)")
        size = check_size(size)
        if isinstance(channels, bool) or channels not in (1, 3):
            raise ValueError(f"channels: expected 1 (grayscale) or 3 (RGB), got {channels!r}")
        root = _root_dir(root, layout)
        from torchvision import transforms
        from torchvision.datasets import ImageFolder

        transform = transforms.Compose([transforms.Resize(size), transforms.CenterCrop(size),
                                        transforms.PILToTensor()])
        try:
            self.folder = ImageFolder(str(root), transform=transform,
                                      loader=functools.partial(_load_image, mode="L" if channels == 1 else "RGB"))
        except FileNotFoundError as e:
            raise FileNotFoundError(f"root: {root} has no images in class subfolders ({e}); {layout}") from None
        self.root = root
        self.classes: list[str] = list(self.folder.classes)
        self.num_classes = len(self.classes)
        self.shape: tuple[int, ...] = (channels, size, size)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, i) -> tuple[Tensor, Tensor]:
        """(image (C, size, size) float32 in [−1, 1], label as a 0-d int64 tensor), read from disk."""
        n = len(self)
        i = operator.index(i)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for the {n} images of {self.root}")
        x, y = self.folder[i % n]
        return uint8_to_signed(x).contiguous(), torch.tensor(y, dtype=torch.int64)

    def get_batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """The items at `index`, stacked: (B, C, size, size) float32, (B,) int64."""
        items = [self[i] for i in torch.as_tensor(index, dtype=torch.int64).reshape(-1).tolist()]
        if not items:
            return torch.empty(0, *self.shape), torch.empty(0, dtype=torch.int64)
        return torch.stack([x for x, _ in items]), torch.stack([y for _, y in items])

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n images drawn uniformly with replacement (torch.randint), using only `generator` when given."""
        return self.get_batch(torch.randint(len(self), (check_sample_size(n),), generator=generator))

    def __repr__(self) -> str:
        return f"ImageFolderData(root={str(self.root)!r}, n={len(self)}, shape={self.shape}, classes={self.classes})"


def image_folder(root, size: int = 32, channels: int = 3) -> ImageFolderData:
    """Images in class subfolders of root as a lazy dataset (channels, size, size) in [−1, 1]."""
    return ImageFolderData(root, size, channels)
