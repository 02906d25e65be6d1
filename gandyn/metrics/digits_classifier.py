"""A small digits CNN shipped with gandyn: the feature network of the digits FID / IS / KID.

The real-image metrics (FID, Inception Score, KID, precision/recall) need a network
trained on the data. For the 8×8 sklearn digits (gandyn.data.digits) the Inception
network is meaningless (and its weights are not shipped), so gandyn ships a classifier
trained by `experiments/train_digits_classifier.py`:

    (B, 1, S, S) in [−1, 1], S ∈ {8, 16, 32}
      → bilinear resize to 16×16 (align_corners=False) unless S = 16
      → conv 1→32 3×3 (pad 1), ReLU, max-pool 2   (32 × 8 × 8)
      → conv 32→64 3×3 (pad 1), ReLU, max-pool 2  (64 × 4 × 4)
      → linear 1024→128, ReLU                     ("penultimate": the 128 features)
      → linear 128→10                             (logits; softmax gives p(y|x))

It is trained on the first 1,500 digits of `digits_images(16)` (sklearn's order) and
tested on the last 297; the weights file records that test accuracy.

`DigitsFeatures()(images)` returns (features (B, 128), probs (B, 10)), both float64:
features go to `frechet_distance` / `kid` / `precision_recall`, probs to
`inception_score`; `DigitsFeatures.channel_labels` classifies each channel of a stacked
(B, C, S, S) batch separately (stacked digits: `stacked_mode_metrics`).
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["DigitsClassifier", "DigitsFeatures", "load_digits_classifier", "WEIGHTS_PATH", "INPUT_SIZES",
           "FEATURE_DIM", "NUM_CLASSES"]

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "digits_classifier.pt"
INPUT_SIZES = (8, 16, 32)
FEATURE_DIM = 128
NUM_CLASSES = 10
_NET_SIZE = 16


class DigitsClassifier(nn.Module):
    """conv(1→32)–ReLU–pool–conv(32→64)–ReLU–pool–linear(1024→128)–ReLU–linear(128→10)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 4 * 4, FEATURE_DIM)
        self.fc2 = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    @staticmethod
    def prepare(x: Tensor) -> Tensor:
        """(B, 1, S, S) → (B, 1, 16, 16): bilinear resize (align_corners=False) when S != 16."""
        if x.shape[-1] != _NET_SIZE:
            x = F.interpolate(x, size=(_NET_SIZE, _NET_SIZE), mode="bilinear", align_corners=False)
        return x

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(penultimate ReLU features (B, 128), logits (B, 10)) of images (B, 1, S, S)."""
        x = self.prepare(x)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        h = F.relu(self.fc1(x.flatten(1)))
        return h, self.fc2(h)

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


def _check_images(op: str, images, channels: int | None = 1) -> None:
    if not isinstance(images, Tensor):
        raise TypeError(f"{op}: images must be a torch.Tensor, got {type(images).__name__}")
    if not images.is_floating_point():
        raise TypeError(f"{op}: images must be a floating-point tensor in [-1, 1], got {images.dtype}")
    want = "(B, 1, S, S)" if channels == 1 else "(B, C, S, S)"
    if (images.dim() != 4 or (channels is not None and images.shape[1] != channels) or images.shape[1] < 1
            or images.shape[2] != images.shape[3] or images.shape[2] not in INPUT_SIZES):
        raise ValueError(f"{op}: images must have shape {want} with S in {INPUT_SIZES}, "
                         f"got {tuple(images.shape)}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError(f"{op}: images contains non-finite values (NaN or Inf)")


def load_weights(path: str | Path | None = None) -> dict:
    """The saved training record {"state_dict", "test_accuracy", ...} (torch.load weights_only=True)."""
    path = WEIGHTS_PATH if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_digits_classifier: no weights file at {path}; create it with "
                                f"`python experiments/train_digits_classifier.py`")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_digits_classifier(path: str | Path | None = None, device: torch.device | str = "cpu") -> DigitsClassifier:
    """The shipped classifier (gandyn/metrics/weights/digits_classifier.pt unless `path`), in eval
    mode, gradients off, on `device`."""
    record = load_weights(path)
    model = DigitsClassifier()
    model.load_state_dict(record["state_dict"])
    model.eval().requires_grad_(False)
    return model.to(device)


class DigitsFeatures:
    """features(images) → (feats (B, 128) float64, probs (B, 10) float64) of the shipped classifier.

    images: (B, 1, S, S) floating point in [−1, 1] (the range of `digits_images` and of a
    tanh generator), S ∈ {8, 16, 32}; evaluated in float32 in batches of `batch_size`
    under torch.no_grad, in eval mode (so batch composition does not change the output).
    feats are the penultimate ReLU activations, probs the softmax of the logits (computed in
    float64 from the float32 logits).
    """

    def __init__(self, model: nn.Module | None = None, device: torch.device | str = "cpu", batch_size: int = 512):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DigitsFeatures: batch_size must be a positive int, got {batch_size!r}")
        self.device = torch.device(device)
        self.model = (load_digits_classifier(device=self.device) if model is None else model.to(self.device).eval())
        self.batch_size = batch_size

    @torch.no_grad()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        _check_images("DigitsFeatures", images)
        feats, probs = [], []
        for chunk in images.split(self.batch_size):
            h, logits = self.model.features_and_logits(chunk.to(self.device, torch.float32))
            feats.append(h.double())
            probs.append(logits.double().softmax(-1))
        if not feats:
            return (torch.zeros(0, FEATURE_DIM, dtype=torch.float64, device=self.device),
                    torch.zeros(0, NUM_CLASSES, dtype=torch.float64, device=self.device))
        return torch.cat(feats), torch.cat(probs)

    def predict(self, images: Tensor) -> Tensor:
        """Predicted classes (B,) int64 of images (B, 1, S, S)."""
        return self(images)[1].argmax(-1)

    @torch.no_grad()
    def channel_labels(self, images: Tensor) -> Tensor:
        """Stacked digits: each channel of images (B, C, S, S) classified on its own → (B, C) int64
        (channel c of sample i is the single-channel image images[i, c]). With C = 3 the
        stacked mode is 100·labels[:, 0] + 10·labels[:, 1] + labels[:, 2] (`stacked_mode_metrics`)."""
        _check_images("DigitsFeatures.channel_labels", images, channels=None)
        b, c, s, _ = images.shape
        labels = self.predict(images.reshape(b * c, 1, s, s))
        return labels.reshape(b, c)
