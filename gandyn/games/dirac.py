"""The Dirac-GAN (Mescheder et al., 2018): the smallest GAN that shows why GANs spiral.

Real data is a point mass at 0, the generator outputs the constant θ
(G(z) = θ) and the discriminator is linear, D(x) = ψ·x. It is a `GANGame`
with those two one-parameter modules and a batch of one sample (every
expectation is exact), so the GAN losses of `gandyn.nn.losses` apply as they
do to any GAN: with d_r = D(0) = 0 and d_f = D(θ) = ψθ.

In Mescheder's notation L(θ, ψ) = f(ψθ) + f(0) with f(t) = −log(1 + e^{−t})
("saturating"/"non-saturating") or f(t) = t ("wasserstein"; "hinge" agrees
with it near the equilibrium). Here every player minimizes its own loss and
the logits have the opposite sign (D is large on real data), which leaves the
game Jacobian at the equilibrium (0, 0) exactly as in the paper:

    J = [[0, −f′(0)], [f′(0), 0]],  eigenvalues ±i·f′(0)  (f′(0) = ½ or 1),

purely imaginary: gradient descent on both players is not asymptotically
stable there. Regularizers of D (one convention each, as in DESIGN.md):

- "r1":      γ/2 · E‖∇ₓD(x)‖² at real samples,
- "r2":      γ/2 · E‖∇ₓD(x)‖² at generated samples (taken as constants),
- "wgan-gp": γ · E(‖∇ₓD(x̂)‖ − 1)² at x̂ = εx_real + (1−ε)x_fake, ε ~ U(0, 1).

For the linear D, ∇ₓD = ψ everywhere, so R1 and R2 both add γψ²/2 to D's loss
and J = [[0, −f′(0)], [f′(0), γ]], eigenvalues (γ ± √(γ² − 4f′(0)²))/2 with
positive real parts: locally asymptotically stable. WGAN-GP adds γ(|ψ| − 1)²,
which is not differentiable at ψ = 0.

Instance noise (Sønderby et al. 2016; Mescheder et al. 2018 § 3.2): N(0, σ²) added to
D's inputs, real and fake, with `batch_size` noise draws per step (the field is then
a Monte Carlo estimate of the expected one). In expectation D's loss gains the
curvature −2f″(0)σ² in ψ at the equilibrium, J = [[0, −f′(0)], [f′(0), −2f″(0)σ²]]
(f″(0) = −¼ for the logistic losses): it converges too. WGAN's weight clipping is a
box constraint on D (`[players.D] constraint = {box = [-c, c]}` of the optimizer).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gandyn import config as configs
from gandyn.games.gan import GANGame
from gandyn.nn.losses import LOSSES
from gandyn.nn.penalties import input_gradient

REGULARIZERS = (None, "r1", "r2", "wgan-gp")


class ConstantGenerator(nn.Module):
    """G(z) = θ for every latent z."""

    def __init__(self, theta: Tensor):
        super().__init__()
        self.theta = nn.Parameter(theta)

    def forward(self, z: Tensor) -> Tensor:
        return self.theta.expand(z.shape[0], 1)


class LinearDiscriminator(nn.Module):
    """D(x) = ψ·x (one logit per sample)."""

    def __init__(self, psi: Tensor):
        super().__init__()
        self.psi = nn.Parameter(psi)

    def forward(self, x: Tensor) -> Tensor:
        return x[:, 0] * self.psi


def _input_gradient(D: nn.Module, x: Tensor) -> Tensor:
    """∇ₓD(x) per sample as (B, features), differentiable with respect to D's parameters;
    the samples enter as constants."""
    grad = input_gradient(D, x.detach())
    return grad.reshape(grad.shape[0], -1)


class DiracGAN(GANGame):
    """Dirac-GAN with a GAN loss of `gandyn.nn.losses` and an optional regularizer of D.

    Players: [[θ], [ψ]] (generator, discriminator), each a tensor of shape (1,).
    `seed` seeds the ε of WGAN-GP's interpolates (irrelevant to its value here: ∇ₓD = ψ)
    and the instance noise. Without instance noise every sample of a batch is the same.
    """

    def __init__(self, loss: str = "saturating", regularizer: str | None = None, gamma: float = 1.0, *,
                 theta0: float = 1.0, psi0: float = 1.0, instance_noise: float = 0.0, batch_size: int = 1,
                 dtype: torch.dtype | str = torch.float64, seed: int = 0):
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer: expected one of {REGULARIZERS}, got {regularizer!r}")
        if not (isinstance(gamma, (int, float)) and math.isfinite(gamma) and gamma >= 0):
            raise ValueError(f"gamma: expected a finite number >= 0, got {gamma!r}")
        for name, value in (("theta0", theta0), ("psi0", psi0)):
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise ValueError(f"{name}: expected a finite number, got {value!r}")
        dtype = configs.dtype(dtype)  # a torch dtype, or its name in a config file
        self.regularizer, self.gamma, self.dtype = regularizer, float(gamma), dtype
        self._eps_generator = torch.Generator().manual_seed(seed)
        G = ConstantGenerator(torch.tensor([float(theta0)], dtype=dtype))
        D = LinearDiscriminator(torch.tensor([float(psi0)], dtype=dtype))
        super().__init__(G, D, self._real, self._latent, loss=loss, batch_size=batch_size,
                         d_regularizer=None if regularizer is None else self._penalty,
                         instance_noise=instance_noise, seed=seed)

    @property
    def theta(self) -> Tensor:
        return self.G.theta

    @property
    def psi(self) -> Tensor:
        return self.D.psi

    def _real(self, n: int) -> Tensor:
        return torch.zeros(n, 1, dtype=self.dtype)

    def _latent(self, n: int) -> Tensor:
        return torch.zeros(n, 1, dtype=self.dtype)

    def _penalty(self, D: nn.Module, real: Tensor, fake: Tensor) -> Tensor:
        if self.regularizer == "r1":
            return self.gamma / 2 * _input_gradient(D, real).pow(2).sum(1).mean()
        if self.regularizer == "r2":
            return self.gamma / 2 * _input_gradient(D, fake).pow(2).sum(1).mean()
        eps = torch.rand(real.shape[0], 1, generator=self._eps_generator, dtype=real.dtype)
        x_hat = eps * real + (1 - eps) * fake
        return self.gamma * (_input_gradient(D, x_hat).norm(dim=1) - 1).pow(2).mean()

    def distance_to_equilibrium(self) -> float:
        """Distance to the equilibrium (θ, ψ) = (0, 0)."""
        return math.hypot(self.theta.item(), self.psi.item())
