"""Every optimizer, every base, on fields and parameters of any memory layout.

torch's fused Adam kernel pairs elements by storage offset; a field from a double
backward through a convolution has other strides than its parameter. Here the layout
of each parameter and of each field tensor is drawn by hypothesis (transposed,
channels_last, sliced, expanded with stride 0), and a few steps of each optimizer
are compared with an independent implementation of the method written below from
its formulas, on flat contiguous float64 vectors, with the field and its Jacobian
in closed form (no autograd). A GAN with a conv D and each penalty, stepped by
SimGD(base="adam"), must equal torch.optim.Adam on both players.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gandyn.games import GANGame
from gandyn.games.base import Game
from gandyn.nn import gradient_penalty
from gandyn.optim import OPTIMIZERS, SimGD

SHAPE_DIMS = st.lists(st.integers(1, 3), min_size=4, max_size=4).map(tuple)
PARAM_LAYOUTS = ("contiguous", "transposed", "channels_last", "sliced")
GRAD_LAYOUTS = ("same", "contiguous", "transposed", "channels_last", "sliced")


def with_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """t's values in the given memory layout (differentiable)."""
    if layout == "same":
        return t
    if layout == "contiguous":
        return t.contiguous()
    if layout == "transposed":  # strides reversed: the last dimension varies slowest
        perm = list(range(t.dim()))[::-1]
        return t.permute(perm).contiguous().permute(perm)
    if layout == "channels_last":
        return t.contiguous(memory_format=torch.channels_last)
    if layout == "sliced":  # every other element of a buffer twice as long
        return torch.stack([t, torch.zeros_like(t)], dim=-1).flatten(-2)[..., ::2]
    raise ValueError(layout)


def leaf(values: torch.Tensor, layout: str) -> torch.Tensor:
    return with_layout(values.detach().clone(), layout).detach().requires_grad_(True)


class Relayout(torch.autograd.Function):
    """Identity whose backward hands its gradient on in a chosen layout (twice differentiable)."""

    @staticmethod
    def forward(ctx, x, layout):
        ctx.layout = layout
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return with_layout(g, ctx.layout), None


class ElementwiseGame(Game):
    """L0 = ½Σa·x² + Σx·b·y,  L1 = ½Σc·y² − Σx·b·y: v0 = a x + b y, v1 = c y − b x."""

    def __init__(self, x, y, a, b, c, grad_layouts):
        self.players = [[x], [y]]
        self.a, self.b, self.c, self.grad_layouts = a, b, c, grad_layouts

    def losses(self):
        (x,), (y,) = self.players
        x = Relayout.apply(x, self.grad_layouts[0])
        y = Relayout.apply(y, self.grad_layouts[1])
        coupling = (x * self.b * y).sum()
        return [0.5 * (self.a * x * x).sum() + coupling, 0.5 * (self.c * y * y).sum() - coupling]

    def reference(self):
        a, b, c = (t.reshape(-1) for t in (self.a, self.b, self.c))
        n = a.numel()

        def field(z):
            x, y = z[:n], z[n:]
            return torch.cat([a * x + b * y, c * y - b * x])

        J = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
        J[:n, :n], J[:n, n:] = torch.diag(a), torch.diag(b)
        J[n:, :n], J[n:, n:] = -torch.diag(b), torch.diag(c)
        return field, J


class RankOneGame(Game):
    """L0 = β Σx Σy = −L1: autograd hands back the field as expanded tensors (stride 0)."""

    def __init__(self, x, y, beta):
        self.players = [[x], [y]]
        self.beta = beta

    def losses(self):
        (x,), (y,) = self.players
        f = self.beta * x.sum() * y.sum()
        return [f, -f]

    def reference(self):
        n = self.players[0][0].numel()
        beta = self.beta

        def field(z):
            x, y = z[:n], z[n:]
            return torch.cat([beta * y.sum() * torch.ones(n, dtype=z.dtype),
                              -beta * x.sum() * torch.ones(n, dtype=z.dtype)])

        J = torch.zeros(2 * n, 2 * n, dtype=torch.float64)
        J[:n, n:], J[n:, :n] = beta, -beta
        return field, J


# ---------------------------------------------------------------- the reference
class Base:
    """Per-player base optimizer on flat vectors: heavy ball (b ← μb + d) or Adam."""

    def __init__(self, kind, momentum=0.0, betas=(0.9, 0.999), eps=1e-8):
        self.kind, self.mu, self.betas, self.eps = kind, momentum, betas, eps
        self.buf = self.m = self.v = None
        self.t = 0

    def __call__(self, d):
        if self.kind == "sgd":
            if self.mu == 0:
                return d
            self.buf = d.clone() if self.buf is None else self.mu * self.buf + d
            return self.buf
        b1, b2 = self.betas
        if self.m is None:
            self.m, self.v = torch.zeros_like(d), torch.zeros_like(d)
        self.t += 1
        self.m = b1 * self.m + (1 - b1) * d
        self.v = b2 * self.v + (1 - b2) * d * d
        mhat, vhat = self.m / (1 - b1 ** self.t), self.v / (1 - b2 ** self.t)
        return mhat / (vhat.sqrt() + self.eps)


def reference_steps(name, z, field, J, n, lr, steps, base_kw, opts):
    """`steps` steps of method `name` from the flat point z = (x, y), x and y of n elements."""
    bases = [Base(**base_kw), Base(**base_kw)]
    parts = (slice(0, n), slice(n, 2 * n))
    past = None
    z = z.clone()

    def base_all(d):
        return torch.cat([bases[i](d[p]) for i, p in enumerate(parts)])

    for _ in range(steps):
        v = field(z)
        if name == "simgd":
            z = z - lr * base_all(v)
        elif name == "altgd":
            z[parts[0]] -= lr * bases[0](v[parts[0]])
            z[parts[1]] -= lr * bases[1](field(z)[parts[1]])
        elif name == "extragradient":
            half = z - lr * base_all(v)
            z = z - lr * base_all(field(half))
        elif name == "extragradient-past":
            half = z if past is None else z - lr * past
            past = base_all(field(half))
            z = z - lr * past
        elif name == "optimistic":
            s = base_all(v)
            z = z - lr * (2 * s - (s if past is None else past))
            past = s
        elif name == "consensus":
            z = z - lr * base_all(v + opts["gamma"] * J.T @ v)
        elif name == "sga":
            jtv = J.T @ v
            atv = 0.5 * (jtv - J @ v)
            score = float(v @ jtv) * float(atv @ jtv) / (2 * n) + 0.1
            lam = math.copysign(opts["lam"], score)
            z = z - lr * base_all(v + lam * atv)
        elif name == "cgd":  # Schäfer & Anandkumar 2019, solved exactly
            x_, y_ = parts
            Dxy_f, Dyx_g = J[x_, y_], J[y_, x_]
            gx, gy = v[x_], v[y_]
            M = torch.eye(n, dtype=z.dtype) - lr * lr * Dxy_f @ Dyx_g
            dx = -lr * torch.linalg.solve(M, gx - lr * Dxy_f @ gy)
            dy = -lr * (gy + Dyx_g @ dx)
            z = z - lr * base_all(torch.cat([-dx / lr, -dy / lr]))
        else:
            raise ValueError(name)
    return z


METHODS = {"simgd": {}, "altgd": {}, "extragradient": {}, "extragradient-past": {}, "optimistic": {},
           "consensus": {"gamma": 0.7}, "sga": {"lam": 0.6}, "cgd": {"cg_rtol": 1e-14, "cg_atol": 1e-30}}
BASES = {"sgd": dict(kind="sgd"), "sgd-momentum": dict(kind="sgd", momentum=0.5),
         "adam": dict(kind="adam", betas=(0.5, 0.9))}


def _optimizer(name, game, lr, base_name):
    kw = dict(BASES[base_name])
    kind = kw.pop("kind")
    return OPTIMIZERS[name](game.players, lr=lr, base=kind, **kw, **METHODS[name])


def _check(game, name, base_name, steps=3, lr=0.07):
    x, y = game.players[0][0], game.players[1][0]
    n = x.numel()
    field, J = game.reference()
    z0 = torch.cat([x.detach().reshape(-1), y.detach().reshape(-1)])
    base_kw = dict(BASES[base_name])
    expected = reference_steps(name, z0, field, J, n, lr, steps, base_kw, METHODS[name])
    opt = _optimizer(name, game, lr, base_name)
    for _ in range(steps):
        opt.step(game)
    got = torch.cat([x.detach().reshape(-1), y.detach().reshape(-1)])
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-10)


@settings(max_examples=12)
@given(shape=SHAPE_DIMS, layouts=st.tuples(*[st.sampled_from(PARAM_LAYOUTS)] * 2),
       grads=st.tuples(*[st.sampled_from(GRAD_LAYOUTS)] * 2), seed=st.integers(0, 2 ** 16))
@pytest.mark.parametrize("base_name", sorted(BASES))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_step_equals_formula_whatever_the_layouts(name, base_name, shape, layouts, grads, seed):
    g = torch.Generator().manual_seed(seed)

    def draw(scale=1.0):
        return scale * torch.randn(shape, generator=g, dtype=torch.float64)

    game = ElementwiseGame(leaf(draw(), layouts[0]), leaf(draw(), layouts[1]),
                           draw(0.5).abs() + 0.1, draw(), draw(0.5).abs() + 0.1, grads)
    _check(game, name, base_name)


@settings(max_examples=6)
@given(shape=SHAPE_DIMS, layouts=st.tuples(*[st.sampled_from(PARAM_LAYOUTS)] * 2),
       seed=st.integers(0, 2 ** 16))
@pytest.mark.parametrize("base_name", sorted(BASES))
@pytest.mark.parametrize("name", sorted(METHODS))
def test_expanded_field_equals_formula(name, base_name, shape, layouts, seed):
    g = torch.Generator().manual_seed(seed)
    x, y = (leaf(torch.randn(shape, generator=g, dtype=torch.float64), l) for l in layouts)
    game = RankOneGame(x, y, beta=0.3)
    assert game.vector_field()[0][0].stride() == (0,) * len(shape)  # the case under test
    _check(game, name, base_name)


# ------------------------------------------------- a conv GAN against torch.optim.Adam
class ConvG(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.ConvTranspose2d(4, 6, 4, 1, 0), nn.ReLU(),
                                 nn.ConvTranspose2d(6, 1, 4, 2, 1), nn.Tanh())

    def forward(self, z):
        return self.net(z.view(z.shape[0], 4, 1, 1))


class ConvD(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 6, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(6, 8, 3, 1, 1),
                                 nn.LeakyReLU(0.2), nn.Conv2d(8, 1, 4, 1, 0))

    def forward(self, x):
        return self.net(x).reshape(-1)


def _gan(penalty, seed=0):
    torch.manual_seed(seed)
    G, D = ConvG().double(), ConvD().double()
    real = torch.randn(6, 1, 8, 8, dtype=torch.float64).tanh()
    z = torch.randn(6, 4, dtype=torch.float64)
    gen = torch.Generator().manual_seed(1)

    def reg(D, r, f):
        return gradient_penalty(D, r, f, kind=penalty, weight=3.0, generator=gen)

    game = GANGame(G, D, lambda n: real[:n], lambda n: z[:n], batch_size=6, d_regularizer=reg)
    return game, gen


@pytest.mark.parametrize("penalty", ["r1", "r2", "wgan-gp"])
def test_conv_gan_with_penalty_simgd_adam_equals_torch_adam(penalty):
    game, gen = _gan(penalty)
    # the case under test: the penalty's double backward returns D's conv weight
    # gradients in another layout than the weights
    v = game.vector_field()
    assert any(g.stride() != p.stride() for g, p in zip(v[1], game.players[1]))
    ref, ref_gen = _gan(penalty)
    opt = SimGD(game.players, lr=1e-2, base="adam", betas=(0.5, 0.999))
    torch_opts = [torch.optim.Adam(ps, lr=1e-2, betas=(0.5, 0.999), foreach=False, fused=False)
                  for ps in ref.players]
    gen.manual_seed(7)
    ref_gen.manual_seed(7)
    for _ in range(4):
        opt.step(game)
        for ps, grads in zip(ref.players, ref.vector_field()):
            for p, gr in zip(ps, grads):
                p.grad = gr.detach()
        for o in torch_opts:
            o.step()
    for a, b in zip(game.params(), ref.params()):
        torch.testing.assert_close(a.detach(), b.detach(), rtol=1e-10, atol=1e-12)
