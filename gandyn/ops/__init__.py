"""Fused ops, one module each (CPU and CUDA kernels beside their pure-PyTorch reference):
gandyn.ops.gradient_penalty, gandyn.ops.spectral_norm, gandyn.ops.frechet."""
from gandyn.ops import frechet, gradient_penalty, spectral_norm

__all__ = ["frechet", "gradient_penalty", "spectral_norm"]
