"""The public op functions under torch.compile (fullgraph, AOTAutograd with the eager
backend: the ops' fake kernels and registered autograd, without code generation):
forward values and gradients equal eager mode's."""
import pytest
import torch
import torch.nn.functional as F

from gandyn import _ext
from gandyn.ops import frechet as fr
from gandyn.ops import gradient_penalty as gp
from gandyn.ops import spectral_norm as sn

pytestmark = pytest.mark.skipif(not _ext.has_kernel("cpu"), reason="extension gandyn._C not built")


def compiled(fn):
    torch._dynamo.reset()
    return torch.compile(fn, backend="aot_eager", fullgraph=True)


def assert_same_values_and_gradients(fn, inputs):
    eager = fn(*inputs)
    graph = compiled(fn)(*inputs)
    torch.testing.assert_close(graph, eager, rtol=1e-12, atol=1e-12)
    for a, b in zip(torch.autograd.grad(graph, inputs), torch.autograd.grad(eager, inputs)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_gradient_penalty_compiles():
    g = torch.randn(4, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)

    def fn(x):
        penalty, norms = gp.gradient_penalty(x * 2, 0.5, return_norms=True, check_finite=False, impl="kernel")
        return penalty + norms.sum()

    assert_same_values_and_gradients(fn, (g,))


def test_spectral_norm_compiles():
    gen = torch.Generator().manual_seed(1)
    weights = [torch.randn(4, 3, dtype=torch.float64, generator=gen, requires_grad=True),
               torch.randn(2, 3, 3, dtype=torch.float64, generator=gen, requires_grad=True)]
    us = [F.normalize(torch.randn(n, dtype=torch.float64, generator=gen), dim=0) for n in (4, 2)]
    vs = [F.normalize(torch.randn(n, dtype=torch.float64, generator=gen), dim=0) for n in (3, 9)]

    def fn(w0, w1):
        out, sigmas = sn.normalize([w0, w1], us, vs)
        return sum((o * o.detach().sign()).sum() for o in out) + sigmas.sum()

    assert_same_values_and_gradients(fn, tuple(weights))


@pytest.mark.parametrize("method", fr.METHODS)
def test_trace_sqrt_compiles(method):
    gen = torch.Generator().manual_seed(2)
    x, y = torch.randn(2, 12, 4, dtype=torch.float64, generator=gen), torch.randn(2, 9, 4, dtype=torch.float64,
                                                                                  generator=gen)
    s1 = (x.mT @ x / 11).requires_grad_(True)
    s2 = (y.mT @ y / 8).requires_grad_(True)

    def fn(a, b):
        return fr.trace_sqrt(a, b, method)[0].sum()

    assert_same_values_and_gradients(fn, (s1, s2))
