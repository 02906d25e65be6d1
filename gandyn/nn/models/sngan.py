"""The 32x32 models of Miyato, Kataoka, Koyama & Yoshida 2018, "Spectral normalization for GANs"
(ICLR 2018), Appendix B.4: the standard CNN (Table 3) and the ResNet for CIFAR-10 (Table 4, the
blocks of Fig. 8 / the authors' chainer code, pfnet-research/sngan_projection). Spectral
normalization is `gandyn.nn.spectral_norm`, applied to the whole discriminator.

Sizes: the CNNs and the ResNet generator start from a size/8 x size/8 map and upsample 3 times:
size must be a multiple of 8 (32: CIFAR-10/SVHN, M_g = 4; 48: STL-10, M_g = 6; 16: 16x16 digits,
M_g = 2). The ResNet discriminator (2 halvings, then global sum pooling) takes any multiple of 4.
`channels` is free (1 for digits, 3 for RGB). Widths are configurable (tests use tiny ones).
"""
from __future__ import annotations

import math
from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from gandyn.nn.models.init import init_weights
from gandyn.nn.models.mlp import _positive, check_input
from gandyn.nn.spectral_norm import spectral_norm as apply_spectral_norm

__all__ = ["SNGANCNNGenerator", "SNGANCNNDiscriminator", "SNGANResNetGenerator", "SNGANResNetDiscriminator",
           "SNGANResNetFeatures", "GenBlock", "DiscBlock", "DiscOptimizedBlock", "check_size"]

RESIDUAL_GAIN = math.sqrt(2)  # GlorotUniform(sqrt 2) of the residual 3x3 convs in the chainer code


def check_size(size: int, multiple: int, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < multiple or size % multiple:
        raise ValueError(f"size: {what} needs a positive multiple of {multiple}, got {size!r}")
    return size


def _residual_conv(cin: int, cout: int) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 3, 1, 1)
    conv.init_gain = RESIDUAL_GAIN
    return conv


# ----------------------------------------------------------------------------- standard CNN

class SNGANCNNGenerator(nn.Module):
    """Table 3 (a) of Miyato et al. 2018, as the code's DCGANGenerator: z (B, latent_dim) -> dense to
    M_g x M_g x width (M_g = size/8), BN, ReLU; deconv 4x4 stride 2 to width/2, width/4, width/8, each
    BN + ReLU; conv 3x3 stride 1 to `channels`; tanh. Init N(0, 0.02) (the code's wscale) by default.
    (The table omits the BN + ReLU after the dense layer; the code has them.)"""

    def __init__(self, latent_dim: int = 128, channels: int = 3, size: int = 32, width: int = 512,
                 init: str = "dcgan") -> None:
        super().__init__()
        check_size(size, 8, "the SNGAN CNN generator")
        check_size(width, 8, "width: the SNGAN CNN generator (width/8 channels at the top)")
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.out_shape = (_positive("channels", channels), size, size)
        self.num_classes = 0
        self.bottom, self.width = size // 8, width
        w = width
        self.l0 = nn.Linear(latent_dim, self.bottom ** 2 * w)
        self.bn0 = nn.BatchNorm1d(self.bottom ** 2 * w)
        self.main = nn.Sequential(
            nn.ConvTranspose2d(w, w // 2, 4, 2, 1), nn.BatchNorm2d(w // 2), nn.ReLU(),
            nn.ConvTranspose2d(w // 2, w // 4, 4, 2, 1), nn.BatchNorm2d(w // 4), nn.ReLU(),
            nn.ConvTranspose2d(w // 4, w // 8, 4, 2, 1), nn.BatchNorm2d(w // 8), nn.ReLU(),
            nn.Conv2d(w // 8, channels, 3, 1, 1), nn.Tanh())
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        h = F.relu(self.bn0(self.l0(z))).view(-1, self.width, self.bottom, self.bottom)
        return self.main(h)


class SNGANCNNDiscriminator(nn.Module):
    """Table 3 (b) of Miyato et al. 2018: x (B, channels, size, size) -> logits (B,).

    layout="paper" (the table; width = 512):
        conv 3x3 s1 64, conv 4x4 s2 64, conv 3x3 s1 128, conv 4x4 s2 128, conv 3x3 s1 256,
        conv 4x4 s2 256, conv 3x3 s1 512, each LeakyReLU(0.1); dense M_g*M_g*512 -> 1.
    layout="code" (chainer-gan-lib's SNDCGANDiscriminator): the channels double at the strided
        convs instead: 64, 128, 128, 256, 256, 512, 512.
    Channel counts scale as width/8, width/4, width/2, width. Every conv and the dense layer have a
    bias and spectral normalization (spectral_norm=True); init N(0, 0.02) as the code (irrelevant
    to the normalized weights, whose scale SN removes)."""

    def __init__(self, channels: int = 3, size: int = 32, width: int = 512, spectral_norm: bool = True,
                 layout: str = "paper", slope: float = 0.1, init: str = "dcgan") -> None:
        super().__init__()
        check_size(size, 8, "the SNGAN CNN discriminator")
        check_size(width, 8, "width: the SNGAN CNN discriminator (width/8 channels in the first layer)")
        if layout not in ("paper", "code"):
            raise ValueError(f"layout: expected 'paper' or 'code', got {layout!r}")
        self.in_shape = (_positive("channels", channels), size, size)
        self.num_classes = 0
        w = width
        if layout == "paper":
            outs = [w // 8, w // 8, w // 4, w // 4, w // 2, w // 2, w]
        else:
            outs = [w // 8, w // 4, w // 4, w // 2, w // 2, w, w]
        layers: list[nn.Module] = []
        cin = channels
        for i, cout in enumerate(outs):
            layers += [nn.Conv2d(cin, cout, 3, 1, 1) if i % 2 == 0 else nn.Conv2d(cin, cout, 4, 2, 1),
                       nn.LeakyReLU(slope)]
            cin = cout
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.linear = nn.Linear((size // 8) ** 2 * w, 1)
        init_weights(self, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.in_shape)
        return self.linear(self.features(x)).squeeze(1)


# ----------------------------------------------------------------------------- ResNet blocks

def _apply_norm(norm: nn.Module, h: Tensor, y: Tensor | None) -> Tensor:
    return norm(h) if y is None else norm(h, y)


class GenBlock(nn.Module):
    """Generator ResBlock (Fig. 8 (a) of Miyato et al. 2018 / gen_models/resblocks.py):
    residual: norm, ReLU, [nearest 2x upsample], conv 3x3, norm, ReLU, conv 3x3;
    shortcut: [upsample], conv 1x1 (when the channels change or it upsamples), else identity.
    `norm(channels)` builds the normalization: BatchNorm2d, or a class-conditional one, called
    norm(h, y), when forward gets labels y."""

    def __init__(self, in_channels: int, out_channels: int, upsample: bool = True,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        self.upsample = upsample
        self.b1 = norm(in_channels)
        self.c1 = _residual_conv(in_channels, out_channels)
        self.b2 = norm(out_channels)
        self.c2 = _residual_conv(out_channels, out_channels)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1, 1, 0) if (in_channels != out_channels or upsample) \
            else None

    def _up(self, h: Tensor) -> Tensor:
        return F.interpolate(h, scale_factor=2, mode="nearest") if self.upsample else h

    def forward(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.c1(self._up(F.relu(_apply_norm(self.b1, x, y))))
        h = self.c2(F.relu(_apply_norm(self.b2, h, y)))
        sc = x if self.c_sc is None else self.c_sc(self._up(x))
        return h + sc


class DiscBlock(nn.Module):
    """Discriminator ResBlock (Fig. 8 (b) / dis_models/resblocks.py Block):
    residual: ReLU, conv 3x3 (in -> in), ReLU, conv 3x3 (in -> out), [avg-pool 2];
    shortcut: conv 1x1, [avg-pool 2] (when the channels change or it downsamples), else identity."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool = False) -> None:
        super().__init__()
        self.downsample = downsample
        self.c1 = _residual_conv(in_channels, in_channels)
        self.c2 = _residual_conv(in_channels, out_channels)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1, 1, 0) if (in_channels != out_channels or downsample) \
            else None

    def _down(self, h: Tensor) -> Tensor:
        return F.avg_pool2d(h, 2) if self.downsample else h

    def forward(self, x: Tensor) -> Tensor:
        h = self._down(self.c2(F.relu(self.c1(F.relu(x)))))
        sc = x if self.c_sc is None else self._down(self.c_sc(x))
        return h + sc


class DiscOptimizedBlock(nn.Module):
    """The discriminator's first block (dis_models/resblocks.py OptimizedBlock): no ReLU before the first
    conv; residual: conv 3x3, ReLU, conv 3x3, avg-pool 2; shortcut: avg-pool 2, conv 1x1."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.c1 = _residual_conv(in_channels, out_channels)
        self.c2 = _residual_conv(out_channels, out_channels)
        self.c_sc = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: Tensor) -> Tensor:
        h = F.avg_pool2d(self.c2(F.relu(self.c1(x))), 2)
        return h + self.c_sc(F.avg_pool2d(x, 2))


# ----------------------------------------------------------------------------- ResNet models

class _ResNetGeneratorBase(nn.Module):
    """Table 4 (a): z -> dense to M_g x M_g x width; 3 up-ResBlocks (width); BN, ReLU, conv 3x3 to
    `channels`; tanh. `norm` is the blocks' normalization (the final BN is always plain, as the code)."""

    def _build(self, latent_dim: int, channels: int, size: int, width: int, init: str,
               norm: Callable[[int], nn.Module]) -> None:
        check_size(size, 8, "the SNGAN ResNet generator")
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.out_shape = (_positive("channels", channels), size, size)
        self.bottom, self.width = size // 8, _positive("width", width)
        self.l1 = nn.Linear(latent_dim, self.bottom ** 2 * width)
        self.blocks = nn.ModuleList([GenBlock(width, width, upsample=True, norm=norm) for _ in range(3)])
        self.b5 = nn.BatchNorm2d(width)
        self.c5 = nn.Conv2d(width, channels, 3, 1, 1)
        init_weights(self, init)

    def _generate(self, z: Tensor, y: Tensor | None) -> Tensor:
        h = self.l1(z).view(-1, self.width, self.bottom, self.bottom)
        for block in self.blocks:
            h = block(h, y)
        return self.c5(F.relu(self.b5(h))).tanh()


class SNGANResNetGenerator(_ResNetGeneratorBase):
    """Miyato et al. 2018, Table 4 (a) (CIFAR-10: latent 128, width 256, size 32): z (B, latent_dim) ->
    images (B, channels, size, size) in [-1, 1]. Xavier init with the code's gains by default."""

    def __init__(self, latent_dim: int = 128, channels: int = 3, size: int = 32, width: int = 256,
                 init: str = "xavier") -> None:
        super().__init__()
        self.num_classes = 0
        self._build(latent_dim, channels, size, width, init, nn.BatchNorm2d)

    def forward(self, z: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        return self._generate(z, None)


class SNGANResNetFeatures(nn.Module):
    """phi of the ResNet discriminator (Table 4 (b)): optimized down-block (width), down-ResBlock,
    ResBlock, ResBlock (all `width` channels), ReLU, global sum pooling: (B, C, S, S) -> (B, width)."""

    def __init__(self, channels: int = 3, width: int = 128) -> None:
        super().__init__()
        self.width = _positive("width", width)
        self.blocks = nn.Sequential(
            DiscOptimizedBlock(_positive("channels", channels), width),
            DiscBlock(width, width, downsample=True),
            DiscBlock(width, width), DiscBlock(width, width))

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.blocks(x)).sum(dim=(2, 3))


class SNGANResNetDiscriminator(nn.Module):
    """Miyato et al. 2018, Table 4 (b) (CIFAR-10: width 128): logit = psi(phi(x)), phi the
    SNGANResNetFeatures, psi a dense layer width -> 1; SN on every conv and dense layer.
    (Two halvings: 32 -> 16 -> 8, then two ResBlocks at 8x8, as the table and the code's
    snresnet_32.py.) size: any multiple of 4."""

    def __init__(self, channels: int = 3, size: int = 32, width: int = 128, spectral_norm: bool = True,
                 init: str = "xavier") -> None:
        super().__init__()
        check_size(size, 4, "the SNGAN ResNet discriminator")
        self.in_shape = (_positive("channels", channels), size, size)
        self.num_classes = 0
        self.phi = SNGANResNetFeatures(channels, width)
        self.psi = nn.Linear(width, 1)
        init_weights(self, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, self.in_shape)
        return self.psi(self.phi(x)).squeeze(1)
