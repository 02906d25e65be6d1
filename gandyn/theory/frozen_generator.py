"""Train D alone against a frozen G, and read off the value of the game.

With G fixed, D's loss of a GANGame is a plain minimization over D: for the (non-)saturating
loss its minimizer is D*(x) = p_data/(p_data + p_g) (Goodfellow et al. 2014, Prop. 1) and
−L_D(D*) = V(G, D*) = −log 4 + 2·JSD(p_data ‖ p_g); for the Wasserstein loss with the WGAN-GP
penalty it is the critic f with E_p f − E_q f ≈ W₁(p, q) (Gulrajani et al. 2017).
G's parameters are never stepped; D steps with Adam on the game's own minibatches and loss.
`regress_discriminator` instead fits D to a given function (a warm start).
"""
from __future__ import annotations

import torch

from gandyn.games.gan import GANGame
from gandyn.nn.losses import gan_losses


def train_discriminator(game: GANGame, steps: int, lr: float = 1e-2, betas=(0.9, 0.999),
                        final_lr: float = 1e-4) -> GANGame:
    """`steps` Adam steps of D on the game's D loss (penalty included), G frozen. The step size
    decays geometrically from lr to final_lr, so the last iterates average out minibatch noise."""
    _check_steps(steps)
    if not (0 < final_lr <= lr):
        raise ValueError(f"lr, final_lr: expected 0 < final_lr <= lr, got lr={lr!r}, final_lr={final_lr!r}")
    opt = torch.optim.Adam(game.players[1], lr=lr, betas=tuple(betas))
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=(final_lr / lr) ** (1 / steps))
    for _ in range(steps):
        game.resample()
        _step_d(game, opt, game.losses()[1])
        sched.step()
    return game


def _check_steps(steps) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")


def _step_d(game: GANGame, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of D's optimizer on `loss`, with gradients taken for D's parameters only."""
    for p, g in zip(game.players[1], torch.autograd.grad(loss, game.players[1])):
        p.grad = g
    opt.step()


@torch.no_grad()
def discriminator_value(game: GANGame, n: int = 200_000, seed: int = 1) -> float:
    """−L_D without the penalty, on n fresh samples of each distribution: V(G, D) =
    E log D(x) + E log(1 − D(G(z))) for the (non-)saturating loss, E f(x) − E f(G(z)) (the
    critic's W₁ estimate) for the Wasserstein loss. The game's minibatch and RNGs are kept."""
    if game.loss not in ("saturating", "non-saturating", "wasserstein"):
        raise ValueError(f"game: expected a saturating, non-saturating or wasserstein game, got {game.loss!r}")
    g = torch.Generator().manual_seed(seed)
    real, _ = game._real.sample(n, g)
    fake = game.generate(game.latents(n, g))
    _, loss_d = gan_losses(game.loss, game.discriminate(real), game.discriminate(fake))
    return float(-loss_d)


def regress_discriminator(game: GANGame, target, steps: int, lr: float = 1e-2) -> GANGame:
    """Warm start: `steps` Adam steps fitting D's output (the logit or critic value) to target(x)
    by least squares on the game's real and generated minibatches, G frozen. Used to ask whether
    training keeps a D it does not find from its initialization (the |x| critic of a symmetric
    pair, theory lab item 4)."""
    _check_steps(steps)
    if not callable(target):
        raise ValueError(f"target: expected a function of a batch x, got {target!r}")
    opt = torch.optim.Adam(game.players[1], lr=lr)
    for _ in range(steps):
        game.resample()
        with torch.no_grad():
            x = torch.cat([game.real, game.generate(game.z, game.y_fake)])
            y = target(x)
        _step_d(game, opt, (game.discriminate(x) - y.reshape(len(x))).pow(2).mean())
    return game
