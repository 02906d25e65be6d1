"""Data sources for GAN training: 2-D Gaussian mixtures, digits, stacked digits, local image sets.

Every source has `sample(n, generator=None) -> (x float32, y int64)` (i.i.d., deterministic
given the generator, which alone supplies the randomness), `shape` (one sample's) and
`num_classes` (0 when unlabeled); images are (N, C, H, W) in [−1, 1]. `make_dataset(name,
**kwargs)` builds any of `DATASETS` by name. Nothing here downloads anything.
"""
from gandyn.data.digits import SIZES, TRAIN_SIZE, Digits, TensorImageData, digits_images
from gandyn.data.local import ImageFolderData, cifar10, fashion_mnist, image_folder, mnist
from gandyn.data.mixtures import Mixture, grid, grid16, ring
from gandyn.data.registry import DATASETS, make_dataset
from gandyn.data.stacked import StackedDigits

__all__ = ["DATASETS", "SIZES", "TRAIN_SIZE", "Digits", "ImageFolderData", "Mixture", "StackedDigits",
           "TensorImageData", "cifar10", "digits_images", "fashion_mnist", "grid", "grid16",
           "image_folder", "make_dataset", "mnist", "ring"]
