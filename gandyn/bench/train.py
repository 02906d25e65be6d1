"""Suite "train": gandyn's training machinery against the plain PyTorch loop.

Two GANs, each stepped two ways, interleaved round by round (the per-round ratio cancels
load drift):
  ours  one `opt.step(game)` of the registry's GAN game: the minibatch draws, the losses,
        the field by torch.autograd.grad, the Adam steps of gandyn.optim
  ref   the plain loop on copies of the same models, with torch.optim.Adam
- a digits DCGAN (16×16, gandyn.nn.models "dcgan", width 32, batch 64, Adam(2e-4, (0.5,
  0.999))) against the loop of PyTorch's examples/dcgan/main.py: D step (D(real),
  D(G(z).detach()), BCE-with-logits, backward, Adam), then G step on the same fake batch —
  with AltGD(order=(1, 0)) as ours, the same algorithm; and SimGD-Adam against the same loop
  made simultaneous (both losses at one point, both players' Adam steps);
- SNGAN (Miyato et al. 2018: the ResNet of "sngan-resnet", hinge loss, Adam(2e-4, (0, 0.9)),
  n_dis = 5, D first) at CIFAR-10's shape (3×32×32; stacked digits stand in for CIFAR-10, which
  is never downloaded) against the same loop with five D steps, each on a fresh batch, then G
  on the last fake batch — AltGD(order=(1, 0), player_steps=(1, 5)). On a GPU at the paper's
  sizes (G width 256, D width 128, batch 64); on a CPU, where one such step takes about 20 s,
  at width 32 and batch 16. It reports images/s: real images D sees per second (n_dis · batch
  per step).
`overhead_pct` = ours/ref − 1 (goal < 3 %).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from gandyn.bench.timing import _sync, row

SUITE = "train"


# name -> the GAN of the case, its optimizer's options, its plain loop's loss and n_dis
CASES = {
    "dcgan": dict(game=dict(data="digits", data_args={"size": 16}, model="dcgan",
                            model_args={"width": 32, "latent_dim": 64}, batch_size=64),
                  betas=(0.5, 0.999), n_dis=1),
    "sngan": dict(game=dict(data="stacked-digits", data_args={"size": 32}, model="sngan-resnet",
                            g_args={"width": 256}, d_args={"width": 128}, loss="hinge", batch_size=64),
                  betas=(0.0, 0.9), n_dis=5),
}
CPU_SIZES = {"sngan": dict(g_args={"width": 32}, d_args={"width": 32}, batch_size=16)}  # see the docstring


def _setup(device: str, name: str, case: str = "dcgan", **game_args):
    """(game, optimizer) of `case` for optimizer `name` ("simgd" or "altgd", D first)."""
    from gandyn.games.registry import make_game
    from gandyn.optim import OPTIMIZERS

    c = CASES[case]
    torch.manual_seed(0)
    game = make_game("gan", **{**c["game"], **game_args}, device=device)
    kw = {"order": (1, 0), "player_steps": (1, c["n_dis"])} if name == "altgd" else {}
    opt = OPTIMIZERS[name](game.players, lr=2e-4, base="adam", betas=c["betas"], **kw)
    return game, opt


def _plain_loop(game, simultaneous: bool, case: str = "dcgan", batches=None, **adam):
    """The plain step of `case` on copies of game.G, game.D (`step.models`), with Adam(2e-4,
    the case's betas) unless `adam` says otherwise. `batches()` gives each D step's (real, z);
    by default drawn from a generator of its own."""
    import copy
    c = CASES[case]
    G, D = copy.deepcopy(game.G), copy.deepcopy(game.D)
    adam = {"lr": 2e-4, "betas": c["betas"], **adam}
    optG, optD = torch.optim.Adam(G.parameters(), **adam), torch.optim.Adam(D.parameters(), **adam)
    source, gen, b = game._real, torch.Generator().manual_seed(0), game.batch_size
    device = game.device
    hinge = game.loss == "hinge"

    def draw():
        return source.sample(b, gen)[0].to(device), torch.randn(b, G.latent_dim, generator=gen).to(device)

    batches = batches or draw

    def d_loss(d_real, d_fake):
        if hinge:
            return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        return F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + \
            F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))

    def g_loss(d_fake):
        return -d_fake.mean() if hinge else F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))

    def step():
        if simultaneous:
            real, z = batches()
            fake = G(z)
            d_fake = D(fake).view(-1)
            ld, lg = d_loss(D(real).view(-1), d_fake), g_loss(d_fake)
            gd = torch.autograd.grad(ld, list(D.parameters()), retain_graph=True)
            gg = torch.autograd.grad(lg, list(G.parameters()))
            for p, g in zip(D.parameters(), gd):
                p.grad = g
            for p, g in zip(G.parameters(), gg):
                p.grad = g
            optD.step()
            optG.step()
            return
        for _ in range(c["n_dis"]):
            real, z = batches()
            D.zero_grad()
            fake = G(z)
            d_loss(D(real).view(-1), D(fake.detach()).view(-1)).backward()
            optD.step()
        G.zero_grad()
        g_loss(D(fake).view(-1)).backward()
        optG.step()

    step.models = (G, D)
    return step


def _timed(fn, device, n):
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) * 1e3 / n


def _compare(device: str, name: str, case: str, simultaneous: bool, rounds: int, n: int, label: str) -> dict:
    cpu = torch.device(device).type == "cpu"
    game, opt = _setup(device, name, case, **(CPU_SIZES.get(case, {}) if cpu else {}))
    plain = _plain_loop(game, simultaneous, case)
    ours_fn = lambda: opt.step(game)  # noqa: E731
    for _ in range(3 if case == "dcgan" else 1):
        ours_fn()
        plain()
    ours, ref = [], []
    for r in range(rounds):
        pair = [(ours, ours_fn), (ref, plain)]
        for times, fn in (pair if r % 2 == 0 else pair[::-1]):
            times.append(_timed(fn, device, n))
    ratio = float(np.median(np.array(ours) / np.array(ref)))
    ours_ms, ref_ms = float(np.median(ours)), float(np.median(ref))
    extra = {}
    if case == "sngan":
        images = CASES[case]["n_dis"] * game.batch_size
        extra = {"images_per_s": images / ours_ms * 1e3, "ref_images_per_s": images / ref_ms * 1e3}
    return row(SUITE, label, ours_ms=ours_ms, ref_ms=ref_ms, ref="plain PyTorch loop, same models and Adam",
               overhead_pct=100 * (ratio - 1), **extra)


def run(device: str, quick: bool) -> list[dict]:
    threads = torch.get_num_threads()
    cpu = torch.device(device).type == "cpu"
    if cpu:
        torch.set_num_threads(1)  # a shared 2-core machine: one thread gives stable ratios
    try:
        rounds, n = (3, 5) if quick else (11, 20)
        rows = [_compare(device, "simgd", "dcgan", True, rounds, n,
                         "digits DCGAN step, batch 64: SimGD-Adam vs the simultaneous plain loop"),
                _compare(device, "altgd", "dcgan", False, rounds, n,
                         "digits DCGAN step, batch 64: AltGD-Adam (D first) vs PyTorch's DCGAN example loop")]
        sizes = "width 32, batch 16 (CPU size)" if cpu else "G width 256, D width 128, batch 64"
        rounds, n = ((3, 1) if quick else (7, 3)) if cpu else ((3, 5) if quick else (11, 20))
        rows.append(_compare(device, "altgd", "sngan", False, rounds, n,
                             f"SNGAN ResNet step, 32x32, {sizes}: AltGD-Adam n_dis=5 vs the SNGAN loop"))
    finally:
        torch.set_num_threads(threads)
    return rows
