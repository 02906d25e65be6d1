"""MLP generator and discriminator for low-dimensional data (2-D mixtures of Gaussians, rings, grids),
and the PacGAN sizes (Lin et al. 2018, "PacGAN: the power of two samples in GANs", Sec. 5.1).

    G = MLPGenerator(latent_dim=2, out_dim=2)      # G(z): (B, 2) -> (B, 2), linear output
    D = MLPDiscriminator(in_dim=2)                 # D(x): (B, 2) -> (B,) logits
"""
from __future__ import annotations

from torch import Tensor, nn

from gandyn.nn.models.init import init_weights
from gandyn.nn.spectral_norm import spectral_norm as apply_spectral_norm

__all__ = ["MLPGenerator", "MLPDiscriminator", "Maxout", "pacgan_generator", "pacgan_discriminator"]

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")


def activation_layer(name: str) -> nn.Module:
    """"relu", "leaky_relu" (slope 0.2, DCGAN's), "tanh" or "elu"."""
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "tanh":
        return nn.Tanh()
    if name == "elu":
        return nn.ELU()
    raise ValueError(f"activation: expected one of {list(ACTIVATIONS)}, got {name!r}")


def check_input(model: nn.Module, x: Tensor, shape: tuple, what: str = "x") -> None:
    """A clear error when x is not (B, *shape)."""
    if not isinstance(x, Tensor) or x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{type(model).__name__}: {what} must have shape (B, {', '.join(map(str, shape))}), "
                         f"got {got}")


def _positive(name: str, value: int, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return value


class Maxout(nn.Module):
    """Maxout units (Goodfellow et al. 2013): a Linear to out_features * pieces, then the max over
    each unit's `pieces` consecutive outputs (TensorFlow's maxout layout)."""

    def __init__(self, in_features: int, out_features: int, pieces: int) -> None:
        super().__init__()
        self.out_features, self.pieces = out_features, _positive("pieces", pieces)
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).unflatten(-1, (self.out_features, self.pieces)).amax(-1)


class MLPGenerator(nn.Module):
    """z (B, latent_dim) -> x (B, out_dim): `depth` hidden layers of `hidden` units
    (Linear [BatchNorm1d] activation), then a linear output layer (no tanh: 2-D data is unbounded)."""

    def __init__(self, latent_dim: int = 2, out_dim: int = 2, hidden: int = 128, depth: int = 3,
                 batch_norm: bool = False, activation: str = "relu", init: str = "default") -> None:
        super().__init__()
        self.latent_dim = _positive("latent_dim", latent_dim)
        self.out_shape = (_positive("out_dim", out_dim),)
        self.num_classes = 0
        _positive("hidden", hidden)
        _positive("depth", depth, 0)
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(depth):
            layers.append(nn.Linear(width, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(activation_layer(activation))
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)
        init_weights(self, init)

    def forward(self, z: Tensor) -> Tensor:
        check_input(self, z, (self.latent_dim,), "z")
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x (B, in_dim) -> logits (B,): `depth` hidden layers of `hidden` units, each Linear + activation,
    or, with maxout = k > 0, Maxout units of k pieces; a linear output unit. Optional spectral norm
    (gandyn.nn.spectral_norm, every Linear).

    packing = m > 1 is PacGAN's packing (Lin et al. 2018): D sees m samples at once. D(x) reshapes x
    (B, d) -> (B/m, m*d), consecutive samples forming one pack (B must be divisible by m), computes
    B/m logits with `self.net` (input m*d), and repeats each m times, so the output is still one
    logit per sample, shape (B,). The GAN losses average over samples, so this average equals
    PacGAN's average over packs exactly (each pack's loss counted m times, divided by B).
    """

    def __init__(self, in_dim: int = 2, hidden: int = 128, depth: int = 3, activation: str = "leaky_relu",
                 maxout: int = 0, spectral_norm: bool = False, packing: int = 1, init: str = "default") -> None:
        super().__init__()
        self.in_dim = _positive("in_dim", in_dim)
        self.packing = _positive("packing", packing)
        self.num_classes = 0
        _positive("hidden", hidden)
        _positive("depth", depth, 0)
        _positive("maxout", maxout, 0)
        if not maxout:
            activation_layer(activation)  # validate
        layers: list[nn.Module] = []
        width = in_dim * packing
        for _ in range(depth):
            if maxout:
                layers.append(Maxout(width, hidden, maxout))
            else:
                layers += [nn.Linear(width, hidden), activation_layer(activation)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)
        init_weights(self, init)
        if spectral_norm:
            apply_spectral_norm(self)

    def features(self, x: Tensor) -> Tensor:
        """The last hidden layer's activations (B, hidden): the layer feature matching matches
        (packing = 1 only: a pack has one feature vector)."""
        check_input(self, x, (self.in_dim,))
        if self.packing != 1:
            raise ValueError(f"{type(self).__name__}: features are per sample, but packing = {self.packing}")
        return self.net[:-1](x)

    def forward(self, x: Tensor) -> Tensor:
        check_input(self, x, (self.in_dim,))
        m = self.packing
        if m == 1:
            return self.net(x).squeeze(-1)
        if x.shape[0] % m:
            raise ValueError(f"{type(self).__name__}: with packing = {m} the batch size must be divisible "
                             f"by {m}, got a batch of {x.shape[0]}")
        logits = self.net(x.reshape(x.shape[0] // m, m * self.in_dim)).squeeze(-1)
        return logits.repeat_interleave(m)


def pacgan_generator(latent_dim: int = 2, out_dim: int = 2, init: str = "default") -> MLPGenerator:
    """PacGAN's 2-D generator (Lin et al. 2018, Sec. 5.1, following VEEGAN's setup): 4 hidden layers of
    400 ReLU units with batch normalization, linear output. Latent: we take z ~ N(0, I_2), the 2-D
    Gaussian noise of the 2-D grid/ring experiments (latent_dim=2)."""
    return MLPGenerator(latent_dim, out_dim, hidden=400, depth=4, batch_norm=True, activation="relu", init=init)


def pacgan_discriminator(packing: int = 1, in_dim: int = 2, spectral_norm: bool = False,
                         init: str = "default") -> MLPDiscriminator:
    """PacGAN's 2-D discriminator (Lin et al. 2018, Sec. 5.1): 3 hidden layers of 200 maxout units with
    5 pieces, input the concatenation of `packing` samples (packing=1: the unpacked GAN); see
    MLPDiscriminator for how packing keeps one logit per sample."""
    return MLPDiscriminator(in_dim, hidden=200, depth=3, maxout=5, spectral_norm=spectral_norm,
                            packing=packing, init=init)
