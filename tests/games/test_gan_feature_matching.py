"""GANGame(feature_matching=True) (Salimans et al. 2016, Sec. 3.1): G's loss is the squared
distance between the mean real and mean fake features of D's last hidden layer, and minimizing
it makes G match those feature means; D's loss is unchanged."""
import pytest
import torch
from torch import nn

from gandyn.data import Mixture
from gandyn.games.gan import GANGame
from gandyn.nn.models.mlp import MLPDiscriminator
from gandyn.theory import AffineGenerator


def game(feature_matching=True, **kw):
    torch.manual_seed(0)
    D = MLPDiscriminator(in_dim=1, hidden=16, depth=2, activation="tanh")
    return GANGame(AffineGenerator(2.0, 0.5), D, Mixture([[0.0]], 1.0), batch_size=256,
                   feature_matching=feature_matching, seed=0, **kw)


def hidden(D, x):
    """D's last hidden layer written out from its modules: Linear, tanh, Linear, tanh."""
    lin1, lin2 = D.net[0], D.net[2]
    return torch.tanh(lin2(torch.tanh(lin1(x))))


def test_generator_loss_is_the_squared_distance_of_mean_features():
    g = game()
    lg, ld = g.losses()
    fake = g.G(g.z)
    expected = (hidden(g.D, g.real).mean(0) - hidden(g.D, fake).mean(0)).pow(2).sum()
    assert float(lg.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    # D's loss is unchanged.
    assert float(ld.detach()) == pytest.approx(float(game(False).losses()[1].detach()), rel=1e-6)


@pytest.mark.usefixtures("one_torch_thread")
def test_minimizing_it_matches_the_feature_means():
    g = game()
    opt = torch.optim.Adam(g.players[0], lr=0.05)   # G alone, D frozen
    z = torch.randn(4096, 1, generator=torch.Generator().manual_seed(1))
    real = Mixture([[0.0]], 1.0).sample(4096, torch.Generator().manual_seed(2))[0]

    def gap() -> float:
        with torch.no_grad():
            return float((hidden(g.D, real).mean(0) - hidden(g.D, g.G(z)).mean(0)).norm())

    before = gap()
    for _ in range(300):
        g.resample()
        (grad_mu, grad_s) = torch.autograd.grad(g.losses()[0], g.players[0])
        g.G.mu.grad, g.G.s.grad = grad_mu, grad_s
        opt.step()
    assert gap() < before / 20
    assert abs(float(g.G.mu.detach())) < 0.2   # the matched means move G onto the data


def test_feature_matching_needs_d_features():
    D = nn.Sequential(nn.Linear(1, 4), nn.Tanh(), nn.Linear(4, 1))
    with pytest.raises(ValueError, match="feature_matching: .*features"):
        GANGame(AffineGenerator(), D, Mixture([[0.0]], 1.0), feature_matching=True)
    with pytest.raises(ValueError, match="feature_matching"):
        game(feature_matching=1)


def test_registry_builds_a_feature_matching_gan():
    from gandyn.games.registry import make_game
    g = make_game("gan", data="ring", model="mlp", model_args={"hidden": 16}, feature_matching=True)
    assert g.feature_matching and torch.isfinite(g.losses()[0])
