"""Suite "optim": the game optimizers' own overhead, and the stability-map sweep.

1. Overhead. On a GAN of two MLPs with ~1.1M parameters each, time one `step` of
   each optimizer and divide by the time of the evaluations it must spend — its
   grad_evals, hvp_evals and loss_evals per step (read from its counters) priced
   by doing the same evaluations with plain autograd, interleaved round by round:
     t_grad   closure + vector field                     (SimGD, AltGD*, EG, EG-past, OGDA)
     t_field  closure + vector field with create_graph   (consensus, SGA, CGD: they differentiate it)
     t_vjp    one more backward through the field's graph (each HVP; double backward)
     t_loss   closure alone                              (EG-past's losses at θ_t)
   (*AltGD: closure + one player's gradient, per player; SGA: Jᵀu then its derivative
   in u, the double-backward Jv; CGD: VJPs of one player's gradient w.r.t. the other's
   parameters, alternating.) The median over rounds of ours/ref − 1 is the arithmetic
   overhead (`overhead_pct`; target < 10%). The same on a DCGAN-shaped conv GAN with R1
   on D, over Adam: the penalty's double backward hands back D's conv weight gradients
   in another memory layout than the weights, which the Adam step must copy into the
   parameters' layout for torch's fused kernel (gandyn.optim.base._fused_adam). All HVPs are reverse-mode (double
   backward): the closure-based Game protocol gives no functional form for
   torch.func.jvp.
2. Stability map. gandyn.optim.stability_map over a step-size grid × {SimGD, AltGD,
   EG, OGDA, consensus} × 10,000 random 2×2 bilinear games × 500 steps: total wall
   time against the 30 s target, and the fraction of games converged per cell.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from gandyn.bench.timing import _sync, row
from gandyn.games import GANGame
from gandyn.games.base import vector_field
from gandyn.optim import OPTIMIZERS
from gandyn.optim.stability_map import METHODS, stability_map

SUITE = "optim"


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                         nn.LeakyReLU(0.2), nn.Linear(hidden, d_out))


def _gan(device: str, quick: bool) -> GANGame:
    torch.manual_seed(0)
    hidden, dim, zdim, batch = (256, 32, 32, 64) if quick else (1024, 64, 64, 256)
    G, D = _mlp(zdim, hidden, dim).to(device), _mlp(dim, hidden, 1).to(device)
    shift = torch.linspace(-1, 1, dim, device=device)
    # saturating loss: the zero-sum game, so CGD may use its symmetric CG solve
    return GANGame(G, D, lambda b: torch.randn(b, dim, device=device) + shift,
                   lambda b: torch.randn(b, zdim, device=device), loss="saturating", batch_size=batch)


class _ConvG(nn.Module):
    def __init__(self, zdim: int, width: int):
        super().__init__()
        self.zdim = zdim
        self.net = nn.Sequential(nn.ConvTranspose2d(zdim, 2 * width, 4, 1, 0), nn.ReLU(),
                                 nn.ConvTranspose2d(2 * width, width, 4, 2, 1), nn.ReLU(),
                                 nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z.view(z.shape[0], self.zdim, 1, 1))


def _conv_gan(device: str, quick: bool) -> GANGame:
    """A DCGAN-shaped conv GAN on 16×16 images with R1 on D: the penalty's double backward
    hands D's conv weight gradients back in another memory layout than the weights."""
    from gandyn.nn import gradient_penalty

    torch.manual_seed(0)
    width, zdim, batch = (16, 32, 32) if quick else (64, 100, 64)
    G = _ConvG(zdim, width).to(device)
    D = nn.Sequential(nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(2 * width, 1, 4, 1, 0), nn.Flatten(0)).to(device)
    real = torch.rand(1024, 1, 16, 16, device=device) * 2 - 1
    return GANGame(G, D, lambda b: real[torch.randint(len(real), (b,), device=device)],
                   lambda b: torch.randn(b, zdim, device=device), batch_size=batch,
                   d_regularizer=lambda D, r, f: gradient_penalty(D, r, f, kind="r1", weight=1.0))


class _Evaluations:
    """The evaluations an optimizer pays for, done with plain autograd and nothing else."""

    def __init__(self, game: GANGame):
        self.game = game
        self.players = game.players
        self.params = [p for ps in game.players for p in ps]

    def grad(self) -> None:
        vector_field(self.game.losses(), self.players)

    def player(self, i: int) -> None:
        torch.autograd.grad(self.game.losses()[i], self.players[i])

    def field_and_vjps(self, n_vjp: int) -> None:
        v = [t for vs in vector_field(self.game.losses(), self.players, create_graph=True) for t in vs]
        for _ in range(n_vjp):
            torch.autograd.grad(v, self.params, [t.detach() for t in v], retain_graph=True)

    def field_and_jv(self) -> None:
        """SGA's two products: Jᵀu with create_graph, then its derivative in u (Jv)."""
        v = [t for vs in vector_field(self.game.losses(), self.players, create_graph=True) for t in vs]
        u = [t.detach().requires_grad_(True) for t in v]
        jtu = torch.autograd.grad(v, self.params, u, retain_graph=True, create_graph=True)
        torch.autograd.grad(jtu, u, [t.detach() for t in v])

    def field_and_cross_vjps(self, n_vjp: int) -> None:
        """CGD's products: each differentiates one player's gradient w.r.t. the other's
        parameters, alternating between the two."""
        v = vector_field(self.game.losses(), self.players, create_graph=True)
        for k in range(n_vjp):
            a, b = k % 2, 1 - k % 2
            torch.autograd.grad(v[b], self.players[a], [t.detach() for t in v[b]], retain_graph=True)

    def like(self, name: str, grads: int, hvps: int, losses: int) -> None:
        self.game.resample()  # a step draws its minibatch
        if name == "altgd":
            self.player(0)
            self.player(1)
            return
        if name in ("consensus", "hgd", "sga", "cgd"):  # they differentiate the field: create_graph
            {"consensus": lambda: self.field_and_vjps(hvps), "hgd": lambda: self.field_and_vjps(hvps),
             "sga": self.field_and_jv,
             "cgd": lambda: self.field_and_cross_vjps(hvps)}[name]()
            grads -= 1
        for _ in range(grads):
            self.grad()
        for _ in range(losses):
            self.game.losses()


def _timed(fn, device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return (time.perf_counter() - t0) * 1e3


def _overhead_rows(device: str, quick: bool) -> list[dict]:
    mlp = [(name, {}) for name in OPTIMIZERS] + [("extragradient", {"base": "adam"}),
                                                 ("optimistic", {"base": "adam"}),
                                                 ("simgd", {"momentum": 0.9})]
    conv = [(name, {"base": "adam"}) for name in ("simgd", "extragradient", "optimistic", "consensus")]
    return (_game_overhead_rows(_gan(device, quick), "GAN MLPs", mlp, device, quick)
            + _game_overhead_rows(_conv_gan(device, quick), "conv GAN, R1 on D", conv, device, quick))


def _game_overhead_rows(game: GANGame, what: str, configs, device: str, quick: bool) -> list[dict]:
    n_params = [sum(p.numel() for p in ps) for ps in game.players]
    rounds = 3 if quick else 9
    ev = _Evaluations(game)
    rows = []
    for name, extra in configs:
        options = dict(extra)
        if name == "cgd":
            options.update(zero_sum=True, cg_max_iter=5, cg_rtol=1e-12)
        opt = OPTIMIZERS[name](game.players, lr=1e-5, **options)
        opt.step(game)  # allocate state, warm up
        ours, ref, counts = [], [], []
        # Interleave the step and its reference, round by round: load on a shared machine
        # drifts, and the per-round ratio cancels the drift.
        # Odd rounds time the reference first, so a monotone drift does not bias the ratio.
        c = (opt.grad_evals, opt.hvp_evals, opt.loss_evals)
        opt.step(game)
        c = (opt.grad_evals - c[0], opt.hvp_evals - c[1], opt.loss_evals - c[2])
        for r in range(rounds):
            if r % 2:
                ref.append(_timed(lambda: ev.like(name, *c), device))
            before = (opt.grad_evals, opt.hvp_evals, opt.loss_evals)
            ours.append(_timed(lambda: opt.step(game), device))
            c = (opt.grad_evals - before[0], opt.hvp_evals - before[1], opt.loss_evals - before[2])
            if not r % 2:
                ref.append(_timed(lambda: ev.like(name, *c), device))
            counts.append(c)
        ratio = float(np.median(np.array(ours) / np.array(ref)))
        label = name + "".join(f" {k}={v}" for k, v in extra.items())
        rows.append(row(SUITE, f"step {label} ({what} {n_params[0] / 1e6:.2f}M+{n_params[1] / 1e6:.2f}M)",
                        ours_ms=float(np.median(ours)), ref_ms=float(np.median(ref)),
                        ref="its grad/HVP/loss evaluations alone", overhead_pct=100 * (ratio - 1),
                        grad_per_step=float(np.mean([c[0] for c in counts])),
                        hvp_per_step=float(np.mean([c[1] for c in counts]))))
    return rows


def _stability_rows(device: str, quick: bool) -> list[dict]:
    lrs = list(np.geomspace(0.05, 1.5, 8))
    num_games, steps = (1000, 100) if quick else (10_000, 500)
    rows, total = [], 0.0
    for name in METHODS:
        t0 = time.perf_counter()
        frac = stability_map(lrs, [name], num_games=num_games, steps=steps, device=device)[0]
        ms = (time.perf_counter() - t0) * 1e3
        total += ms
        rows.append(row(SUITE, f"stability map {name}: {len(lrs)} lrs x {num_games} games x {steps} steps",
                        ours_ms=ms, ref_ms=30_000 / len(METHODS), ref="its share of the 30 s target",
                        converged=" ".join(f"{lr:.3g}:{f:.3f}" for lr, f in zip(lrs, frac))))
    rows.append(row(SUITE, f"stability map total: {len(lrs)} lrs x {len(METHODS)} methods x {num_games} games "
                           f"x {steps} steps", ours_ms=total, ref_ms=30_000, ref="30 s target"))
    return rows


def run(device: str, quick: bool) -> list[dict]:
    threads = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        # On a shared 2-core machine an OpenMP team waiting for a busy core stalls every
        # op; one thread gives stable ratios (the sweep sets this for itself too).
        torch.set_num_threads(1)
    try:
        return _overhead_rows(device, quick) + _stability_rows(device, quick)
    finally:
        torch.set_num_threads(threads)
