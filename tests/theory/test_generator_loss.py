"""Item 2 of the theory lab: the gradient of the saturating generator loss vanishes as
D(G(z)) → 0, the non-saturating one's does not. References: the closed forms in the logit
(∂/∂a log(1 − σ(a)) = −σ(a), ∂/∂a [−log σ(a)] = −(1 − σ(a))) and the chain rule through D."""
import numpy as np
import pytest
import torch
from torch import nn

from gandyn.optim import SimGD
from gandyn.theory import gaussian_game, train_discriminator
from gandyn.theory.generator_gradient import generator_gradients


def test_autograd_matches_the_closed_forms_in_the_logit():
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    with torch.no_grad():
        D[2].weight.mul_(20)   # logits over a wide range: D(x) from ~0 to ~1
    x = torch.linspace(-3, 3, 101, dtype=torch.float64)[:, None]
    for loss, closed_form in (("saturating", lambda d: -d), ("non-saturating", lambda d: -(1 - d))):
        d, d_logit, d_x = generator_gradients(loss, D, x)
        # rel 1e-7: torch's softplus is linear beyond 20 (threshold: off by e^-20 = 2e-9 there) and its
        # backward and torch.sigmoid agree to ~6e-8 relative where σ(a) < 1e-8.
        assert d_logit.numpy() == pytest.approx(closed_form(d).numpy(), rel=1e-7, abs=1e-300)
        # Chain rule: ∂L/∂x = ∂L/∂a · ∂a/∂x, ∂a/∂x by central differences.
        h = 1e-6
        da = ((D(x + h) - D(x - h)) / (2 * h))[:, 0].detach()
        assert d_x[:, 0].numpy() == pytest.approx((d_logit * da).numpy(), rel=1e-6, abs=1e-12)
    d_sat = generator_gradients("saturating", D, x)[1].abs()
    d_ns = generator_gradients("non-saturating", D, x)[1].abs()
    small = generator_gradients("saturating", D, x)[0] < 1e-3
    assert small.any() and (d_sat[small] < 1e-3).all() and (d_ns[small] > 0.999).all()


def test_a_rejected_generator_stalls_under_the_saturating_loss():
    """G = N(μ, 0.5²) at μ = 5 against p_data = N(0, 1), D trained first: 50 SGD steps move μ
    by < 0.1 with log(1 − D(G(z))) and by > 2 with −log D(G(z))."""
    moved = {}
    for loss in ("saturating", "non-saturating"):
        torch.manual_seed(0)
        game = train_discriminator(gaussian_game(5.0, 0.5, loss=loss, batch_size=256), 300)
        opt = SimGD(game.players, lr=0.05)
        for _ in range(50):
            opt.step(game)
        moved[loss] = 5.0 - float(game.G.mu.detach())
    assert abs(moved["saturating"]) < 0.1 and moved["non-saturating"] > 2.0


def test_generator_gradients_refuses_other_losses():
    with pytest.raises(ValueError, match="loss"):
        generator_gradients("wasserstein", nn.Linear(1, 1), torch.zeros(2, 1))
