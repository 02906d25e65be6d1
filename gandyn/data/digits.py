"""Real handwritten digits, embedded: `sklearn.datasets.load_digits` (1,797 images, 8×8).

The images (integers 0–16) are scaled to [0, 1], resized to size×size by bilinear
interpolation (`F.interpolate(..., mode="bilinear", align_corners=False, antialias=False)`)
and mapped to [−1, 1], the range of a tanh generator. Every digits model of gandyn
(the GAN data, the shipped digits classifier of gandyn.metrics) sees this one transform.

Also here: the data contract every gandyn.data source follows (`sample(n, generator) ->
(x float32, y int64)`, `shape`, `num_classes`), `TensorImageData`, the in-memory image base
that digits, MNIST and CIFAR share, and `Digits`, the digits with a fixed train/test split.
"""
from __future__ import annotations

import functools
import operator

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset

SIZES = (8, 16, 32)


def digits_images(size: int = 16, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """(images (1797, 1, size, size) in [−1, 1], labels (1797,) int64), in sklearn's order."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {SIZES}, got {size!r}")
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.as_tensor(d.images, dtype=torch.float64).unsqueeze(1) / 16.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x.clamp(0, 1) * 2 - 1).to(dtype)
    return x.contiguous(), torch.as_tensor(d.target, dtype=torch.int64)


# ---------------------------------------------------------------------------------------
# The contract every data source of gandyn.data follows, and the in-memory image base.
# ---------------------------------------------------------------------------------------

TRAIN_SIZE = 1500
"""Digits split: the first 1,500 images in sklearn's order are "train", the last 297 "test"."""


def check_int(value, name: str, minimum: int) -> int:
    """`value` as a Python int ≥ `minimum` (bool refused), or ValueError naming the argument."""
    expected = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer ≥ {minimum}")
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise ValueError(f"{name}: expected {expected}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name}: expected {expected}, got {value}")
    return value


def check_sample_size(n) -> int:
    """`n` as a Python int ≥ 0, or ValueError: every `sample(n, generator)` validates with this."""
    return check_int(n, "n", 0)


def check_size(size, name: str = "size") -> int:
    """An image side length: a Python int ≥ 1, or ValueError naming the argument."""
    return check_int(size, name, 1)


def uint8_to_signed(x: Tensor) -> Tensor:
    """uint8 pixels v ↦ v/255·2 − 1 in float32: 0 ↦ −1 and 255 ↦ 1 exactly (the tanh range)."""
    return x.to(torch.float32) / 255 * 2 - 1


class TensorImageData(Dataset):
    """In-memory images (N, C, H, W) with int64 labels, the base of digits, MNIST and CIFAR.

    `images` are stored as given: uint8 pixels in [0, 255] (MNIST, CIFAR: 4× smaller than
    float) or floats already in [−1, 1] (digits). Access converts to float32 in [−1, 1]
    (uint8 by `uint8_to_signed`) and, when `size` differs from the stored H×W, resizes the
    batch by the digits transform (bilinear, align_corners=False, no antialias, on the
    [0, 1] scale, clamped), so a resized copy never sits in memory.

    `sample(n, generator)` draws n indices with replacement, `torch.randint(len, (n,),
    generator=generator)`, and returns `get_batch` of them: the GAN game's data contract.
    """

    def __init__(self, images: Tensor, labels: Tensor | None, num_classes: int,
                 size: int | None = None, classes: list[str] | None = None, name: str = "images"):
        if not isinstance(images, Tensor) or images.ndim != 4:
            raise ValueError(f"images: expected a (N, C, H, W) tensor, got "
                             f"{tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__}")
        if images.shape[0] < 1 or 0 in images.shape[1:]:
            raise ValueError(f"images: expected at least one non-empty image, got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise ValueError(f"images: expected uint8 pixels or floats in [-1, 1], got dtype {images.dtype}")
        n = images.shape[0]
        if num_classes < 0:
            raise ValueError(f"num_classes: expected an integer ≥ 0, got {num_classes}")
        if labels is None:
            if num_classes != 0:
                raise ValueError("labels: required when num_classes > 0")
            labels = torch.zeros(n, dtype=torch.int64)
        labels = torch.as_tensor(labels)
        if labels.shape != (n,) or labels.is_floating_point() or labels.is_complex():
            raise ValueError(f"labels: expected {n} integer labels, got shape {tuple(labels.shape)} "
                             f"dtype {labels.dtype}")
        labels = labels.to(torch.int64)
        hi = max(num_classes, 1)
        if labels.min() < 0 or labels.max() >= hi:
            raise ValueError(f"labels: expected values in [0, {hi}), got [{int(labels.min())}, {int(labels.max())}]")
        height, width = images.shape[2:]
        self.size = None if size is None or (height == width == size) else check_size(size)
        self.images = images.contiguous()
        self.labels = labels.contiguous()
        self.num_classes = int(num_classes)
        self.classes = list(classes) if classes is not None else None
        self.name = name
        channels = images.shape[1]
        self.shape: tuple[int, ...] = ((channels, self.size, self.size) if self.size is not None
                                       else (channels, height, width))

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i) -> tuple[Tensor, Tensor]:
        """(image (C, H, W) float32 in [−1, 1], label as a 0-d int64 tensor)."""
        n = len(self)
        i = operator.index(i)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {self.name} of {n} images")
        x, y = self.get_batch(torch.tensor([i % n]))
        return x[0], y[0]

    def get_batch(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """(images (B, C, H, W) float32 in [−1, 1], contiguous; labels (B,) int64) at `index`."""
        index = torch.as_tensor(index, dtype=torch.int64)
        x = self.images[index]
        if x.dtype == torch.uint8:
            x = uint8_to_signed(x) if self.size is None else x.to(torch.float32) / 255
        elif self.size is not None:
            x = (x.to(torch.float32) + 1) / 2
        if self.size is not None:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
            x = x.clamp(0, 1) * 2 - 1
        return x.to(torch.float32).contiguous(), self.labels[index]

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n images drawn uniformly with replacement, using only `generator` when given."""
        index = torch.randint(len(self), (check_sample_size(n),), generator=generator)
        return self.get_batch(index)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name={self.name!r}, n={len(self)}, shape={self.shape}, "
                f"num_classes={self.num_classes})")


@functools.lru_cache(maxsize=len(SIZES))
def _digits_cached(size: int) -> tuple[Tensor, Tensor]:
    return digits_images(size)


class Digits(TensorImageData):
    """The 1,797 sklearn digits as an in-memory dataset (1, size, size) in [−1, 1], 10 classes.

    split: None (all 1,797), "train" (the first 1,500 in sklearn's order) or "test" (the last
    297): a fixed split, so held-out metrics compare disjoint halves on every machine.
    """

    def __init__(self, size: int = 16, split: str | None = None):
        if isinstance(size, bool) or not isinstance(size, int) or size not in SIZES:
            raise ValueError(f"size: expected one of {SIZES}, got {size!r}")
        x, y = _digits_cached(size)
        if split is None:
            part = slice(None)
        elif split == "train":
            part = slice(0, TRAIN_SIZE)
        elif split == "test":
            part = slice(TRAIN_SIZE, None)
        else:
            raise ValueError(f"split: expected None, 'train' or 'test', got {split!r}")
        super().__init__(x[part].clone(), y[part].clone(), 10, classes=[str(d) for d in range(10)],
                         name="digits" if split is None else f"digits[{split}]")
        self.split = split
