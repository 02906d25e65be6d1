"""gandyn.ops.frechet: the Jacobi eigensolver (CPU kernel, CUDA kernel, reference) against
LAPACK, and the trace-sqrt op (every method, op and reference) against scipy.linalg.sqrtm
in float64, closed forms, gradcheck and opcheck."""
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn import _ext
from gandyn.ops import frechet as F

HAS_KERNEL = _ext.has_kernel("cpu") and hasattr(torch.ops.gandyn, "frechet_jacobi_eigh")
needs_kernel = pytest.mark.skipif(not HAS_KERNEL, reason="extension gandyn._C not built")
needs_cuda_kernel = pytest.mark.skipif(not (torch.cuda.is_available() and _ext.has_kernel("cuda")),
                                       reason="needs a CUDA device and the CUDA kernels")


def jacobi_bodies():
    out = [pytest.param(F.jacobi_eigh_reference, id="reference")]
    if HAS_KERNEL:
        out.append(pytest.param(torch.ops.gandyn.frechet_jacobi_eigh, id="cpu-kernel"))
    return out


def spd(batch, d, n=None, dtype=torch.float64, seed=0, scale=1.0):
    """Sample covariances (N-1) of n Gaussian samples with per-axis scales: PD when n > d."""
    g = torch.Generator().manual_seed(seed)
    n = d + 5 if n is None else n
    x = torch.randn(*batch, n, d, dtype=torch.float64, generator=g)
    x = x * torch.linspace(0.5, 2.0, d, dtype=torch.float64) * scale
    x = x - x.mean(-2, keepdim=True)
    return (x.mT @ x / (n - 1)).to(dtype)


def scipy_trace_sqrt(s1, s2):
    out = []
    for a, b in zip(s1.reshape(-1, *s1.shape[-2:]).double().numpy(), s2.reshape(-1, *s2.shape[-2:]).double().numpy()):
        out.append(np.trace(scipy.linalg.sqrtm(a @ b)).real)
    return np.array(out).reshape(s1.shape[:-2])


# ---------------------------------------------------------------- Jacobi eigensolver
@pytest.mark.parametrize("jacobi", jacobi_bodies())
@settings(deadline=None, max_examples=15)
@given(d=st.integers(1, 17), batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 2**31 - 1))
def test_jacobi_matches_lapack_eigh(jacobi, d, batch, dtype, seed):
    a = torch.randn(*batch, d, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    a = (a + a.mT).to(dtype)
    w, v = jacobi(a, 30, F._jacobi_tol(dtype, d), True)
    w_ref = torch.linalg.eigvalsh(a.double())
    scale = a.double().abs().amax().item() * d
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    assert w.shape == a.shape[:-1] and v.shape == a.shape and w.dtype == dtype
    assert (w.double() - w_ref).abs().max().item() <= tol * scale
    # V diag(w) V^T = A and V^T V = I: the vectors belong to the values, in order.
    assert ((v * w.unsqueeze(-2)) @ v.mT - a).double().abs().max().item() <= 10 * tol * scale
    eye = torch.eye(d, dtype=torch.float64)
    assert (v.double().mT @ v.double() - eye).abs().max().item() <= 10 * tol * d


@pytest.mark.parametrize("jacobi", jacobi_bodies())
def test_jacobi_values_only_and_symmetric_part(jacobi):
    a = torch.randn(2, 9, 9, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    w, v = jacobi(a, 30, 1e-14, False)  # non-symmetric input: the eigenproblem of (A + A^T)/2
    assert v.numel() == 0
    np.testing.assert_allclose(w.numpy(), torch.linalg.eigvalsh((a + a.mT) / 2).numpy(), atol=1e-12)


@needs_kernel
def test_jacobi_kernel_agrees_with_reference_rotation_by_rotation():
    # Same ordering, same rotation formula: one sweep gives the same matrix to rounding.
    a = spd((3,), 12, seed=5)
    for sweeps in (1, 2):
        wk, vk = torch.ops.gandyn.frechet_jacobi_eigh(a, sweeps, 0.0, True)
        wr, vr = F.jacobi_eigh_reference(a, sweeps, 0.0, True)
        np.testing.assert_allclose(wk.numpy(), wr.numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(vk.numpy(), vr.numpy(), atol=1e-10)


@needs_kernel
def test_jacobi_rejects_bad_arguments():
    with pytest.raises(RuntimeError, match="square"):
        torch.ops.gandyn.frechet_jacobi_eigh(torch.zeros(3, 4, dtype=torch.float64), 10, 1e-12, True)
    with pytest.raises(RuntimeError, match="max_sweeps"):
        torch.ops.gandyn.frechet_jacobi_eigh(torch.eye(3, dtype=torch.float64), 0, 1e-12, True)
    with pytest.raises(ValueError, match="A must be a batch of square matrices"):
        F.jacobi_eigh(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        F.jacobi_eigh(torch.eye(3, dtype=torch.int64))


@needs_kernel
def test_jacobi_opcheck():
    a = spd((2,), 6, seed=1)
    torch.library.opcheck(torch.ops.gandyn.frechet_jacobi_eigh.default, (a, 30, 1e-14, True))
    torch.library.opcheck(torch.ops.gandyn.frechet_jacobi_eigh.default, (a, 30, 1e-14, False))


# ---------------------------------------------------------------- trace-sqrt
def trace_sqrt_bodies():
    out = [pytest.param("reference", id="reference")]
    if HAS_KERNEL:
        out.append(pytest.param("op", id="op"))
    return out


def call(body, s1, s2, method, with_grad=False):
    if body == "op":
        return torch.ops.gandyn.frechet_trace_sqrt(s1, s2, method, F.default_max_iter(method), with_grad)
    return F.trace_sqrt_reference(s1, s2, method, None, with_grad)


@pytest.mark.parametrize("body", trace_sqrt_bodies())
@pytest.mark.parametrize("method", F.METHODS)
def test_trace_sqrt_matches_scipy_sqrtm_float64(body, method):
    s1, s2 = spd((3,), 16, seed=1), spd((3,), 16, seed=2)
    tr, diag, _, _ = call(body, s1, s2, method)
    ref = scipy_trace_sqrt(s1, s2)
    np.testing.assert_allclose(tr.numpy(), ref, rtol=1e-10)
    if method != "newton-schulz":
        assert (diag[..., 2] == 16).all()  # full rank
        assert (diag[..., 0] > 0).all()


@needs_kernel
@pytest.mark.parametrize("method", F.METHODS)
def test_op_and_reference_agree_on_every_output(method):
    s1, s2 = spd((2,), 7, seed=3), spd((2,), 7, seed=4)
    op = call("op", s1, s2, method, with_grad=True)
    ref = call("reference", s1, s2, method, with_grad=True)
    for a, b in zip(op, ref):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-11)


def test_commuting_covariances_closed_form_value_and_gradient():
    # Diagonal Σ₁ = diag(a), Σ₂ = diag(b): Tr sqrt(Σ₁Σ₂) = Σ sqrt(a b),
    # ∂/∂a_i = sqrt(b_i / a_i) / 2, ∂/∂b_i = sqrt(a_i / b_i) / 2, off-diagonal gradients 0.
    a = torch.tensor([0.5, 1.0, 2.0, 4.0], dtype=torch.float64)
    b = torch.tensor([3.0, 0.25, 1.0, 2.0], dtype=torch.float64)
    for method in F.METHODS:
        s1 = torch.diag(a).requires_grad_()
        s2 = torch.diag(b).requires_grad_()
        tr, _ = F.trace_sqrt(s1, s2, method)
        assert tr.item() == pytest.approx(torch.sqrt(a * b).sum().item(), rel=1e-12)
        g1, g2 = torch.autograd.grad(tr, (s1, s2))
        np.testing.assert_allclose(g1.numpy(), torch.diag(torch.sqrt(b / a) / 2).numpy(), atol=1e-9)
        np.testing.assert_allclose(g2.numpy(), torch.diag(torch.sqrt(a / b) / 2).numpy(), atol=1e-9)


@pytest.mark.parametrize("method", ["eigh", "jacobi"])
def test_gradcheck_both_covariances(method):
    # Both inputs enter through their symmetric parts, so gradcheck's single-entry
    # perturbations stay inside the op's domain.
    s1 = spd((2,), 5, seed=7).requires_grad_()
    s2 = spd((2,), 5, seed=8).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: F.trace_sqrt(x, y, method)[0], (s1, s2))


def test_newton_schulz_gradient_matches_eigh():
    # Newton-Schulz's float32 iterations make finite differences noisy; its analytic
    # gradient (from Cholesky factors and X = sqrt(L^T Σ₂ L)) must equal the exact
    # method's up to X's float32 error, which the Newton step removes from the trace
    # (second order) but not from X itself (first order).
    s1 = spd((2,), 9, seed=9).requires_grad_()
    s2 = spd((2,), 9, seed=10).requires_grad_()
    g_ns = torch.autograd.grad(F.trace_sqrt(s1, s2, "newton-schulz")[0].sum(), (s1, s2))
    g_ex = torch.autograd.grad(F.trace_sqrt(s1, s2, "eigh")[0].sum(), (s1, s2))
    for a, b in zip(g_ns, g_ex):
        assert (a - b).abs().max().item() <= 1e-4 * b.abs().max().item()


def test_symmetric_in_roles():
    s1, s2 = spd((2,), 8, seed=11), spd((2,), 8, seed=12)
    for method in F.METHODS:
        np.testing.assert_allclose(F.trace_sqrt(s1, s2, method)[0].numpy(),
                                   F.trace_sqrt(s2, s1, method)[0].numpy(), rtol=1e-11)


def test_singular_covariances_stay_real_and_non_negative():
    # 4 samples in d = 10: rank 3 covariances. eigvalsh of the symmetric form, clamped.
    s1, s2 = spd((3,), 10, n=4, seed=13), spd((3,), 10, n=4, seed=14)
    for method in ("eigh", "jacobi"):
        tr, diag = F.trace_sqrt(s1, s2, method)
        assert torch.isfinite(tr).all() and (tr >= 0).all()
        assert (diag[..., 2] <= 3).all()  # rank of the product <= 3
        assert (diag[..., 0] > -1e-12 * tr[..., None]).all()
    # The singular trace has a finite pseudo-inverse gradient, no NaN.
    a, b = s1.clone().requires_grad_(), s2.clone().requires_grad_()
    g = torch.autograd.grad(F.trace_sqrt(a, b)[0].sum(), (a, b))
    assert all(torch.isfinite(x).all() for x in g)


@pytest.mark.parametrize("method", F.METHODS)
def test_batch_matches_loop(method):
    s1, s2 = spd((2, 3), 6, seed=15), spd((2, 3), 6, seed=16)
    tr, _ = F.trace_sqrt(s1, s2, method)
    loop = torch.stack([F.trace_sqrt(a, b, method)[0] for a, b in zip(s1.reshape(-1, 6, 6), s2.reshape(-1, 6, 6))])
    np.testing.assert_allclose(tr.reshape(-1).numpy(), loop.numpy(), rtol=1e-12)


@pytest.mark.parametrize("method", F.METHODS)
@pytest.mark.parametrize("batch", [(0,), (2, 0)])
def test_empty_batch_gives_empty_results(method, batch):
    # A batch of no pairs is a batch: empty traces and gradients, as the reference gives.
    s1 = torch.zeros(*batch, 4, 4, dtype=torch.float64, requires_grad=True)
    s2 = torch.zeros(*batch, 4, 4, dtype=torch.float64)
    tr, diagnostics = F.trace_sqrt(s1, s2, method)
    ref, ref_diagnostics = F.trace_sqrt_reference(s1.detach(), s2, method)[:2]
    assert tr.shape == ref.shape == batch and diagnostics.shape == ref_diagnostics.shape
    (g,) = torch.autograd.grad(tr.sum(), s1)
    assert g.shape == s1.shape
    assert F.jacobi_eigh(s2)[0].shape == batch + (4,)


@settings(deadline=None, max_examples=12)
@given(d=st.integers(1, 12), batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
       dtype=st.sampled_from([torch.float32, torch.float64]), method=st.sampled_from(F.METHODS),
       seed=st.integers(0, 2**31 - 1))
def test_trace_sqrt_property_against_scipy(d, batch, dtype, method, seed):
    s1, s2 = spd(batch, d, seed=seed, dtype=dtype), spd(batch, d, seed=seed + 1, dtype=dtype)
    tr, _ = F.trace_sqrt(s1, s2, method)
    assert tr.dtype == dtype and tr.shape == batch
    rtol = 1e-9 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(tr.double().numpy(), scipy_trace_sqrt(s1, s2), rtol=rtol)


@needs_kernel
@pytest.mark.parametrize("method", F.METHODS)
def test_trace_sqrt_opcheck(method):
    s1 = spd((2,), 5, seed=17).requires_grad_()
    s2 = spd((2,), 5, seed=18).requires_grad_()
    torch.library.opcheck(torch.ops.gandyn.frechet_trace_sqrt.default, (s1, s2, method, 30, True))
    torch.library.opcheck(torch.ops.gandyn.frechet_trace_sqrt.default, (s1.detach(), s2.detach(), method, 30, False))


def test_trace_sqrt_rejects_bad_arguments():
    s = spd((), 3)
    with pytest.raises(ValueError, match="method"):
        F.trace_sqrt(s, s, "svd")
    with pytest.raises(ValueError, match="sigma2"):
        F.trace_sqrt(s, torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="one shape"):
        F.trace_sqrt(s, spd((2,), 3))
    with pytest.raises(TypeError, match="one dtype"):
        F.trace_sqrt(s, s.float())
    with pytest.raises(ValueError, match="sigma1 must be positive definite"):
        F.trace_sqrt(spd((), 6, n=3), spd((), 6), "newton-schulz")


# ---------------------------------------------------------------- CUDA
@pytest.mark.cuda
@needs_cuda_kernel
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [1, 2, 7, 64, 129])
def test_cuda_jacobi_matches_cpu(d, dtype):
    a = spd((3,), d, seed=d, dtype=dtype)
    w, v = torch.ops.gandyn.frechet_jacobi_eigh(a.cuda(), 30, F._jacobi_tol(dtype, d), True)
    tol = 1e-11 if dtype == torch.float64 else 1e-4
    scale = a.double().abs().amax().item() * d
    assert (w.cpu().double() - torch.linalg.eigvalsh(a.double())).abs().max().item() <= tol * scale
    assert ((v * w.unsqueeze(-2)) @ v.mT - a.cuda()).abs().max().item() <= 10 * tol * scale


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", F.METHODS)
def test_cuda_trace_sqrt_matches_cpu_eigh(method):
    s1, s2 = spd((4,), 32, seed=19), spd((4,), 32, seed=20)
    a, b = s1.cuda().requires_grad_(), s2.cuda().requires_grad_()
    tr, _ = F.trace_sqrt(a, b, method)
    np.testing.assert_allclose(tr.detach().cpu().numpy(), scipy_trace_sqrt(s1, s2), rtol=1e-9)
    g = torch.autograd.grad(tr.sum(), (a, b))
    x, y = s1.clone().requires_grad_(), s2.clone().requires_grad_()
    g_ref = torch.autograd.grad(F.trace_sqrt(x, y, "eigh")[0].sum(), (x, y))
    for u, r in zip(g, g_ref):
        np.testing.assert_allclose(u.cpu().numpy(), r.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("method", ["eigh", "jacobi"])
def test_sqrt_factor_path_equals_cholesky_path(method):
    # A batch holding one singular Σ₁ takes the S₁ = sqrt(Σ₁) factor for every matrix;
    # a positive-definite Σ₁ alone takes Cholesky. Value and gradient must not depend on it.
    pd, sing = spd((), 6, seed=21), spd((), 6, n=3, seed=22)
    s2 = spd((2,), 6, seed=23)
    a = torch.stack([pd, sing]).requires_grad_()
    b = s2.clone().requires_grad_()
    tr, _ = F.trace_sqrt(a, b, method)
    ga, gb = torch.autograd.grad(tr[0], (a, b))
    a0, b0 = pd.clone().requires_grad_(), s2[0].clone().requires_grad_()
    tr0, _ = F.trace_sqrt(a0, b0, method)
    ga0, gb0 = torch.autograd.grad(tr0, (a0, b0))
    assert tr[0].item() == pytest.approx(tr0.item(), rel=1e-12)
    np.testing.assert_allclose(ga[0].numpy(), ga0.numpy(), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(gb[0].numpy(), gb0.numpy(), rtol=1e-9, atol=1e-11)
