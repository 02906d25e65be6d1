"""Class-conditional GANs: G(z, y), D(x, y) with int64 labels y of shape (B,) in [0, num_classes).

(a) Mirza & Osindero 2014, "Conditional generative adversarial nets": the one-hot label is
    concatenated to G's latent and to D's input. MLP: concatenated to the vector. DCGAN: to z
    (G sees latent_dim + num_classes inputs) and, broadcast over the image, as num_classes extra
    input channels of D.
(b) The SNGAN/projection models of Miyato & Koyama 2018, "cGANs with projection discriminator"
    (ICLR 2018), CIFAR-10 ResNets (their Fig. 14 / the code's resnet_32.py, snresnet_32.py):
    a generator whose ResBlocks use categorical conditional batch norm, and the projection
    discriminator logit = psi(phi(x)) + <embed(y), phi(x)>, with SN on the embedding too.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gandyn.nn.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gandyn.nn.models.init import init_weights
from gandyn.nn.models.mlp import MLPDiscriminator, MLPGenerator, _positive, check_input
from gandyn.nn.models.sngan import SNGANResNetFeatures, _ResNetGeneratorBase, check_size
from gandyn.nn.spectral_norm import DEFAULT_LAYER_TYPES
from gandyn.nn.spectral_norm import spectral_norm as apply_spectral_norm

__all__ = ["ConditionalMLPGenerator", "ConditionalMLPDiscriminator", "ConditionalDCGANGenerator",
           "ConditionalDCGANDiscriminator", "ConditionalBatchNorm2d", "ConditionalSNGANResNetGenerator",
           "SNGANProjectionDiscriminator", "check_labels"]


def _num_classes(num_classes: int) -> int:
    return _positive("num_classes", num_classes)


def check_labels(model: nn.Module, y: Tensor, batch: int) -> None:
    """y must be an int64 tensor of shape (batch,) (its range is checked by one_hot / embedding)."""
    if not isinstance(y, Tensor) or y.dtype != torch.int64 or tuple(y.shape) != (batch,):
        got = f"{y.dtype} of shape {tuple(y.shape)}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"{type(model).__name__}: labels y must be an int64 tensor of shape ({batch},), got {got}")


def _one_hot(model: nn.Module, y: Tensor, batch: int, like: Tensor) -> Tensor:
    check_labels(model, y, batch)
    return F.one_hot(y, model.num_classes).to(like.dtype)


# ----------------------------------------------------------------------------- (a) concatenation

class ConditionalMLPGenerator(nn.Module):
    """G(z, y) = MLPGenerator(latent_dim + num_classes)(cat(z, one_hot(y)))."""

    def __init__(self, num_classes: int, latent_dim: int = 2, out_dim: int = 2, hidden: int = 128, depth: int = 3,
                 batch_norm: bool = False, activation: str = "relu", init: str = "default") -> None:
        super().__init__()
        self.num_classes = _num_classes(num_classes)
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.net = MLPGenerator(latent_dim + num_classes, out_dim, hidden, depth, batch_norm, activation, init)
        self.out_shape = self.net.out_shape

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        return self.net(torch.cat([z, _one_hot(self, y, z.shape[0], z)], 1))


class ConditionalMLPDiscriminator(nn.Module):
    """D(x, y) = MLPDiscriminator(in_dim + num_classes)(cat(x, one_hot(y))): logits (B,)."""

    def __init__(self, num_classes: int, in_dim: int = 2, hidden: int = 128, depth: int = 3,
                 activation: str = "leaky_relu", maxout: int = 0, spectral_norm: bool = False,
                 init: str = "default") -> None:
        super().__init__()
        self.num_classes = _num_classes(num_classes)
        self.in_dim = _positive("in_dim", in_dim)
        self.net = MLPDiscriminator(in_dim + num_classes, hidden, depth, activation, maxout, init=init)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_input(self, x, (self.in_dim,))
        return self.net(torch.cat([x, _one_hot(self, y, x.shape[0], x)], 1))


class ConditionalDCGANGenerator(nn.Module):
    """G(z, y) = DCGANGenerator(latent_dim + num_classes)(cat(z, one_hot(y)))."""

    def __init__(self, num_classes: int, latent_dim: int = 100, channels: int = 3, size: int = 32,
                 width: int = 64, init: str = "dcgan") -> None:
        super().__init__()
        self.num_classes = _num_classes(num_classes)
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.net = DCGANGenerator(latent_dim + num_classes, channels, size, width, init)
        self.out_shape = self.net.out_shape

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        return self.net(torch.cat([z, _one_hot(self, y, z.shape[0], z)], 1))


class ConditionalDCGANDiscriminator(nn.Module):
    """D(x, y) = DCGANDiscriminator(channels + num_classes)(cat(x, one_hot(y) broadcast to S x S), dim 1)."""

    def __init__(self, num_classes: int, channels: int = 3, size: int = 32, width: int = 64,
                 batch_norm: bool = True, spectral_norm: bool = False, init: str = "dcgan") -> None:
        super().__init__()
        self.num_classes = _num_classes(num_classes)
        self.net = DCGANDiscriminator(_positive("channels", channels) + num_classes, size, width, batch_norm,
                                      init=init)
        self.in_shape = (channels, size, size)
        if spectral_norm:
            apply_spectral_norm(self)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_input(self, x, self.in_shape)
        b, _, h, w = x.shape
        maps = _one_hot(self, y, b, x)[:, :, None, None].expand(b, self.num_classes, h, w)
        return self.net(torch.cat([x, maps], 1))


# ----------------------------------------------------------------------------- (b) CBN and projection

class ConditionalBatchNorm2d(nn.Module):
    """Categorical conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018):
    BatchNorm2d without affine (batch statistics in training, running statistics in eval), then
    a per-class scale and shift: out = BN(x) * gamma[y] + beta[y], with `gamma`, `beta` parameters
    of shape (num_classes, num_features) (an embedding table per class), init 1 and 0."""

    def __init__(self, num_features: int, num_classes: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.num_features, self.num_classes = _positive("num_features", num_features), _num_classes(num_classes)
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Parameter(torch.ones(num_classes, num_features))
        self.beta = nn.Parameter(torch.zeros(num_classes, num_features))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_labels(self, y, x.shape[0])
        return self.bn(x) * self.gamma[y][:, :, None, None] + self.beta[y][:, :, None, None]


class ConditionalSNGANResNetGenerator(_ResNetGeneratorBase):
    """Miyato & Koyama 2018's CIFAR-10 generator (= SNGANResNetGenerator, Miyato et al. 2018 Table 4 (a),
    with ConditionalBatchNorm2d in the ResBlocks): G(z, y) -> (B, channels, size, size) in [-1, 1]."""

    def __init__(self, num_classes: int, latent_dim: int = 128, channels: int = 3, size: int = 32,
                 width: int = 256, init: str = "xavier") -> None:
        super().__init__()
        self.num_classes = _num_classes(num_classes)
        self._build(latent_dim, channels, size, width, init, partial(ConditionalBatchNorm2d, num_classes=num_classes))

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        check_labels(self, y, z.shape[0])
        return self._generate(z, y)


class SNGANProjectionDiscriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018, Eq. 3 and the CIFAR-10 model: snresnet_32.py):
    logit = psi(phi(x)) + <embed(y), phi(x)>, phi = SNGANResNetFeatures (optimized down-block, down,
    plain, plain ResBlocks, ReLU, global sum pooling), psi = Linear(width, 1), embed =
    Embedding(num_classes, width); spectral normalization on every conv, psi AND the embedding
    (the code's SNEmbedID: sigma of the num_classes x width table). Submodules `phi`, `psi`, `embed`."""

    def __init__(self, num_classes: int, channels: int = 3, size: int = 32, width: int = 128,
                 spectral_norm: bool = True, init: str = "xavier") -> None:
        super().__init__()
        check_size(size, 4, "the projection discriminator")
        self.num_classes = _num_classes(num_classes)
        self.in_shape = (_positive("channels", channels), size, size)
        self.phi = SNGANResNetFeatures(channels, width)
        self.psi = nn.Linear(width, 1)
        self.embed = nn.Embedding(num_classes, width)
        init_weights(self, init)
        if spectral_norm:
            apply_spectral_norm(self, layer_types=DEFAULT_LAYER_TYPES + (nn.Embedding,))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        check_input(self, x, self.in_shape)
        check_labels(self, y, x.shape[0])
        h = self.phi(x)
        return self.psi(h).squeeze(1) + (self.embed(y) * h).sum(1)
