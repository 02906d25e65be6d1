"""GANGame as a library in a researcher's own loop: minibatches, data inputs, checks, EMA,
penalties with labels, instance noise, and the errors of the traps it used to have."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from gandyn.data import ring
from gandyn.games import GANGame
from gandyn.games.registry import make_game
from gandyn.nn import gan_losses, spectral_norm
from gandyn.optim import OPTIMIZERS, AltGD, Consensus, Extragradient, SimGD


def _mlps(zdim=2, dim=2, bn=False):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(zdim, 16), *( [nn.BatchNorm1d(16)] if bn else []), nn.ReLU(), nn.Linear(16, dim))
    D = nn.Sequential(nn.Linear(dim, 16), *( [nn.BatchNorm1d(16)] if bn else []), nn.LeakyReLU(0.2),
                      nn.Linear(16, 1))
    G.latent_dim = zdim
    return G, D


def test_each_step_draws_one_minibatch_held_for_all_its_evaluations():
    G, D = _mlps()
    seen = []
    game = GANGame(G, D, ring(), batch_size=8, seed=3)
    real_losses = game.losses

    def spy():
        seen.append(game.real.clone())
        return real_losses()

    game.losses = spy
    opt = Extragradient(game.players, lr=1e-2)
    opt.step(game)  # two field evaluations: one batch
    opt.step(game)
    assert len(seen) == 4
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[2], seen[3])
    assert not torch.equal(seen[0], seen[2])
    # the batches are the data source's draws from the game's own generator
    g = torch.Generator().manual_seed(3)
    first, _ = ring().sample(8, g)  # the batch drawn at construction
    torch.randn(8, 2, generator=g)  # its latents
    torch.randint(2 ** 62, (), generator=g)  # its WGAN-GP seed
    second, _ = ring().sample(8, g)
    torch.testing.assert_close(seen[0], second)


def test_dataset_and_dataloader_and_labels():
    torch.manual_seed(0)
    x = torch.randn(40, 2)
    y = torch.arange(40) % 4
    G, D = _mlps()
    game = GANGame(G, D, TensorDataset(x, y), batch_size=8, seed=0)
    idx = torch.randint(40, (8,), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(game.real, x[idx])
    assert torch.equal(game.real_labels, y[idx])
    loader = DataLoader(TensorDataset(x), batch_size=8, shuffle=False)
    game = GANGame(G, D, loader, batch_size=8)
    batches = [game.real.clone()]
    for _ in range(5):
        game.resample()
        batches.append(game.real.clone())
    torch.testing.assert_close(torch.cat(batches[:5]), x)   # one epoch in order
    torch.testing.assert_close(batches[5], x[:8])            # then the next
    with pytest.raises(ValueError, match="batch_size is 4"):
        GANGame(G, D, DataLoader(TensorDataset(x), batch_size=4), batch_size=8)


def test_bad_inputs_are_named():
    G, D = _mlps()
    with pytest.raises(ValueError, match="sample_real: a real batch has shape"):
        GANGame(G, D, lambda n: torch.randn(n, 3), batch_size=4)
    with pytest.raises(ValueError, match="float64"):
        GANGame(G, D, lambda n: torch.randn(n, 2, dtype=torch.float64), batch_size=4)
    with pytest.raises(ValueError, match="nn.Sigmoid"):
        GANGame(G, nn.Sequential(*D, nn.Sigmoid()), ring(), batch_size=4)
    wide = nn.Linear(2, 3)
    game = GANGame(G, wide, ring(), batch_size=4)
    with pytest.raises(ValueError, match="one logit per sample"):
        game.losses()
    with pytest.raises(ValueError, match="sample_latent: required"):
        GANGame(nn.Linear(2, 2), D, ring(), batch_size=4)


def test_consensus_through_batch_norm_and_a_penalty_is_a_gandyn_error():
    G, D = _mlps(bn=True)
    game = GANGame(G, D, ring(), batch_size=8, penalty="r1", penalty_weight=1.0)
    with pytest.raises(ValueError, match="third one.*batch norm"):
        Consensus(game.players, lr=1e-3).step(game)
    SimGD(game.players, lr=1e-3).step(game)  # one derivative fewer: fine


def test_ema_of_G_is_the_exponential_average_of_the_iterates():
    G, D = _mlps()
    game = GANGame(G, D, ring(), batch_size=8, ema=0.9)
    opt = SimGD(game.players, lr=0.05)
    avg = None
    for _ in range(5):
        opt.step(game)
        now = [p.detach().clone() for p in G.parameters()]
        avg = now if avg is None else [0.9 * a + 0.1 * n for a, n in zip(avg, now)]
    for a, e in zip(avg, game.G_ema.module.parameters()):
        torch.testing.assert_close(e, a, rtol=1e-6, atol=1e-7)


def test_instance_noise_is_annealed_linearly():
    G, D = _mlps()
    game = GANGame(G, D, ring(), batch_size=4096, instance_noise=0.5, instance_noise_anneal=10)
    stds = []
    for _ in range(12):
        stds.append(game.noise_std())
        if game.noise is not None:
            assert abs(float(game.noise[0].std()) - game.noise_std()) < 0.05 * game.noise_std() + 1e-3
        game.resample()
    assert stds == pytest.approx([0.5 * max(0.0, 1 - k / 10) for k in range(12)])


def test_builtin_penalty_equals_gradient_penalty_and_is_fixed_within_a_step():
    from gandyn.nn import gradient_penalty
    G, D = _mlps()
    for kind in ("r1", "r2", "wgan-gp"):
        game = GANGame(G, D, ring(), batch_size=16, penalty=kind, penalty_weight=2.0)
        a = game.losses()[1]
        b = game.losses()[1]
        assert a.item() == b.item()  # WGAN-GP's ε too: one game per step
        fake = G(game.z)
        _, ld = gan_losses("non-saturating", D(game.real).view(-1), D(fake).view(-1))
        if kind != "wgan-gp":
            expected = ld + gradient_penalty(D, game.real, fake, kind=kind, weight=2.0)
            assert a.item() == pytest.approx(expected.item(), rel=1e-6)


def test_conditional_gan_feeds_labels_to_both_players():
    game = make_game("gan", data="ring", model="cgan-mlp", batch_size=32, seed=0)
    assert game.num_classes == 8 and game.real_labels is not None
    calls = []
    D = game.D
    forward = D.forward

    def spy(x, y):
        calls.append(y.clone())
        return forward(x, y)

    D.forward = spy
    game.losses()
    assert torch.equal(calls[0], game.real_labels) and torch.equal(calls[1], game.y_fake)
    # each real label is the component its sample was drawn around
    nearest = torch.cdist(game.real.double(), ring().modes).argmin(1)
    assert torch.equal(nearest, game.real_labels)


def test_spectral_norm_discriminator_trains_and_its_buffers_are_state():
    G, D = _mlps()
    D = spectral_norm(D)
    game = GANGame(G, D, ring(), batch_size=8)
    opt = AltGD(game.players, lr=1e-2, base="adam", order=[1, 0], player_steps=[1, 3])
    opt.step(game)
    # D first, 3 steps, then G: 4 field evaluations
    assert opt.grad_evals == 4
    assert any("_u" in k for k in game.state_dict()["D"])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_steps_a_registry_gan(name):
    game = make_game("gan", data="grid", model="mlp", batch_size=16, seed=1,
                     model_args={"hidden": 16}, penalty="r1", penalty_weight=0.5)
    # ACGD's per-coordinate step sizes are its own base optimizer
    opt = OPTIMIZERS[name](game.players, lr=1e-3, **({} if name == "acgd" else {"base": "adam"}))
    before = [p.detach().clone() for p in game.params()]
    for _ in range(2):
        losses = opt.step(game)
    assert all(torch.isfinite(l) for l in losses)
    assert any(not torch.equal(a, p.detach()) for a, p in zip(before, game.params()))
