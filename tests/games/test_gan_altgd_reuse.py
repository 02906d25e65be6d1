"""AltGD's D-first GAN step reuses G(z) from D's evaluation and skips D(real) in G's
(GANGame.player_losses): the iterates are the full re-evaluation's bit for bit, and PyTorch's
DCGAN example loop's (transcribed here) to float rounding, at the example's cost of one G
forward and three D forwards per step."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gandyn.games.registry import make_game
from gandyn.optim import OPTIMIZERS


def _game(**kw):
    torch.manual_seed(0)
    args = dict(data="digits", data_args={"size": 16}, model="dcgan", model_args={"width": 8, "latent_dim": 16},
                batch_size=16, seed=0)
    return make_game("gan", **{**args, **kw})


def _altgd(game):
    return OPTIMIZERS["altgd"](game.players, lr=2e-4, base="adam", betas=(0.5, 0.999), order=[1, 0])


def _count_forwards(module):
    calls = []
    module.register_forward_hook(lambda m, i, o: calls.append(1))
    return calls


def _full_re_evaluation(game, opt, steps):
    """The step before the reuse: every evaluation recomputes all losses (a closure that is
    not a Game gets no player_losses); the batch drawn by hand as step() would."""
    for _ in range(steps):
        game.resample()
        opt.step(lambda: game.losses())


@pytest.mark.parametrize("kw", [
    {},                                                     # non-saturating, BN in G and D
    {"loss": "saturating", "instance_noise": 0.1},           # L_G holds D(real)'s term (constant in G)
    {"loss": "wasserstein", "penalty": "wgan-gp", "d_args": {"batch_norm": False}},
    {"loss": "least-squares", "label_smoothing": 0.1, "replay_buffer": 32},
    {"feature_matching": True, "data": "ring", "data_args": {}, "model": "mlp", "model_args": {"hidden": 16}},
], ids=["ns", "saturating-noise", "wgan-gp", "lsgan-replay", "feature-matching"])
def test_reuse_gives_the_full_re_evaluations_iterates_bit_for_bit(kw):
    new, old = _game(**kw), _game(**kw)
    opt_new, opt_old = _altgd(new), _altgd(old)
    for _ in range(4):
        opt_new.step(new)
        old.resample()
        opt_old.step(lambda: old.losses())
        old.after_step()
    assert all(torch.equal(p, q) for p, q in zip(new.params(), old.params()))


def test_the_d_first_step_costs_one_g_and_three_d_forwards():
    game = _game()
    g_calls, d_calls = _count_forwards(game.G), _count_forwards(game.D)
    opt = _altgd(game)
    opt.step(game)
    assert (len(g_calls), len(d_calls)) == (1, 3)   # G(z); D(real), D(G(z)); D'(G(z))
    ref = _game()
    g_ref, d_ref = _count_forwards(ref.G), _count_forwards(ref.D)
    _full_re_evaluation(ref, _altgd(ref), 1)
    assert (len(g_ref), len(d_ref)) == (2, 4)       # what the reuse saves
    sn = _game(d_args={"spectral_norm": True})      # G's step calls an SN D once, as SNGAN's updater
    g_sn, d_sn = _count_forwards(sn.G), _count_forwards(sn.D)
    _altgd(sn).step(sn)
    assert (len(g_sn), len(d_sn)) == (1, 3)


def test_matches_the_pytorch_dcgan_example_loop():
    # examples/dcgan/main.py: D on D(real) and D(G(z).detach()) with BCE, Adam; then G on the
    # same fake batch through the updated D. Transcribed on copies of the same models and batches.
    import copy

    game = _game()
    G, D = copy.deepcopy(game.G), copy.deepcopy(game.D)
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt = _altgd(game)
    for _ in range(5):
        opt.step(game)  # draws the batch it holds afterwards
        real, z = game.real, game.z
        ones, zeros = torch.ones(len(z)), torch.zeros(len(z))
        D.zero_grad()
        fake = G(z)
        (F.binary_cross_entropy_with_logits(D(real).view(-1), ones)
         + F.binary_cross_entropy_with_logits(D(fake.detach()).view(-1), zeros)).backward()
        opt_d.step()
        G.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake).view(-1), ones).backward()
        opt_g.step()
    ours = [p.detach() for p in game.params()]
    theirs = [p.detach() for p in [*G.parameters(), *D.parameters()]]
    assert max(float((a - b).abs().max()) for a, b in zip(ours, theirs)) < 1e-6


def test_sngan_step_matches_the_reference_updater_spectral_norm_state_included():
    """SNGAN (Miyato et al. 2018; their chainer updater): n_dis = 5 D steps, each on a fresh batch
    with dis(x_real) and dis(x_fake), then G on dis(fake) alone; hinge loss, Adam(2e-4, (0, 0.9)).
    Each D call does one power iteration, so the spectral-norm vectors u, v match only if G's step
    calls D once, as here. Transcribed on copies of the same models, fed the batches the game drew.
    The train benchmark's plain SNGAN loop is checked the same way (it must time the same algorithm)."""
    import copy

    from gandyn.bench import train as bench_train

    game = _game(data="stacked-digits", data_args={"size": 16}, model="sngan-resnet", model_args={"width": 8},
                 loss="hinge", batch_size=8)
    # eps = 1e-3, not Adam's 1e-8: G's conv biases feed batch norm, so their exact gradient is 0 and
    # what autograd gives is rounding (~1e-10), which eps = 1e-8 would blow up to steps of ±lr/10.
    adam = dict(lr=2e-4, betas=(0.0, 0.9), eps=1e-3)
    opt = OPTIMIZERS["altgd"](game.players, base="adam", order=[1, 0], player_steps=[1, 5], **adam)
    G, D = copy.deepcopy(game.G), copy.deepcopy(game.D)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), **adam), torch.optim.Adam(D.parameters(), **adam)
    drawn = []
    resample = game.resample
    game.resample = lambda: (resample(), drawn.append((game.real.clone(), game.z.clone())))[0]
    bench_step = bench_train._plain_loop(game, False, "sngan", batches=lambda: drawn.pop(0), **adam)
    for _ in range(3):
        opt.step(game)
        assert len(drawn) == 5
        for real, z in drawn:
            D.zero_grad()
            fake = G(z)
            (F.relu(1 - D(real)).mean() + F.relu(1 + D(fake.detach())).mean()).backward()
            opt_d.step()
        G.zero_grad()
        (-D(fake).mean()).backward()
        opt_g.step()
        bench_step()  # consumes the recorded batches
        assert not drawn
    ours = [*game.params(), *game.D.buffers()]
    assert len(list(game.D.buffers())) > 0
    for g, d in ((G, D), bench_step.models):
        theirs = [*g.parameters(), *d.parameters(), *d.buffers()]
        assert max(float((a.detach() - b.detach()).abs().max()) for a, b in zip(ours, theirs)) < 1e-6


def test_g_is_evaluated_again_whenever_its_forward_could_differ():
    game = _game()
    g_calls = _count_forwards(game.G)
    game.losses()
    game.player_losses([0])
    assert len(g_calls) == 1                       # reused
    with torch.no_grad():
        game.players[0][0].mul_(0.5)               # G moved (in place: its version changes)
    lg = game.player_losses([0])[0]
    assert len(g_calls) == 2
    torch.testing.assert_close(lg, game.losses()[0], rtol=0, atol=0)  # non-saturating: the same value
    with torch.no_grad():
        game.losses()                              # no graph: never handed to a field
    (g,) = torch.autograd.grad(game.player_losses([0])[0], [game.players[0][0]])
    assert len(g_calls) == 5 and bool(g.abs().sum() > 0)
    game.resample()
    game.player_losses([0])
    assert len(g_calls) == 6                       # a new batch


def test_g_with_dropout_is_never_reused():
    game = _game()
    game.G.add_module("dropout", nn.Dropout(0.1))  # a forward that may draw random numbers
    g_calls = _count_forwards(game.G)
    game.losses()
    game.player_losses([0])
    assert len(g_calls) == 2
