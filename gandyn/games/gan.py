"""A GAN as a two-player game: generator G and discriminator D, any nn.Modules.

Player 0 is G, player 1 is D; both minimize their own loss (gandyn.nn.losses).
The minibatch (real samples and latents) is drawn by `resample()` and held
fixed until the next call, so that an optimizer that evaluates the field
several times in one step (extragradient, consensus, CGD) sees one game.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor, nn

from gandyn.games.base import Game
from gandyn.nn.losses import LOSSES, gan_losses

Regularizer = Callable[[nn.Module, Tensor, Tensor], Tensor]


class GANGame(Game):
    player_names = ("G", "D")

    def __init__(self, generator: nn.Module, discriminator: nn.Module,
                 sample_real: Callable[[int], Tensor], sample_latent: Callable[[int], Tensor], *,
                 loss: str = "non-saturating", batch_size: int = 64,
                 d_regularizer: Regularizer | None = None):
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if batch_size <= 0:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
        self.G, self.D = generator, discriminator
        self.sample_real, self.sample_latent = sample_real, sample_latent
        self.loss, self.batch_size = loss, batch_size
        self.d_regularizer = d_regularizer
        self.players = [[p for p in generator.parameters() if p.requires_grad],
                        [p for p in discriminator.parameters() if p.requires_grad]]
        self.resample()

    def resample(self) -> None:
        with torch.no_grad():
            self.real = self.sample_real(self.batch_size)
            self.z = self.sample_latent(self.batch_size)

    def losses(self) -> list[Tensor]:
        fake = self.G(self.z)
        lg, ld = gan_losses(self.loss, self.D(self.real), self.D(fake))
        if self.d_regularizer is not None:
            # The regularizer gets G's samples with their graph: it is a term of D's
            # loss, which only D differentiates, so G's field is unchanged, while the
            # Jacobian block ∂v_D/∂θ_G sees how the penalty moves with G.
            ld = ld + self.d_regularizer(self.D, self.real, fake)
        return [lg, ld]

    def state_dict(self) -> dict:
        return {"G": self.G.state_dict(), "D": self.D.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
