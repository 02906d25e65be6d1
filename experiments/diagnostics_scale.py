"""Scale check of gandyn.diagnostics: the top-k eigenvalues of the game Jacobian of a DCGAN pair.

Builds a DCGAN generator and discriminator of about 1M parameters each for
32×32 RGB images, a GANGame on a fixed synthetic minibatch (no dataset is
needed: the Jacobian is a property of the game at a point), and prints:

- the time of one gradient evaluation (the vector field v: forward + backward),
- the time of one Jacobian–vector product J u in forward mode
  (torch.func.jvp over torch.func.vjp) and in reverse mode (double backward),
  and of one Jᵀw, each relative to the gradient evaluation,
- the top-k eigenvalues of J by magnitude (ARPACK Arnoldi), the number of
  products and the wall time (-k 0 skips them).

--sn-r1 GAMMA puts the fused ops in the game: D spectrally normalized
(gandyn.nn.spectral_norm, eval mode so the field is one function of θ) and the R1
penalty γ/2·E‖∇ₓD‖² (gandyn.nn.gradient_penalty) on D's loss, so J u runs through
both kernels' forward-mode formulas (forward mode) or their double backward (reverse).

    .venv/bin/python experiments/diagnostics_scale.py [--batch 16] [-k 20] [--tol 1e-3] [--sn-r1 GAMMA]
"""
from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch
from torch import nn

from gandyn.bench.timing import median_ms
from gandyn.diagnostics import JacobianOperator, jacobian_eigvals
from gandyn.games import GANGame
from gandyn.nn import spectral_norm
from gandyn.nn.penalties import gradient_penalty


def dcgan_generator(z_dim: int = 100, width: int = 64) -> nn.Module:
    """z (B, z_dim) -> image (B, 3, 32, 32); ~1.07M parameters at width 64."""
    def up(cin, cout):
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(
        nn.Unflatten(1, (z_dim, 1, 1)),
        nn.ConvTranspose2d(z_dim, 4 * width, 4, 1, 0, bias=False), nn.BatchNorm2d(4 * width), nn.ReLU(),
        *up(4 * width, 2 * width), *up(2 * width, width),
        nn.ConvTranspose2d(width, 3, 4, 2, 1), nn.Tanh())


def dcgan_discriminator(width: int = 80) -> nn.Module:
    """image (B, 3, 32, 32) -> logit (B,); ~1.03M parameters at width 80 (no batch norm)."""
    return nn.Sequential(
        nn.Conv2d(3, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(2 * width, 4 * width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(4 * width, 1, 4, 1, 0), nn.Flatten(0))


print = functools.partial(print, flush=True)  # noqa: A001  (progress through pipes)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--tol", type=float, default=1e-3, help="ARPACK relative tolerance")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    p.add_argument("--sn-r1", type=float, default=None, metavar="GAMMA",
                   help="spectrally normalized D with the R1 penalty of weight GAMMA")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    G, D = dcgan_generator(), dcgan_discriminator()
    g = torch.Generator().manual_seed(1)
    # Smooth synthetic "images" in [-1, 1]: upsampled noise.
    real = torch.tanh(2 * nn.functional.interpolate(torch.randn(args.batch, 3, 8, 8, generator=g), size=32,
                                                    mode="bilinear", align_corners=False))
    z = torch.randn(args.batch, 100, generator=g)
    regularizer = None
    if args.sn_r1 is not None:
        D = spectral_norm(D).eval()
        regularizer = functools.partial(gradient_penalty, kind="r1", weight=args.sn_r1)
    game = GANGame(G, D, lambda b: real, lambda b: z, loss="non-saturating", batch_size=args.batch,
                   d_regularizer=regularizer)
    n_g, n_d = (sum(t.numel() for t in ps) for ps in game.players)
    extra = "" if args.sn_r1 is None else f", D spectrally normalized with R1 (γ = {args.sn_r1:g})"
    print(f"DCGAN pair, 32x32, batch {args.batch}: G {n_g:,} + D {n_d:,} = {n_g + n_d:,} parameters{extra}, "
          f"{torch.get_num_threads()} CPU threads")

    u = torch.randn(n_g + n_d, generator=g)
    ops = {mode: JacobianOperator(game, mode=mode) for mode in ("forward", "reverse")}
    cases = {"gradient evaluation (v = per-player ∇L)": lambda: game.vector_field(),
             "build operator (v with create_graph)": lambda: JacobianOperator(game, mode="reverse"),
             "J u, forward mode (jvp of vjp)": lambda: ops["forward"].matvec(u),
             "J u, reverse mode (double backward)": lambda: ops["reverse"].matvec(u),
             "Jᵀw (reverse)": lambda: ops["reverse"].rmatvec(u)}
    # The machine is shared: time the cases in interleaved rounds and report medians of the
    # per-round ratios to the gradient evaluation, which load changes between rounds cancel.
    rounds = [{name: median_ms(fn, warmup=1 if r == 0 else 0, repeat=1) for name, fn in cases.items()}
              for r in range(args.rounds)]
    grad_name = next(iter(cases))
    for name in cases:
        ms = statistics.median(r[name] for r in rounds)
        ratio = statistics.median(r[name] / r[grad_name] for r in rounds)
        print(f"{name:42s} {ms:8.1f} ms   {ratio:5.2f}x gradient")
    ju_f, ju_r = ops["forward"].matvec(u), ops["reverse"].matvec(u)
    print(f"forward vs reverse J u, relative difference: {float((ju_f - ju_r).norm() / ju_r.norm()):.2e}")

    del ops  # free their graphs
    if args.k == 0:
        return
    op = JacobianOperator(game)  # mode="auto": the faster of the two on this game
    op.mode  # noqa: B018  (decide the mode now, outside the timed solve)
    matvec = op.matvec

    def logged_matvec(x):  # progress, since a loaded machine can make this slow
        y = matvec(x)
        if op.num_matvecs % 25 == 0:
            print(f"  ... {op.num_matvecs} products, {time.perf_counter() - t0:.0f} s", flush=True)
        return y
    op.matvec = logged_matvec
    t0 = time.perf_counter()
    lam = jacobian_eigvals(op, args.k, "LM", method="arnoldi", tol=args.tol)
    seconds = time.perf_counter() - t0
    print(f"top-{args.k} eigenvalues of J by magnitude (ARPACK, tol {args.tol:g}, J u in {op.mode} mode "
          f"{op.product_ms and {k: round(v, 1) for k, v in op.product_ms.items()}} ms): "
          f"{seconds:.1f} s, {op.num_matvecs} products")
    for z_ in lam.tolist():
        print(f"  {z_.real:+.5e} {z_.imag:+.5e}i   |λ| = {abs(z_):.5e}")


if __name__ == "__main__":
    main()
