"""DCGAN (Radford, Metz & Chintala 2015, "Unsupervised representation learning with deep
convolutional GANs", Sec. 3-4 and Fig. 1), with the topology of PyTorch's examples/dcgan/main.py
(64x64, ngf = ndf = 64), scaled to size = 4 * 2^k (any power of two >= 8: 8, 16, 32, 64, 128, ...).

Generator, k = log2(size) - 2 upsamplings: z (B, latent_dim) seen as (B, latent_dim, 1, 1);
ConvTranspose 4x4 stride 1 pad 0 to width * 2^(k-1) channels at 4x4, BN, ReLU; then k-1 times
ConvTranspose 4x4 stride 2 pad 1 halving the channels and doubling the size, BN, ReLU; a last
ConvTranspose 4x4 stride 2 pad 1 to `channels`, tanh. No biases (BN follows), as the example.

Discriminator, the mirror image: k times Conv 4x4 stride 2 pad 1 (width, 2 width, ..., width *
2^(k-1) channels), BN on all but the first, LeakyReLU(0.2); a last Conv 4x4 stride 1 pad 0 to one
logit (no sigmoid). With batch_norm=True the convs have no bias (as the example); with
batch_norm=False (e.g. the SN-DCGAN) every conv has a bias.

size 64, width 64, channels 3 is exactly the example's netG / netD (3,576,704 and 2,765,568
parameters); Radford et al.'s init N(0, 0.02) (BN gamma N(1, 0.02)) is applied by default.
"""
from __future__ import annotations

from torch import Tensor, nn

from gandyn.nn.models.init import init_weights
from gandyn.nn.models.mlp import _positive, check_input
from gandyn.nn.spectral_norm import spectral_norm as apply_spectral_norm

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "dcgan_depth"]


def dcgan_depth(size: int) -> int:
    """k with size = 4 * 2^k, k >= 1; ValueError otherwise."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8 or size & (size - 1):
        raise ValueError(f"size: the DCGAN needs a power of two >= 8 (8, 16, 32, 64, ...), got {size!r}")
    return size.bit_length() - 3


class DCGANGenerator(nn.Module):
    """z (B, latent_dim) -> images (B, channels, size, size) in [-1, 1]; see the module docstring."""

    def __init__(self, latent_dim: int = 100, channels: int = 3, size: int = 32, width: int = 64,
                 init: str = "dcgan") -> None:
        super().__init__()
        k = dcgan_depth(size)
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.out_shape = (_positive("channels", channels), size, size)
        self.num_classes = 0
        _positive("width", width)
        ch = width * 2 ** (k - 1)
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, ch, 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(k - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        return self.main(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """images (B, channels, size, size) -> logits (B,); see the module docstring."""

    def __init__(self, channels: int = 3, size: int = 32, width: int = 64, batch_norm: bool = True,
                 spectral_norm: bool = False, init: str = "dcgan") -> None:
        super().__init__()
        k = dcgan_depth(size)
        self.in_shape = (_positive("channels", channels), size, size)
        self.num_classes = 0
        _positive("width", width)
        bias = not batch_norm
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1, bias=bias), nn.LeakyReLU(0.2)]
        ch = width
        for _ in range(k - 1):
            layers.append(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=bias))
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2))
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, 4, 1, 0, bias=bias))
        self.main = nn.Sequential(*layers)
        init_weights(self, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.in_shape)
        return self.main(x).flatten()
