"""Suite "train": gandyn's training machinery against the plain PyTorch loop.

A digits DCGAN (16×16, gandyn.nn.models "dcgan", width 32, batch 64, Adam(2e-4, (0.5, 0.999)))
stepped two ways, interleaved round by round (the per-round ratio cancels load drift):
  ours  one `opt.step(game)` of the registry's GAN game: the minibatch draw, the losses,
        the field by torch.autograd.grad, the Adam steps of gandyn.optim
  ref   the loop of PyTorch's examples/dcgan/main.py on the same models and data: D step
        (D(real), D(G(z).detach()), BCE-with-logits, backward, Adam), then G step on the same
        fake batch — with AltGD(order=(1, 0)) as ours, the same algorithm
and SimGD-Adam against the same loop made simultaneous (both losses at one point, both
players' Adam steps). `overhead_pct` = ours/ref − 1 (goal < 3 %).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from gandyn.bench.timing import _sync, row

SUITE = "train"


def _setup(device: str, name: str):
    from gandyn.games.registry import make_game
    from gandyn.optim import OPTIMIZERS

    torch.manual_seed(0)
    game = make_game("gan", data="digits", data_args={"size": 16}, model="dcgan",
                     model_args={"width": 32, "latent_dim": 64}, batch_size=64, device=device)
    kw = {"order": (1, 0)} if name == "altgd" else {}
    opt = OPTIMIZERS[name](game.players, lr=2e-4, base="adam", betas=(0.5, 0.999), **kw)
    return game, opt


def _plain_loop(game, simultaneous: bool):
    """The DCGAN example's step on game.G, game.D (copies of the same models)."""
    import copy
    G, D = copy.deepcopy(game.G), copy.deepcopy(game.D)
    optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    source, gen, b = game._real, torch.Generator().manual_seed(0), game.batch_size
    device = game.device

    def step():
        real = source.sample(b, gen)[0].to(device)
        z = torch.randn(b, G.latent_dim, generator=gen).to(device)
        ones, zeros = torch.ones(b, device=device), torch.zeros(b, device=device)
        if simultaneous:
            fake = G(z)
            d_fake = D(fake).view(-1)
            ld = F.binary_cross_entropy_with_logits(D(real).view(-1), ones) + \
                F.binary_cross_entropy_with_logits(d_fake, zeros)
            lg = F.binary_cross_entropy_with_logits(d_fake, ones)
            gd = torch.autograd.grad(ld, list(D.parameters()), retain_graph=True)
            gg = torch.autograd.grad(lg, list(G.parameters()))
            for p, g in zip(D.parameters(), gd):
                p.grad = g
            for p, g in zip(G.parameters(), gg):
                p.grad = g
            optD.step()
            optG.step()
            return
        D.zero_grad()
        fake = G(z)
        ld = F.binary_cross_entropy_with_logits(D(real).view(-1), ones) + \
            F.binary_cross_entropy_with_logits(D(fake.detach()).view(-1), zeros)
        ld.backward()
        optD.step()
        G.zero_grad()
        F.binary_cross_entropy_with_logits(D(fake).view(-1), ones).backward()
        optG.step()

    return step


def _timed(fn, device, n):
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    _sync(device)
    return (time.perf_counter() - t0) * 1e3 / n


def run(device: str, quick: bool) -> list[dict]:
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)  # a shared 2-core machine: one thread gives stable ratios
    rows = []
    try:
        for name, simultaneous in (("simgd", True), ("altgd", False)):
            game, opt = _setup(device, name)
            plain = _plain_loop(game, simultaneous)
            ours_fn = lambda: opt.step(game)  # noqa: E731
            for _ in range(3):
                ours_fn()
                plain()
            rounds, n = (3, 5) if quick else (11, 20)
            ours, ref = [], []
            for r in range(rounds):
                pair = [(ours, ours_fn), (ref, plain)]
                for times, fn in (pair if r % 2 == 0 else pair[::-1]):
                    times.append(_timed(fn, device, n))
            ratio = float(np.median(np.array(ours) / np.array(ref)))
            label = "SimGD-Adam vs the simultaneous plain loop" if simultaneous else \
                "AltGD-Adam (D first) vs PyTorch's DCGAN example loop"
            rows.append(row(SUITE, f"digits DCGAN step, batch 64: {label}", ours_ms=float(np.median(ours)),
                            ref_ms=float(np.median(ref)), ref="plain PyTorch loop, same models and Adam",
                            overhead_pct=100 * (ratio - 1)))
    finally:
        torch.set_num_threads(threads)
    return rows
