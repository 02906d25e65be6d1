"""GANGame(replay_buffer=N) (Shrivastava et al. 2017): D's fake batch mixes current fakes with
samples G produced at earlier steps, held in a buffer of N; G's loss sees only current fakes."""
import pytest
import torch
from torch import nn

from gandyn.data import Mixture
from gandyn.games.gan import GANGame
from gandyn.nn.losses import gan_losses
from gandyn.optim import SimGD
from gandyn.theory import AffineGenerator


def game(replay=64, **kw):
    torch.manual_seed(0)
    D = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    return GANGame(AffineGenerator(3.0, 0.1), D, Mixture([[0.0]], 1.0), batch_size=16, replay_buffer=replay,
                   seed=0, **kw)


def test_the_buffer_holds_past_fakes_and_d_sees_them():
    g = game()
    opt = SimGD(g.players, lr=0.5)
    past = []
    for step in range(6):
        opt.step(g)
        with torch.no_grad():
            past.append(g.G(g.z))   # what after_step pushed: this step's z at G's new parameters
        if step == 3:   # 4 steps of 16 fakes fill the 64 entries in order
            assert g.replay_count == 64 and torch.equal(g.replay, torch.cat(past))
    # ... then each new fake overwrites a random entry: every entry is a past fake, some recent.
    assert g.replay_count == 64 and g.replay.shape == (64, 1)
    assert bool(torch.isin(g.replay, torch.cat(past)).all())
    assert int(torch.isin(g.replay, torch.cat(past[4:])).sum()) > 16
    # One push writes distinct entries: all 16 of the last step's fakes are kept (a repeated
    # index would drop some, and which of its writes survives is up to the kernel).
    assert bool(torch.isin(past[5], g.replay).all())
    # D's loss: B − k current fakes, then k = 8 buffer entries at the drawn positions.
    g.resample()
    k = len(g._replay_idx)
    assert k == 8
    fake = g.G(g.z)
    mixed = torch.cat([fake[:-k], g.replay[g._replay_idx]])
    lg, ld = g.losses()
    ref_g, _ = gan_losses(g.loss, g.D(g.real)[:, 0], g.D(fake)[:, 0])
    _, ref_d = gan_losses(g.loss, g.D(g.real)[:, 0], g.D(mixed)[:, 0])
    assert float(ld.detach()) == pytest.approx(float(ref_d.detach()), rel=1e-6)
    assert float(lg.detach()) == pytest.approx(float(ref_g.detach()), rel=1e-6)   # G: current fakes only
    # ... and D's loss is not the one of current fakes alone.
    _, current_only = gan_losses(g.loss, g.D(g.real)[:, 0], g.D(fake)[:, 0])
    assert float(ld.detach()) != pytest.approx(float(current_only.detach()), rel=1e-3)


def test_no_replay_until_the_buffer_holds_a_share():
    g = game(replay=4)   # k = 8 > 4 entries: never enough
    SimGD(g.players, lr=0.1).step(g)
    g.resample()
    assert g._replay_idx is None


def test_state_dict_round_trip_keeps_the_buffer():
    g = game()
    opt = SimGD(g.players, lr=0.5)
    for _ in range(5):
        opt.step(g)
    h = game()
    h.load_state_dict(g.state_dict())
    assert torch.equal(h.replay, g.replay) and h.replay_count == g.replay_count
    assert float(h.losses()[1].detach()) == pytest.approx(float(g.losses()[1].detach()), rel=1e-6)


@pytest.mark.parametrize("kw,match", [({"replay_buffer": -1}, "replay_buffer"),
                                      ({"replay_buffer": 1.5}, "replay_buffer"),
                                      ({"replay_fraction": 1.0}, "replay_fraction")])
def test_argument_checks(kw, match):
    with pytest.raises(ValueError, match=match):
        GANGame(AffineGenerator(), nn.Linear(1, 1), Mixture([[0.0]], 1.0), **kw)
