"""Memory layouts: every tensor argument of every gandyn op, in every layout a caller or
autograd can hand it (transposed, permuted, channels_last, sliced with step 2 at a storage
offset, contiguous at a storage offset, expanded with stride 0), forward, backward and
double backward.

The bug class: a kernel (or a `.view` / `data_ptr` use) that pairs elements by storage
offset assumes a layout it did not create. (torch._fused_adam_ did: the weight gradient
of a double backward through a conv had strides (16, 1024, 4, 1) for a parameter of
strides (512, 16, 4, 1).) Each test computes the C++ CPU kernel on the strided inputs,
the same kernel on contiguous copies, and the pure-PyTorch reference, in float64, and
requires all three to agree to rounding. Gradient outputs get layouts too: the gradient
of `.sum()` is an expanded tensor of stride 0, and autograd passes it to a backward as it
is. The fake kernels (torch.compile's view of the ops) must give the strides the real
kernels give. Then the modules: gandyn.nn.spectral_norm on a channels_last conv D against
torch's parametrization over training steps (with an R1 penalty's double backward), and
gandyn.nn.gradient_penalty on a conv D fed channels_last samples.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm
from torch.utils._pytree import tree_flatten, tree_map

from gandyn import _ext
from gandyn.games.base import flatten, unflatten
from gandyn.metrics import FeatureStats
from gandyn.metrics.frechet import frechet_distance
from gandyn.nn import gradient_penalty as nn_gradient_penalty
from gandyn.nn.spectral_norm import spectral_norm
from gandyn.ops import frechet as fr
from gandyn.ops import gradient_penalty as gp
from gandyn.ops import spectral_norm as sn

DT = torch.float64
OPS = ("gradient_penalty", "gradient_penalty_backward", "spectral_norm_power_iteration", "spectral_norm_normalize",
       "spectral_norm_normalize_backward", "frechet_jacobi_eigh", "frechet_trace_sqrt")
HAS_KERNELS = _ext.has_kernel("cpu") and all(hasattr(torch.ops.gandyn, op) for op in OPS)
needs_kernels = pytest.mark.skipif(not HAS_KERNELS, reason="extension gandyn._C not built")

# Same kernel, same data after its own .contiguous(): only the Python-side formulas around it
# run on other strides (a few roundings). Kernel against reference: other summation orders.
SAME = dict(rtol=1e-12, atol=1e-13)
REF = dict(rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- layouts
KINDS = ("contiguous", "transposed", "permuted", "channels_last", "step2", "offset", "expanded")
layout = st.tuples(st.sampled_from(KINDS), st.integers(0, 7))  # (kind, which dim)
# torch.func.jvp cannot attach a tangent to an expanded primal (torch refuses, whatever the op).
primal_layout = st.tuples(st.sampled_from([k for k in KINDS if k != "expanded"]), st.integers(0, 7))


def relayout(x: torch.Tensor, spec, expandable=None) -> torch.Tensor:
    """A tensor of x's shape and values in the layout `spec` = (kind, k); "expanded" takes the
    values at index 0 along dim `expandable[k % len]` (any dim by default) and broadcasts them
    with stride 0, so its values differ from x's: callers compare on the returned tensor.
    A kind that does not apply to x (transposing a vector) falls back to "step2"."""
    kind, k = spec
    n = x.dim()
    x = x.detach()
    if kind == "contiguous":
        return x.clone()
    if n == 0:  # a 0-d view at a storage offset
        buf = x.new_zeros(3)
        buf[2] = x
        return buf[2]
    if kind == "transposed" and n >= 2 and x.shape[-1] > 1 and x.shape[-2] > 1:
        return x.transpose(-1, -2).contiguous().transpose(-1, -2)
    if kind == "permuted" and n >= 2:
        rev = list(range(n))[::-1]
        return x.permute(rev).contiguous().permute(rev)
    if kind == "channels_last" and n in (4, 5):
        return x.contiguous(memory_format=torch.channels_last if n == 4 else torch.channels_last_3d)
    if kind == "offset":
        buf = x.new_zeros(x.numel() + 5)
        view = buf[5:].view(x.shape)
        view.copy_(x)
        return view
    if kind == "expanded":
        dims = [d for d in (range(n) if expandable is None else expandable) if x.shape[d] > 1]
        if dims:
            d = dims[k % len(dims)]
            return x.narrow(d, 0, 1).expand(x.shape)
    # step2: every other element (starting at 1) along one dim of a twice-as-long buffer.
    d = k % n
    shape = list(x.shape)
    shape[d] *= 2
    buf = x.new_zeros(shape)
    index = [slice(None)] * n
    index[d] = slice(1, None, 2)
    view = buf[tuple(index)]
    view.copy_(x)
    return view


def contiguous_copy(x: torch.Tensor) -> torch.Tensor:
    return x.detach().clone(memory_format=torch.contiguous_format)


def randn(shape, seed, scale=1.0):
    return torch.randn(shape, dtype=DT, generator=torch.Generator().manual_seed(seed)) * scale


def close(a, b, tol):
    a, b = tree_flatten(a)[0], tree_flatten(b)[0]
    assert len(a) == len(b)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, **tol)


def test_relayout_makes_the_layouts_it_names():
    x = randn((3, 4, 5, 6), 0)
    for kind in KINDS:
        y = relayout(x, (kind, 1))
        assert y.shape == x.shape
        if kind == "expanded":
            assert 0 in y.stride() and torch.equal(y, x.narrow(1, 0, 1).expand(x.shape))
            continue
        assert torch.equal(y, x)
        assert y.is_contiguous() == (kind in ("contiguous", "offset"))
    assert relayout(x, ("channels_last", 0)).is_contiguous(memory_format=torch.channels_last)
    assert relayout(x, ("offset", 0)).storage_offset() == 5
    assert relayout(x, ("step2", 3)).stride() == (240, 60, 12, 2)
    assert relayout(torch.tensor(2.0, dtype=DT), ("offset", 0)).storage_offset() == 2


# ---------------------------------------------------------------- gradient penalty
gp_shape = st.one_of(
    st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),  # images (B, C, H, W)
    st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple),
)


@needs_kernels
@settings(deadline=None, max_examples=30)
@given(shape=gp_shape, g_layout=layout, gout_layout=layout, gnorms_layout=layout, v_layout=layout,
       target=st.sampled_from([0.0, 1.0, 2.5]), seed=st.integers(0, 2**31 - 1))
def test_gradient_penalty_forward_backward_double_backward(shape, g_layout, gout_layout, gnorms_layout, v_layout,
                                                           target, seed):
    grad = relayout(randn(shape, seed) + 0.5, g_layout)
    gout_p = relayout(torch.tensor(0.7, dtype=DT), gout_layout)          # 0-d, at a storage offset
    gout_n = relayout(randn(shape[:1], seed + 1), gnorms_layout)         # (B,), e.g. stride 0
    v = relayout(randn(shape, seed + 2), v_layout)
    results = {}
    for body, x, impl in (("kernel", grad, "kernel"), ("contiguous", contiguous_copy(grad), "kernel"),
                          ("reference", contiguous_copy(grad), "reference")):
        x = x.requires_grad_(True)
        p, n = gp.gradient_penalty(x, target, return_norms=True, impl=impl)
        # Backward through both outputs, kept differentiable; then double backward with a strided
        # cotangent and with the expanded one of .sum().
        (d,) = torch.autograd.grad((p, n), x, (gout_p, gout_n), create_graph=True)
        (hv,) = torch.autograd.grad(d, x, v, retain_graph=True)
        (hs,) = torch.autograd.grad(d.sum(), x, retain_graph=True)
        (d_only_p,) = torch.autograd.grad(p, x, create_graph=True)
        (hp,) = torch.autograd.grad(d_only_p.sum(), x)
        results[body] = (p, n, d, hv, hs, hp)
    close(results["kernel"], results["contiguous"], SAME)
    close(results["kernel"], results["reference"], REF)


@needs_kernels
@settings(deadline=None, max_examples=15)
@given(shape=gp_shape, g_layout=primal_layout, t_layout=layout, target=st.sampled_from([0.0, 1.0]),
       seed=st.integers(0, 2**31 - 1))
def test_gradient_penalty_forward_mode_with_strided_tangents(shape, g_layout, t_layout, target, seed):
    # Forward mode (jvp) and forward-over-reverse (the jvp of the backward op) take strided tangents.
    grad = relayout(randn(shape, seed) + 0.5, g_layout)
    tangent = relayout(randn(shape, seed + 1), t_layout)
    results = {}
    for impl in ("kernel", "reference"):
        def f(x):
            return gp.gradient_penalty(x, target, return_norms=True, impl=impl)
        _, jvp = torch.func.jvp(f, (grad,), (tangent,))
        _, hvp = torch.func.jvp(torch.func.grad(lambda x: f(x)[0]), (grad,), (tangent,))
        results[impl] = (jvp, hvp)
    close(results["kernel"], results["reference"], REF)


def gp_backward_formula(gout, grad, norms, target):
    inv = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-300), torch.zeros_like(norms))
    scale = gout * (2.0 / grad.shape[0]) * (1.0 - target * inv)
    return grad * scale.reshape((-1,) + (1,) * (grad.dim() - 1))


@needs_kernels
@settings(deadline=None, max_examples=30)
@given(shape=gp_shape, layouts=st.lists(layout, min_size=3, max_size=3), target=st.sampled_from([0.0, 1.5]),
       seed=st.integers(0, 2**31 - 1))
def test_gradient_penalty_backward_op_reads_every_argument_by_index(shape, layouts, target, seed):
    grad = relayout(randn(shape, seed), layouts[0])
    norms = relayout(torch.linalg.vector_norm(grad.reshape(shape[0], -1), dim=1) + 0.25, layouts[1])
    gout = relayout(torch.tensor(-1.3, dtype=DT), layouts[2])
    op = torch.ops.gandyn.gradient_penalty_backward
    out = op(gout, grad, norms, target)
    assert out.is_contiguous() and out.shape == shape  # as its fake kernel says
    torch.testing.assert_close(out, op(gout.clone(), contiguous_copy(grad), contiguous_copy(norms), target), **SAME)
    torch.testing.assert_close(out, gp_backward_formula(gout, contiguous_copy(grad), contiguous_copy(norms), target),
                               **REF)
    penalty, n = torch.ops.gandyn.gradient_penalty(grad, target)
    ref_penalty, ref_n = gp.reference(contiguous_copy(grad), target)
    close((penalty, n), (ref_penalty, ref_n), REF)


# ---------------------------------------------------------------- spectral normalization
layer_shape = st.one_of(
    st.tuples(st.integers(1, 6), st.integers(1, 7)),                                        # Linear
    st.tuples(st.integers(1, 5), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),  # Conv2d
)


def sn_layers(shapes, seed):
    g = torch.Generator().manual_seed(seed)
    weights = [torch.randn(s, dtype=DT, generator=g) for s in shapes]
    us = [F.normalize(torch.randn(s[0], dtype=DT, generator=g), dim=0) for s in shapes]
    vs = [F.normalize(torch.randn(w[0].numel(), dtype=DT, generator=g), dim=0) for w in weights]
    # One reference power-iteration step: u, v near the top singular pair, so sigma is far from 0.
    us, vs = sn.power_iteration_reference(weights, us, vs, 1)
    return weights, us, vs


@needs_kernels
@settings(deadline=None, max_examples=30)
@given(shapes=st.lists(layer_shape, min_size=1, max_size=3), layouts=st.lists(layout, min_size=17, max_size=17),
       n_iter=st.integers(0, 2), seed=st.integers(0, 2**31 - 1))
def test_spectral_norm_ops_read_every_argument_by_index(shapes, layouts, n_iter, seed):
    L = len(shapes)
    w0, u0, v0 = sn_layers(shapes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    weights = [relayout(w, layouts[i]) for i, w in enumerate(w0)]
    us = [relayout(u, layouts[3 + i]) for i, u in enumerate(u0)]
    vs = [relayout(v, layouts[6 + i]) for i, v in enumerate(v0)]
    grads = [relayout(torch.randn(s, dtype=DT, generator=g), layouts[9 + i]) for i, s in enumerate(shapes)]
    grad_sigmas = relayout(torch.randn(L, dtype=DT, generator=g), layouts[12])
    wc, uc, vc, gc = ([contiguous_copy(t) for t in ts] for ts in (weights, us, vs, grads))

    # power iteration
    got = torch.ops.gandyn.spectral_norm_power_iteration(weights, us, vs, n_iter, 1e-12)
    close(got, torch.ops.gandyn.spectral_norm_power_iteration(wc, uc, vc, n_iter, 1e-12), SAME)
    close(got, sn.power_iteration_reference(wc, uc, vc, n_iter, 1e-12), REF)
    assert all(t.is_contiguous() for t in got[0] + got[1])
    # normalize
    out, sigmas = torch.ops.gandyn.spectral_norm_normalize(weights, us, vs)
    out_c, sigmas_c = torch.ops.gandyn.spectral_norm_normalize(wc, uc, vc)
    close((out, sigmas), (out_c, sigmas_c), SAME)
    close((out, sigmas), sn.normalize_reference(wc, uc, vc), REF)
    assert all(t.is_contiguous() for t in out)
    # normalize backward: grads, sigmas and grad_sigmas strided too
    sig = relayout(sigmas_c, layouts[13])
    dw = torch.ops.gandyn.spectral_norm_normalize_backward(grads, weights, us, vs, sig, grad_sigmas)
    sc, gsc = contiguous_copy(sig), contiguous_copy(grad_sigmas)  # ("expanded" changes their values)
    dw_c = torch.ops.gandyn.spectral_norm_normalize_backward(gc, wc, uc, vc, sc, gsc)
    close(dw, dw_c, SAME)
    close(dw, sn.normalize_backward_reference(gc, wc, uc, vc, sc, gsc), REF)
    assert all(t.is_contiguous() for t in dw)
    # The inputs are left alone (no kernel writes through an argument).
    assert all(torch.equal(a, b) for a, b in zip(us + vs + weights, uc + vc + wc))


@needs_kernels
@settings(deadline=None, max_examples=20)
@given(shapes=st.lists(layer_shape, min_size=1, max_size=3), layouts=st.lists(layout, min_size=13, max_size=13),
       seed=st.integers(0, 2**31 - 1))
def test_spectral_norm_normalize_backward_and_double_backward(shapes, layouts, seed):
    L = len(shapes)
    w0, us, vs = sn_layers(shapes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    weights = [relayout(w, layouts[i]) for i, w in enumerate(w0)]
    cot = [relayout(torch.randn(s, dtype=DT, generator=g), layouts[3 + i]) for i, s in enumerate(shapes)]
    cot_sigma = relayout(torch.randn(L, dtype=DT, generator=g), layouts[6])
    vecs = [relayout(torch.randn(s, dtype=DT, generator=g), layouts[7 + i]) for i, s in enumerate(shapes)]
    us = [relayout(u, layouts[10]) for u in us]
    vs = [relayout(v, layouts[11]) for v in vs]
    results = {}
    for body, ws in (("kernel", weights), ("contiguous", [contiguous_copy(w) for w in weights]),
                     ("reference", [contiguous_copy(w) for w in weights])):
        ws = [w.requires_grad_(True) for w in ws]
        normalize = sn.normalize_reference if body == "reference" else sn.normalize
        out, sigmas = normalize(ws, us, vs)
        # The fused backward (no create_graph), with strided cotangents and with the expanded
        # cotangents of .sum(); then the differentiable backward and a second derivative.
        fused = torch.autograd.grad(out + [sigmas], ws, cot + [cot_sigma], retain_graph=True)
        fused_sum = torch.autograd.grad(sum(o.sum() for o in out) + sigmas.sum(), ws, retain_graph=True)
        first = torch.autograd.grad(out + [sigmas], ws, cot + [cot_sigma], create_graph=True)
        second = torch.autograd.grad(first, ws, vecs, retain_graph=True)
        second_sum = torch.autograd.grad(sum(d.sum() for d in first), ws)
        results[body] = (out, sigmas, fused, fused_sum, first, second, second_sum)
    close(results["kernel"], results["contiguous"], SAME)
    close(results["kernel"], results["reference"], REF)


@needs_kernels
@settings(deadline=None, max_examples=15)
@given(shapes=st.lists(layer_shape, min_size=1, max_size=3), w_layouts=st.lists(primal_layout, min_size=3, max_size=3),
       t_layouts=st.lists(layout, min_size=3, max_size=3), seed=st.integers(0, 2**31 - 1))
def test_spectral_norm_forward_mode_with_strided_tangents(shapes, w_layouts, t_layouts, seed):
    w0, us, vs = sn_layers(shapes, seed)
    g = torch.Generator().manual_seed(seed + 1)
    weights = tuple(relayout(w, w_layouts[i]) for i, w in enumerate(w0))
    tangents = tuple(relayout(torch.randn(s, dtype=DT, generator=g), t_layouts[i]) for i, s in enumerate(shapes))
    results = {}
    for body, normalize in (("kernel", sn.normalize), ("reference", sn.normalize_reference)):
        def f(*ws):
            out, sigmas = normalize(list(ws), us, vs)
            return (*out, sigmas)
        _, jvp = torch.func.jvp(f, weights, tangents)
        results[body] = jvp
    close(results["kernel"], results["reference"], REF)


# ---------------------------------------------------------------- Frechet
def spd(batch, d, seed, n=None):
    g = torch.Generator().manual_seed(seed)
    n = d + 4 if n is None else n
    x = torch.randn(*batch, n, d, dtype=DT, generator=g) * torch.linspace(0.5, 2.0, d, dtype=DT)
    x = x - x.mean(-2, keepdim=True)
    return x.mT @ x / (n - 1)


@needs_kernels
@settings(deadline=None, max_examples=25)
@given(d=st.integers(1, 7), batch=st.sampled_from([(2, 3), (3,), ()]), a_layout=layout, symmetric=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_jacobi_eigh_reads_its_argument_by_index(d, batch, a_layout, symmetric, seed):
    a = randn(batch + (d, d), seed)
    a = relayout(a + a.mT if symmetric else a, a_layout)  # (2, 3, d, d): channels_last applies
    a_before = contiguous_copy(a)
    op = torch.ops.gandyn.frechet_jacobi_eigh
    for vectors in (True, False):
        w, v = op(a, 3, 0.0, vectors)  # fixed sweeps: the reference rotates identically
        close((w, v), op(contiguous_copy(a), 3, 0.0, vectors), SAME)
        wr, vr = fr.jacobi_eigh_reference(contiguous_copy(a), 3, 0.0, vectors)
        torch.testing.assert_close(w, wr, rtol=1e-12, atol=1e-12)
        if 0 not in a.stride()[-2:] or d == 1:
            # (Equal rows or columns make the symmetric part rank 2: a degenerate eigenproblem whose
            # eigenvectors rounding decides. Its values still agree; the kernel against itself above.)
            torch.testing.assert_close(v, vr, rtol=0, atol=1e-10)
        assert w.is_contiguous() and v.is_contiguous()
    assert torch.equal(a, a_before)  # the sweeps rotate a copy, never the argument
    w, _ = fr.jacobi_eigh(a)
    torch.testing.assert_close(w, torch.linalg.eigvalsh((contiguous_copy(a) + contiguous_copy(a).mT) / 2),
                               rtol=0, atol=1e-12 * d * max(1.0, a.abs().max().item()))


@needs_kernels
@settings(deadline=None, max_examples=25)
@given(d=st.integers(1, 6), method=st.sampled_from(fr.METHODS), layouts=st.lists(layout, min_size=3, max_size=3),
       seed=st.integers(0, 2**31 - 1))
def test_trace_sqrt_forward_and_backward(d, method, layouts, seed):
    batch = (2, 3)
    # Expanded along batch dims only: along a matrix dim a covariance would stop being one.
    s1 = relayout(spd(batch, d, seed), layouts[0], expandable=(0, 1))
    s2 = relayout(spd(batch, d, seed + 1), layouts[1], expandable=(0, 1))
    cot = relayout(randn(batch, seed + 2), layouts[2])
    results = {}
    for body, a, b in (("op", s1, s2), ("contiguous", contiguous_copy(s1), contiguous_copy(s2)),
                       ("reference", contiguous_copy(s1), contiguous_copy(s2))):
        a, b = a.requires_grad_(True), b.requires_grad_(True)
        if body == "reference":
            tr, diag = fr._TraceSqrtReference.apply(a, b, method, fr.default_max_iter(method), True)[:2]
        else:
            tr, diag = fr.trace_sqrt(a, b, method)
        grads = torch.autograd.grad(tr, (a, b), cot, retain_graph=True)
        grads_sum = torch.autograd.grad(tr.sum(), (a, b))  # an expanded cotangent
        results[body] = (tr, diag, grads, grads_sum)
    close(results["op"], results["contiguous"], dict(rtol=1e-11, atol=1e-12))
    close(results["op"], results["reference"], dict(rtol=1e-9, atol=1e-11))


@needs_kernels
@pytest.mark.parametrize("kind", KINDS)
def test_frechet_distance_and_feature_stats_take_any_layout(kind):
    s1, s2 = spd((2, 3), 4, 1), spd((2, 3), 4, 2)
    mu1, mu2 = randn((2, 3, 4), 3), randn((2, 3, 4), 4)
    args = [relayout(t, (kind, 0), expandable=(0, 1)) for t in (mu1, s1, mu2, s2)]
    for method in fr.METHODS:
        torch.testing.assert_close(frechet_distance(*args, method=method),
                                   frechet_distance(*[contiguous_copy(t) for t in args], method=method), **SAME)
    x = relayout(randn((7, 5), 5), (kind, 1))
    a, b = FeatureStats(5).update(x), FeatureStats(5).update(contiguous_copy(x))
    close((a.mean, a.cov, a.pack()), (b.mean, b.cov, b.pack()), SAME)


# ---------------------------------------------------------------- fake kernels
def fake_and_real_strides(op, *args):
    real = op(*args)
    with FakeTensorMode() as mode:
        fake = op(*tree_map(lambda t: mode.from_tensor(t) if isinstance(t, torch.Tensor) else t, args))
    return ([(tuple(t.shape), t.stride()) for t in tree_flatten(real)[0]],
            [(tuple(t.shape), t.stride()) for t in tree_flatten(fake)[0]])


@needs_kernels
@pytest.mark.parametrize("kind", KINDS)
def test_fake_kernels_give_the_real_strides(kind):
    # torch.compile plans its buffers from the fake kernels: a real output of other strides
    # would be read by the wrong index.
    def lay(t):
        return relayout(t, (kind, 1))

    ops = torch.ops.gandyn
    grad = randn((3, 2, 4, 5), 0) + 0.1
    norms = torch.linalg.vector_norm(grad.flatten(1), dim=1)
    w, u, v = sn_layers([(4, 3, 2, 2), (5, 6)], 1)
    s1, s2 = spd((2, 3), 4, 2), spd((2, 3), 4, 3)
    cases = [
        (ops.gradient_penalty, lay(grad), 1.0),
        (ops.gradient_penalty_backward, lay(torch.tensor(0.5, dtype=DT)), lay(grad), lay(norms), 1.0),
        (ops.spectral_norm_power_iteration, [lay(x) for x in w], [lay(x) for x in u], [lay(x) for x in v], 2, 1e-12),
        (ops.spectral_norm_normalize, [lay(x) for x in w], [lay(x) for x in u], [lay(x) for x in v]),
        (ops.spectral_norm_normalize_backward, [lay(randn(x.shape, 4)) for x in w], [lay(x) for x in w],
         [lay(x) for x in u], [lay(x) for x in v], lay(torch.tensor([1.5, 2.0], dtype=DT)),
         lay(torch.tensor([0.3, -0.2], dtype=DT))),
        (ops.frechet_jacobi_eigh, lay(s1), 30, 1e-14, True),
        (ops.frechet_jacobi_eigh, lay(s1), 30, 1e-14, False),
    ]
    for method in fr.METHODS:
        for with_grad in (True, False):
            cases.append((ops.frechet_trace_sqrt, relayout(s1, (kind, 1), (0, 1)), relayout(s2, (kind, 1), (0, 1)),
                          method, 30, with_grad))
    for op, *args in cases:
        real, fake = fake_and_real_strides(op, *args)
        assert real == fake, op


# ---------------------------------------------------------------- modules on channels_last networks
def conv_discriminator(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.1),
        nn.Conv2d(8, 8, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1), nn.Softplus(),  # read with dim = 1
        nn.Conv2d(4, 4, 4, stride=2, padding=1), nn.Softplus(),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 1),
    ).to(DT)


def torch_sn(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            torch_spectral_norm(m)
    return module


def samples(seed, n=3):
    return randn((n, 3, 8, 8), seed).contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("created, penalty, strided_buffers", [
    ("before", False, False), ("before", True, False), ("before", False, True), ("after", True, True)])
def test_spectral_norm_module_on_channels_last_conv_d_matches_torch(created, penalty, strided_buffers):
    # created="before": SN applied, then the network made channels_last; "after": SN applied to
    # a channels_last network (the buffers' 15 warm-up power iterations read channels_last weights).
    base = conv_discriminator()
    if created == "before":
        ref = torch_sn(copy.deepcopy(base)).to(memory_format=torch.channels_last)
        ours = spectral_norm(copy.deepcopy(base))
        ours.load_state_dict(ref.state_dict())
        ours = ours.to(memory_format=torch.channels_last)
    else:
        base = base.to(memory_format=torch.channels_last)
        torch.manual_seed(123)
        ref = torch_sn(copy.deepcopy(base))
        torch.manual_seed(123)
        ours = spectral_norm(copy.deepcopy(base))
        a, b = ref.state_dict(), ours.state_dict()
        for k in a:
            torch.testing.assert_close(b[k], a[k], **REF, msg=k)
    original = ours[0].parametrizations.weight.original
    assert original.is_contiguous(memory_format=torch.channels_last) and not original.is_contiguous()
    if strided_buffers:
        # u, v buffers that are views of every other element of a larger tensor: the in-place
        # update must write them by index, and keep them the very tensors they were.
        for _, p in ours._gandyn_spectral_norm_layers:
            p._u, p._v = relayout(p._u, ("step2", 0)), relayout(p._v, ("step2", 0))
    buffers = [(p._u, p._v) for _, p in ours._gandyn_spectral_norm_layers]
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.05)
    for step in range(3):
        real, fake = samples(2 * step), samples(2 * step + 1)
        losses = []
        for model, opt in ((ref, opt_ref), (ours, opt_ours)):
            opt.zero_grad()
            loss = F.softplus(-model(real)).mean() + F.softplus(model(fake)).mean()
            if penalty:  # R1: a double backward through the channels_last convs and the SN backward
                if model is ours:
                    loss = loss + nn_gradient_penalty(model, real, None, "r1", weight=2.0)
                else:
                    x = real.detach().requires_grad_(True)
                    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
                    loss = loss + g.flatten(1).square().sum(1).mean()
            loss.backward()
            opt.step()
            losses.append(loss)
        torch.testing.assert_close(losses[1], losses[0], **REF)
        for (name, p), q in zip(ref.named_parameters(), ours.parameters()):
            torch.testing.assert_close(q.grad, p.grad, **REF, msg=name)
        a, b = ref.state_dict(), ours.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], **REF, msg=k)
    for (u, v), (_, p) in zip(buffers, ours._gandyn_spectral_norm_layers):
        assert p._u is u and p._v is v
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(samples(9)), ref(samples(9)), **REF)


@needs_kernels
@pytest.mark.parametrize("kind", ["wgan-gp", "r1"])
def test_gradient_penalty_on_channels_last_inputs_and_d(kind):
    D = conv_discriminator(1)
    D_cl = copy.deepcopy(D).to(memory_format=torch.channels_last)
    real, fake = samples(3), samples(4)
    results = []
    for model, r, f, impl in ((D_cl, real, fake, "kernel"), (D_cl, real, fake, "reference"),
                              (D, contiguous_copy(real), contiguous_copy(fake), "kernel")):
        penalty = nn_gradient_penalty(model, r, f, kind, weight=3.0, impl=impl,
                                      generator=torch.Generator().manual_seed(5))
        results.append((penalty, torch.autograd.grad(penalty, list(model.parameters()), allow_unused=True,
                                                     materialize_grads=True)))
    close(results[0], results[1], REF)
    close(results[0], results[2], REF)


# ---------------------------------------------------------------- flat parameter vectors
def test_flatten_and_unflatten_follow_logical_order_whatever_the_strides():
    like = [relayout(randn((3, 4, 2, 5), 0), ("channels_last", 0)), relayout(randn((4, 3), 1), ("transposed", 0)),
            relayout(randn((6,), 2), ("step2", 0)), relayout(randn((2, 3), 3), ("expanded", 0))]
    flat = flatten(like)
    assert torch.equal(flat, torch.cat([contiguous_copy(t).reshape(-1) for t in like]))
    for f in (flat, relayout(flat, ("step2", 0)), relayout(flat, ("offset", 0))):
        for a, b in zip(unflatten(f, like), like):
            assert a.shape == b.shape and torch.equal(a, b)
