"""Stacked digits: the small stacked-MNIST benchmark of mode collapse (1,000 modes).

Each sample stacks three independently, uniformly drawn digits images as the R, G, B
channels (3, size, size); its label is 100·d_R + 10·d_G + d_B ∈ [0, 1000), the mode it
belongs to. A generator covering all modes hits each label with probability 1/1000, so
counting the distinct labels a digits classifier reads off generated samples (channel by
channel) measures mode collapse as in Metz et al. (2017) and Srivastava et al. (2017).
"""
from __future__ import annotations

import torch
from torch import Tensor

from gandyn.data.digits import Digits, check_sample_size

_PLACE = torch.tensor([100, 10, 1], dtype=torch.int64)


class StackedDigits:
    """Infinite sampler of stacked digits, (3, size, size) float32 in [−1, 1], 1,000 classes.

    split: None, "train" or "test", the `Digits` split the three channels are drawn from.
    """

    num_classes = 1000

    def __init__(self, size: int = 16, split: str | None = None):
        self.digits = Digits(size, split)
        self.shape: tuple[int, ...] = (3, size, size)

    def sample_indices(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """The 3n digits indices a sample of n uses, (n, 3) int64: column c feeds channel c."""
        return torch.randint(len(self.digits), (check_sample_size(n), 3), generator=generator)

    def from_indices(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """Stack digits images index[:, 0..2] as channels; label 100·y[i0] + 10·y[i1] + y[i2]."""
        index = torch.as_tensor(index, dtype=torch.int64)
        if index.ndim != 2 or index.shape[1] != 3:
            raise ValueError(f"index: expected shape (n, 3), got {tuple(index.shape)}")
        x = self.digits.images[index.reshape(-1)]  # (3n, 1, s, s)
        x = x.reshape(index.shape[0], 3, *x.shape[2:]).to(torch.float32).contiguous()
        y = (self.digits.labels[index] * _PLACE).sum(1)
        return x, y

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """n stacked samples (x (n, 3, size, size), label (n,) int64), using only `generator` when given."""
        return self.from_indices(self.sample_indices(n, generator))

    def __repr__(self) -> str:
        return f"StackedDigits(size={self.shape[1]}, split={self.digits.split!r})"
