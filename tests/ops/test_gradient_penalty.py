"""gandyn.ops.gradient_penalty: every available body (reference, CPU kernel, CUDA kernel)
against an independent float64 NumPy computation, plus autograd, opcheck and errors."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn import _ext
from gandyn.ops import gradient_penalty as gp

HAS_CPU_KERNEL = _ext.has_kernel("cpu") and hasattr(torch.ops.gandyn, "gradient_penalty")
needs_cpu_kernel = pytest.mark.skipif(not HAS_CPU_KERNEL, reason="extension gandyn._C not built")
BODIES = ["reference", pytest.param("kernel", marks=needs_cpu_kernel)]


def numpy_penalty(g: np.ndarray, target: float):
    """(penalty, norms, d penalty/d g) in float64, norm over all non-batch dims."""
    g = g.astype(np.float64)
    rows = g.reshape(g.shape[0], -1)
    n = np.sqrt((rows ** 2).sum(axis=1))
    inv = np.divide(1.0, n, out=np.zeros_like(n), where=n > 0)
    d = (2.0 / g.shape[0]) * (1.0 - target * inv)[:, None] * rows
    return ((n - target) ** 2).mean(), n, d.reshape(g.shape)


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-11, atol=1e-12)


shapes = st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple)


@pytest.mark.parametrize("impl", BODIES)
@settings(deadline=None, max_examples=20)
@given(shape=shapes, target=st.sampled_from([0.0, 1.0, 2.5]), dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 2**31 - 1))
def test_forward_and_backward_match_numpy(impl, shape, target, dtype, seed):
    g = torch.randn(shape, dtype=dtype, generator=torch.Generator().manual_seed(seed)).requires_grad_(True)
    penalty, norms = gp.gradient_penalty(g, target, return_norms=True, impl=impl)
    p_np, n_np, d_np = numpy_penalty(g.detach().numpy(), target)
    assert penalty.dtype == dtype and penalty.shape == ()
    assert norms.dtype == dtype and norms.shape == (shape[0],)
    np.testing.assert_allclose(penalty.item(), p_np, **tol(dtype))
    np.testing.assert_allclose(norms.detach().numpy(), n_np, **tol(dtype))
    (d,) = torch.autograd.grad(penalty, g)
    np.testing.assert_allclose(d.numpy(), d_np, **tol(dtype))


@pytest.mark.parametrize("impl", BODIES)
def test_long_float32_rows_stay_accurate(impl):
    # Rows longer than the CPU kernel's 4096-element blocks, with a ragged tail.
    g = torch.randn(2, 3 * 4096 + 7, generator=torch.Generator().manual_seed(10)) * 3.0
    p, n = gp.gradient_penalty(g, 1.0, return_norms=True, impl=impl)
    p_np, n_np, _ = numpy_penalty(g.numpy(), 1.0)
    np.testing.assert_allclose(n.numpy(), n_np, rtol=1e-6)
    assert p.item() == pytest.approx(p_np, rel=2e-6)


@pytest.mark.parametrize("impl", BODIES)
def test_norm_is_over_all_non_batch_dims_not_per_pixel(impl):
    # An image gradient (B, C, H, W): the per-pixel norm over dim=1 that many ports take
    # gives another number; the penalty is the norm over C, H and W together.
    g = torch.randn(3, 2, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    penalty = gp.gradient_penalty(g, 1.0, impl=impl).item()
    all_dims = ((g.flatten(1).norm(dim=1) - 1) ** 2).mean().item()
    per_pixel = ((g.norm(dim=1) - 1) ** 2).mean().item()
    assert penalty == pytest.approx(all_dims, rel=1e-12)
    assert abs(penalty - per_pixel) > 1.0


@needs_cpu_kernel
@pytest.mark.parametrize("target", [0.0, 1.0, 2.5])
def test_gradcheck_and_gradgradcheck_of_the_ops(target):
    g = torch.randn(4, 3, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    both = lambda x: torch.ops.gandyn.gradient_penalty(x, target)  # noqa: E731  (penalty and norms)
    assert torch.autograd.gradcheck(both, (g,))
    assert torch.autograd.gradgradcheck(both, (g,))
    gout = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    norms = g.detach().flatten(1).norm(dim=1).requires_grad_(True)
    bwd = lambda a, b, c: torch.ops.gandyn.gradient_penalty_backward(a, b, c, target)  # noqa: E731
    assert torch.autograd.gradcheck(bwd, (gout, g, norms))
    assert torch.autograd.gradgradcheck(bwd, (gout, g, norms))


@needs_cpu_kernel
@pytest.mark.parametrize("target", [0.0, 1.5])
@pytest.mark.parametrize("mode", ["reverse-over-reverse", "forward-over-reverse"])
def test_hessian_vector_product_matches_closed_form(target, mode):
    # Hessian of (1/B) Σ (n_i − t)²: block i is (2/B) [(1 − t/n_i) I + t g_i g_iᵀ / n_i³].
    g = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3), requires_grad=True)
    v = torch.randn(3, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    if mode == "reverse-over-reverse":
        (d,) = torch.autograd.grad(gp.gradient_penalty(g, target, impl="kernel"), g, create_graph=True)
        (hv,) = torch.autograd.grad(d, g, grad_outputs=v)
    else:  # torch.func.jvp of the gradient: the forward-mode formulas of the op and of its backward
        grad_fn = torch.func.grad(lambda x: gp.gradient_penalty(x, target, impl="kernel"))
        _, hv = torch.func.jvp(grad_fn, (g.detach(),), (v,))
    gn = g.detach().numpy()
    n = np.linalg.norm(gn, axis=1)
    expected = np.stack([(2 / 3) * ((1 - target / n[i]) * v[i].numpy() + target * gn[i] * (gn[i] @ v[i].numpy())
                                    / n[i] ** 3) for i in range(3)])
    np.testing.assert_allclose(hv.numpy(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("impl", BODIES)
@pytest.mark.parametrize("target", [0.0, 1.3])
def test_forward_mode_ad(impl, target):
    # Forward mode of the penalty and norms, and forward-over-reverse (the jvp of the backward op).
    g = torch.randn(5, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5), requires_grad=True)
    f = lambda x: gp.gradient_penalty(x, target, return_norms=True, impl=impl)  # noqa: E731
    assert torch.autograd.gradcheck(f, (g,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, (g,), check_fwd_over_rev=True)


@needs_cpu_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(dtype):
    g = torch.randn(5, 3, 4, dtype=dtype, generator=torch.Generator().manual_seed(5), requires_grad=True)
    torch.library.opcheck(torch.ops.gandyn.gradient_penalty.default, (g, 1.0))
    norms = torch.linalg.vector_norm(g.detach().flatten(1), dim=1)
    gout = torch.tensor(0.5, dtype=dtype)
    torch.library.opcheck(torch.ops.gandyn.gradient_penalty_backward.default, (gout, g, norms, 1.0))


@pytest.mark.parametrize("impl", BODIES)
def test_non_contiguous_input(impl):
    base = torch.randn(6, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    views = [base.transpose(1, 2), base[:, ::2], base.permute(2, 0, 1)[:, :3]]
    for view in views:
        assert not view.is_contiguous()
        g = view.detach().requires_grad_(True)
        p = gp.gradient_penalty(g, 1.0, impl=impl)
        p_np, _, d_np = numpy_penalty(view.numpy(), 1.0)
        assert p.item() == pytest.approx(p_np, rel=1e-12)
        (d,) = torch.autograd.grad(p, g)
        np.testing.assert_allclose(d.numpy(), d_np, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", BODIES)
def test_zero_rows_and_empty_rows(impl):
    # A zero gradient row has norm 0: its term is t² and its gradient 0 (1/0 := 0).
    g = torch.zeros(2, 3, dtype=torch.float64)
    g[1] = torch.tensor([3.0, 4.0, 0.0])
    g.requires_grad_(True)
    p = gp.gradient_penalty(g, 2.0, impl=impl)
    assert p.item() == pytest.approx((4.0 + 9.0) / 2)
    (d,) = torch.autograd.grad(p, g)
    # Row 1: (2/B)(1 − t/n) g = (2/2)(1 − 2/5)(3, 4, 0).
    np.testing.assert_allclose(d.numpy(), [[0, 0, 0], [1.8, 2.4, 0]], rtol=1e-15, atol=1e-15)
    # Rows of zero elements (B, 0): every norm is 0, the penalty t².
    assert gp.gradient_penalty(torch.zeros(3, 0), 1.5, impl=impl).item() == pytest.approx(2.25)


@pytest.mark.parametrize("impl", BODIES)
def test_errors_name_the_argument(impl):
    with pytest.raises(ValueError, match="grad: empty batch"):
        gp.gradient_penalty(torch.zeros(0, 3), impl=impl)
    with pytest.raises(ValueError, match="grad: expected rank >= 1"):
        gp.gradient_penalty(torch.tensor(1.0), impl=impl)
    with pytest.raises(TypeError, match="grad: expected a floating-point"):
        gp.gradient_penalty(torch.ones(2, 3, dtype=torch.int64), impl=impl)
    for bad in (float("nan"), float("inf")):
        g = torch.ones(4, 3)
        g[2, 1] = bad
        with pytest.raises(ValueError, match="grad: contains non-finite"):
            gp.gradient_penalty(g, impl=impl)
    with pytest.raises(ValueError, match="impl"):
        gp.gradient_penalty(torch.ones(2, 3), impl="fast")


@needs_cpu_kernel
def test_kernel_errors_name_the_argument():
    op, bwd = torch.ops.gandyn.gradient_penalty, torch.ops.gandyn.gradient_penalty_backward
    with pytest.raises(RuntimeError, match="grad has an empty batch"):
        op(torch.zeros(0, 3), 1.0)
    with pytest.raises(RuntimeError, match="grad must have rank >= 1"):
        op(torch.tensor(1.0), 1.0)
    with pytest.raises(RuntimeError, match="grad must be float32 or float64"):
        op(torch.ones(2, 3, dtype=torch.float16), 1.0)
    g, gout = torch.ones(4, 3), torch.tensor(1.0)
    with pytest.raises(RuntimeError, match=r"norms must have shape \(4,\)"):
        bwd(gout, g, torch.ones(3), 1.0)
    with pytest.raises(RuntimeError, match="norms must have dtype Float"):
        bwd(gout, g, torch.ones(4, dtype=torch.float64), 1.0)
    with pytest.raises(RuntimeError, match="grad_output must be a 0-d tensor"):
        bwd(torch.ones(2), g, torch.ones(4), 1.0)
    # The Python entry point rejects a dtype the kernel lacks when the kernel is demanded.
    with pytest.raises(TypeError, match="grad: the cpu kernel takes"):
        gp.gradient_penalty(torch.ones(2, 3, dtype=torch.bfloat16), impl="kernel")


def test_reference_fallback_for_dtypes_without_kernel():
    g = torch.randn(3, 8, generator=torch.Generator().manual_seed(7)).to(torch.bfloat16)
    p, n = gp.gradient_penalty(g, 1.0, return_norms=True)  # auto: the reference for bfloat16 on CPU
    assert p.dtype == torch.bfloat16 and n.dtype == torch.float32
    p_np, n_np, _ = numpy_penalty(g.float().numpy(), 1.0)
    np.testing.assert_allclose(n.numpy(), n_np, rtol=1e-6)
    assert p.item() == pytest.approx(p_np, rel=1e-2)


def test_interpolate():
    gen = torch.Generator().manual_seed(8)
    real, fake = torch.randn(4, 2, 3, generator=gen), torch.randn(4, 2, 3, generator=gen)
    eps = torch.tensor([0.0, 1.0, 0.25, 0.5])
    x = gp.interpolate(real, fake, eps).numpy()
    e = eps.numpy()[:, None, None]
    np.testing.assert_allclose(x, e * real.numpy() + (1 - e) * fake.numpy(), rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="eps: expected shape"):
        gp.interpolate(real, fake, torch.ones(3))
    with pytest.raises(ValueError, match="real, fake: expected one shape"):
        gp.interpolate(real, fake[:2], eps)


# ---- CUDA kernel -------------------------------------------------------------------------

CUDA_SHAPES = [(1, 7), (3, 5, 3, 3), (4, 3, 64, 64), (2, 1 << 20), (3000, 17), (16, 4096)]


@pytest.mark.cuda
@pytest.mark.parametrize("shape", CUDA_SHAPES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_kernel_matches_float64_reference(shape, dtype):
    g64 = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    if dtype == torch.float16:  # keep (‖g‖ − 1)² of a 2^20-entry row (about 1e6) below float16's 65504
        g64 = g64 * 1e-2
    g = g64.to(dtype).cuda().requires_grad_(True)
    p, n = gp.gradient_penalty(g, 1.0, return_norms=True, impl="kernel")
    p_np, n_np, d_np = numpy_penalty(g.detach().double().cpu().numpy(), 1.0)
    rtol = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    np.testing.assert_allclose(n.detach().cpu().double().numpy(), n_np, rtol=max(rtol, 1e-6) if dtype != torch.float64
                               else rtol)
    assert p.item() == pytest.approx(p_np, rel=max(rtol, 1e-5) if dtype != torch.float64 else rtol)
    (d,) = torch.autograd.grad(p, g)
    np.testing.assert_allclose(d.double().cpu().numpy(), d_np, rtol=rtol, atol=rtol * np.abs(d_np).max())


@pytest.mark.cuda
def test_cuda_gradgradcheck_opcheck_and_non_contiguous():
    g = torch.randn(4, 3, 2, 2, dtype=torch.float64, device="cuda", requires_grad=True)
    f = lambda x: torch.ops.gandyn.gradient_penalty(x, 1.0)  # noqa: E731
    assert torch.autograd.gradcheck(f, (g,))
    assert torch.autograd.gradgradcheck(f, (g,))
    torch.library.opcheck(torch.ops.gandyn.gradient_penalty.default, (g, 1.0))
    api = lambda x: gp.gradient_penalty(x, 1.0, return_norms=True, impl="kernel")  # noqa: E731
    assert torch.autograd.gradgradcheck(api, (g,), check_fwd_over_rev=True)
    view = torch.randn(6, 8, 5, device="cuda").transpose(1, 2)
    assert gp.gradient_penalty(view, impl="kernel").item() == pytest.approx(
        gp.gradient_penalty(view, impl="reference").item(), rel=1e-5)
