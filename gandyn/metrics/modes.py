"""Mode-collapse metrics: Gaussian mixtures (2-D ring / grid) and stacked digits.

Mixtures — the convention of PacGAN (Z. Lin, A. Khetan, G. Fanti, S. Oh, "PacGAN: the power
of two samples in generative adversarial networks", NeurIPS 2018, §5.1, following VEEGAN,
Srivastava et al. 2017), as in PacGAN's code (synthetic_data_experiments, MetricLogger):

* each sample is assigned to its nearest mode (Euclidean); it is *high quality* when that
  distance is below threshold·σ (strictly, `dis < dis_thre` in PacGAN's code; threshold = 3);
* counts[k] = the number of high-quality samples assigned to mode k (low-quality samples
  count for no mode);
* modes_covered = the number of modes with counts > 0;
* high_quality = (number of high-quality samples) / (number of samples);
* reverse_kl = KL(p̂ ‖ U) = Σ_k p̂_k log(p̂_k K) with p̂ = counts / counts.sum(): the mode
  histogram of the high-quality samples against the uniform distribution over the K modes
  (= log K − H(p̂), the entropy PacGAN's code logs). 0 when the high-quality samples are spread
  evenly, log K when they all sit on one mode. With no high-quality sample p̂ is undefined
  (PacGAN's code gives NaN); we report +inf, worse than any achievable value.

Stacked digits (stacked MNIST of Metz et al. 2017, "Unrolled GANs", and PacGAN §5.2): each
of the C = 3 channels holds a digit, classified separately (`DigitsFeatures.channel_labels`);
the mode of a sample is 100·c₀ + 10·c₁ + c₂ (one of 10³ = 1000); modes_covered counts the
modes with at least one sample and reverse_kl = KL(p̂ ‖ U_1000) of the mode histogram of all
samples, the "KL" column of those papers (+inf for an empty sample set).

All counts are exact integers; KLs are computed in float64 with 0·log 0 = 0.
"""
from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from gandyn.metrics.checks import float_matrix

__all__ = ["mixture_mode_metrics", "stacked_mode_metrics", "reverse_kl_to_uniform"]


def reverse_kl_to_uniform(counts: Tensor) -> float:
    """KL(p̂ ‖ U) = Σ p̂ log(p̂ K) of the histogram counts (K,) (p̂ = counts / Σ counts);
    +inf when Σ counts = 0."""
    if not isinstance(counts, Tensor) or counts.dim() != 1 or counts.shape[0] < 1:
        raise ValueError(f"reverse_kl_to_uniform: counts must be a 1-D tensor of K >= 1 bins, got "
                         f"{tuple(counts.shape) if isinstance(counts, Tensor) else type(counts).__name__}")
    c = counts.double()
    if not bool(torch.isfinite(c).all()) or bool((c < 0).any()):
        raise ValueError("reverse_kl_to_uniform: counts must be finite and non-negative")
    total = c.sum()
    if float(total) == 0:
        return math.inf
    p = c / total
    return float(torch.special.xlogy(p, p * c.shape[0]).sum().clamp_min(0))


@torch.no_grad()
def mixture_mode_metrics(samples: Tensor, modes: Tensor, sigma: float, *, threshold: float = 3.0) -> dict:
    """PacGAN's mixture metrics of samples (N, d) against the K mode centres modes (K, d) of
    an isotropic mixture with component std sigma: {"modes_covered": int, "high_quality":
    float, "reverse_kl": float, "counts": LongTensor (K,)} (see the module docstring).

    A sample is high quality when ‖x − nearest mode‖ < threshold·sigma (strict, as PacGAN).
    """
    op = "mixture_mode_metrics"
    x = float_matrix(op, "samples", samples, 1, "matrix")
    mu = float_matrix(op, "modes", modes, 1, "matrix")
    if x.shape[1] != mu.shape[1]:
        raise ValueError(f"{op}: samples and modes must have the same dimension d, got {x.shape[1]} and "
                         f"{mu.shape[1]}")
    if x.device != mu.device:
        raise ValueError(f"{op}: modes must be on samples' device {x.device}, got {mu.device}")
    for name, v in (("sigma", sigma), ("threshold", threshold)):
        if isinstance(v, Tensor) and v.numel() == 1 and not v.is_complex():
            v = v.item()
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{op}: {name} must be a finite number > 0, got {v!r}")
    sigma, threshold = float(sigma), float(threshold)
    dist, nearest = torch.cdist(x, mu, compute_mode="donot_use_mm_for_euclid_dist").min(1)
    good = dist < threshold * sigma
    counts = torch.bincount(nearest[good], minlength=mu.shape[0])
    return {"modes_covered": int((counts > 0).sum()), "high_quality": float(good.double().mean()),
            "reverse_kl": reverse_kl_to_uniform(counts), "counts": counts}


def stacked_mode_metrics(channel_labels: Tensor, num_modes: int = 1000) -> dict:
    """Stacked-digits metrics of channel_labels (N, C) int (each in 0..9, C = 3 for stacked
    MNIST): the mode of row i is Σ_c labels[i, c]·10^(C−1−c) (100·c₀ + 10·c₁ + c₂);
    {"modes_covered": int, "reverse_kl": KL(p̂ ‖ U_num_modes), "counts": LongTensor (num_modes,)}.
    num_modes must be 10^C (1000 for three channels)."""
    op = "stacked_mode_metrics"
    if not isinstance(channel_labels, Tensor):
        raise TypeError(f"{op}: channel_labels must be a torch.Tensor, got {type(channel_labels).__name__}")
    if channel_labels.is_floating_point() or channel_labels.is_complex() or channel_labels.dtype == torch.bool:
        raise TypeError(f"{op}: channel_labels must be an integer tensor (e.g. torch.long), got "
                        f"{channel_labels.dtype}")
    if channel_labels.dim() != 2 or channel_labels.shape[1] < 1:
        raise ValueError(f"{op}: channel_labels must have shape (N, C) (one digit label per channel), got "
                         f"{tuple(channel_labels.shape)}")
    c = channel_labels.shape[1]
    if isinstance(num_modes, bool) or not isinstance(num_modes, int) or num_modes != 10 ** c:
        raise ValueError(f"{op}: num_modes must be 10**C = {10 ** c} for C = {c} channels, got {num_modes!r}")
    labels = channel_labels.long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) > 9):
        raise ValueError(f"{op}: channel_labels must be digit labels in 0..9, got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    weights = 10 ** torch.arange(c - 1, -1, -1, device=labels.device)
    mode = (labels * weights).sum(1)
    counts = torch.bincount(mode, minlength=num_modes)
    return {"modes_covered": int((counts > 0).sum()), "reverse_kl": reverse_kl_to_uniform(counts),
            "counts": counts}
