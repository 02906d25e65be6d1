"""Inception Score (Salimans et al. 2016, "Improved techniques for training GANs").

    IS = exp( E_x KL( p(y|x) ‖ p(y) ) ),   p(y) = E_x p(y|x)

from the class posteriors p(y|x) of a classifier (Inception for natural images, the
shipped digits classifier for gandyn.data.digits). Equivalently IS = exp(H(p(y)) −
E_x H(p(y|x))), so 1 ≤ IS ≤ number of classes: 1 for identical posteriors, K for
confident (one-hot) posteriors spread evenly over K classes.

Convention (the original code of Salimans et al., torch-fidelity with shuffle off): the N
samples are cut into `splits` consecutive chunks probs[i·N//splits : (i+1)·N//splits];
p(y) is the mean posterior of each chunk and the score is computed per chunk; the result
is (mean, std) over the chunks, with numpy's default std (ddof = 0). Shuffle the rows
yourself beforehand if they are ordered (e.g. by class). All sums are in float64 and
0·log 0 = 0.
"""
from __future__ import annotations

import numbers

import torch
from torch import Tensor

__all__ = ["inception_score"]

_ROW_SUM_TOL = 1e-3


def _check_probs(probs, splits) -> Tensor:
    op = "inception_score"
    if not isinstance(probs, Tensor):
        raise TypeError(f"{op}: probs must be a torch.Tensor of class probabilities, got {type(probs).__name__}")
    if not probs.is_floating_point():
        raise TypeError(f"{op}: probs must be a floating-point tensor, got {probs.dtype}")
    if probs.dim() != 2 or probs.shape[1] < 1:
        raise ValueError(f"{op}: probs must be a matrix (N, num_classes) of posteriors p(y|x), "
                         f"got shape {tuple(probs.shape)}")
    if isinstance(splits, bool) or not isinstance(splits, numbers.Integral) or splits < 1:
        raise ValueError(f"{op}: splits must be an int >= 1, got {splits!r}")
    if probs.shape[0] < splits:
        raise ValueError(f"{op}: probs must have at least splits = {splits} rows (samples), got {probs.shape[0]}")
    if not bool(torch.isfinite(probs).all()):
        raise ValueError(f"{op}: probs contains non-finite values (NaN or Inf)")
    p = probs.double()
    if bool((p < 0).any()):
        raise ValueError(f"{op}: probs must be non-negative (probabilities, not logits), min is {float(p.min()):.3g}")
    dev = (p.sum(1) - 1).abs().max()
    if float(dev) > _ROW_SUM_TOL:
        raise ValueError(f"{op}: each row of probs must sum to 1 (within {_ROW_SUM_TOL:g}); the worst row is off "
                         f"by {float(dev):.3g} (pass softmax(logits), not logits)")
    return p


def inception_score(probs: Tensor, splits: int = 10) -> tuple[float, float]:
    """(mean, std) of exp(E_x KL(p(y|x) ‖ p(y))) over `splits` consecutive chunks of probs.

    probs: (N, K) non-negative rows summing to 1 (within 1e-3; each row is renormalized
    in float64), N >= splits. std is over the chunks with ddof = 0 (0 for splits = 1).
    """
    p = _check_probs(probs, splits)
    splits = int(splits)
    p = p / p.sum(1, keepdim=True)
    n = p.shape[0]
    scores = []
    for i in range(splits):
        chunk = p[i * n // splits:(i + 1) * n // splits]
        marginal = chunk.mean(0, keepdim=True)
        # KL(p(y|x) ‖ p(y)) = Σ_y p log p − p log p(y); p(y) > 0 wherever p(y|x) > 0, and xlogy(0, ·) = 0.
        kl = (torch.special.xlogy(chunk, chunk) - torch.special.xlogy(chunk, marginal)).sum(1)
        scores.append(torch.exp(kl.mean()))
    scores = torch.stack(scores)
    return float(scores.mean()), float(scores.std(correction=0))
