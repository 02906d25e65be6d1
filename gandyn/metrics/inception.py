"""The standard FID feature network (Inception-v3 pool3, 2048-d) for users who have its weights.

This is pytorch-fid's `InceptionV3([3])` with `use_fid_inception=True` (the TF-ported
Inception of Heusel et al. 2017's FID code, weights pt_inception-2015-12-05-6726825d.pth),
rebuilt here so that nothing is ever downloaded: pytorch-fid's `fid_inception_v3()` calls
`load_state_dict_from_url`, so we construct the same network ourselves — torchvision's
Inception3(num_classes=1008, aux_logits=False, weights=None, init_weights=False) with
pytorch-fid's FIDInceptionA/C/E_1/E_2 blocks patched in — and load the state dict from
a local file with torch.load(..., weights_only=True). The blocks and forward pass are
pytorch-fid's:

    input in [0, 1] → bilinear resize to 299×299 (align_corners=False) → 2x − 1
    → Conv2d_1a..2b, maxpool → Conv2d_3b, 4a, maxpool → Mixed_5b..6e → Mixed_7a..7c
    → adaptive average pool → (B, 2048)

`InceptionFeatures` takes gandyn's images in [−1, 1] (tanh range), maps them to [0, 1] by
(x + 1)/2 for that forward pass, repeats 1-channel images to 3 channels, runs in float32
in eval mode under no_grad and returns float64 features for gandyn.metrics.FeatureStats /
frechet_distance.

Weights, in order: the explicit `weights` path; else torch.hub's cache file
`torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth` (where pytorch-fid
would have cached its download); else FileNotFoundError saying where to put the file.
`random_weights=True` (tests only) skips loading and initializes the network at random
from `seed` (He-normal convolutions), which gives meaningless features of unit scale.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from pytorch_fid.inception import (FID_WEIGHTS_URL, FIDInceptionA, FIDInceptionC, FIDInceptionE_1,
                                   FIDInceptionE_2)
from torch import Tensor, nn

__all__ = ["InceptionFeatures", "FID_WEIGHTS_FILE", "FID_WEIGHTS_URL", "default_weights_path"]

FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
FEATURE_DIM = 2048


def default_weights_path() -> Path:
    """torch.hub.get_dir()/checkpoints/pt_inception-2015-12-05-6726825d.pth (pytorch-fid's cache file)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_FILE


def _fid_inception_v3() -> nn.Module:
    """pytorch-fid's fid_inception_v3() without its load_state_dict_from_url (weights left as built)."""
    inception = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None,
                                                init_weights=False)
    inception.Mixed_5b = FIDInceptionA(192, pool_features=32)
    inception.Mixed_5c = FIDInceptionA(256, pool_features=64)
    inception.Mixed_5d = FIDInceptionA(288, pool_features=64)
    inception.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
    inception.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
    inception.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
    inception.Mixed_7b = FIDInceptionE_1(1280)
    inception.Mixed_7c = FIDInceptionE_2(2048)
    return inception


def _random_state_dict(seed: int) -> dict[str, Tensor]:
    """A random state dict of the full FID Inception (the layout of the weights file): convolutions
    He-normal (fan_in, ReLU), BatchNorm the identity, fc N(0, 0.01²); the global RNG is untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        inception = _fid_inception_v3()
        for m in inception.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
    return inception.state_dict()


class _FIDInceptionPool3(nn.Module):
    """pytorch-fid's InceptionV3(output_blocks=[3], resize_input=True, normalize_input=True): input
    (B, 3, H, W) in [0, 1] → (B, 2048) pool3 features."""

    def __init__(self, inception: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.Sequential(inception.Conv2d_1a_3x3, inception.Conv2d_2a_3x3, inception.Conv2d_2b_3x3,
                          nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(inception.Conv2d_3b_1x1, inception.Conv2d_4a_3x3, nn.MaxPool2d(kernel_size=3, stride=2)),
            nn.Sequential(inception.Mixed_5b, inception.Mixed_5c, inception.Mixed_5d, inception.Mixed_6a,
                          inception.Mixed_6b, inception.Mixed_6c, inception.Mixed_6d, inception.Mixed_6e),
            nn.Sequential(inception.Mixed_7a, inception.Mixed_7b, inception.Mixed_7c,
                          nn.AdaptiveAvgPool2d(output_size=(1, 1))),
        ])

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        x = 2 * x - 1
        for block in self.blocks:
            x = block(x)
        return x.flatten(1)


class InceptionFeatures:
    """features(images (B, C, H, W) in [−1, 1], C ∈ {1, 3}) → (B, 2048) float64 pool3 features of
    the FID Inception (see the module docstring for the weights' search order).

    weights: path of pt_inception-2015-12-05-6726825d.pth (None: torch hub's cache file).
    random_weights: tests only — random network from `seed`, no file read.
    batch_size: images per forward pass (results do not depend on it: eval mode).
    """

    def __init__(self, weights: str | Path | None = None, device: torch.device | str = "cpu", *,
                 batch_size: int = 50, random_weights: bool = False, seed: int = 0):
        op = "InceptionFeatures"
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"{op}: batch_size must be a positive int, got {batch_size!r}")
        if random_weights and weights is not None:
            raise ValueError(f"{op}: pass either weights (a file) or random_weights=True, not both")
        if random_weights:
            state, self.weights_path = _random_state_dict(seed), None
        else:
            path = default_weights_path() if weights is None else Path(weights)
            if not path.is_file():
                where = (f"the explicit weights path {path}" if weights is not None else
                         f"torch hub's cache file {path}")
                raise FileNotFoundError(
                    f"{op}: no FID Inception weights at {where}. gandyn never downloads: fetch "
                    f"{FID_WEIGHTS_URL} yourself and save it as {default_weights_path()} "
                    f"(or pass weights=PATH to the file).")
            state, self.weights_path = torch.load(path, map_location="cpu", weights_only=True), path
        inception = _fid_inception_v3()
        inception.load_state_dict(state)
        self.device = torch.device(device)
        self.net = _FIDInceptionPool3(inception).to(self.device).eval().requires_grad_(False)
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        op = "InceptionFeatures"
        if not isinstance(images, Tensor):
            raise TypeError(f"{op}: images must be a torch.Tensor, got {type(images).__name__}")
        if not images.is_floating_point():
            raise TypeError(f"{op}: images must be a floating-point tensor in [-1, 1], got {images.dtype}")
        if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[2] < 1 or images.shape[3] < 1:
            raise ValueError(f"{op}: images must have shape (B, C, H, W) with C = 1 or 3, got {tuple(images.shape)}")
        if not bool(torch.isfinite(images).all()):
            raise ValueError(f"{op}: images contains non-finite values (NaN or Inf)")
        out = [torch.zeros(0, FEATURE_DIM, dtype=torch.float64, device=self.device)]
        for chunk in images.split(self.batch_size):
            x = chunk.to(self.device, torch.float32)
            if x.shape[1] == 1:
                x = x.expand(-1, 3, -1, -1)
            out.append(self.net((x + 1) * 0.5).double())
        return torch.cat(out)
