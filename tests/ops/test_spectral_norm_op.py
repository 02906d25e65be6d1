"""gandyn.ops.spectral_norm: every available body (pure-PyTorch reference, CPU kernel, CUDA
kernel) against torch's own power iteration (torch.nn.utils.parametrizations._SpectralNorm),
the exact spectral norm (torch.linalg.matrix_norm(W, 2)), finite differences (gradcheck,
gradgradcheck), opcheck, and input errors."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.parametrizations import _SpectralNorm

from gandyn import _ext
from gandyn.ops import spectral_norm as sn

HAS_OPS = _ext.AVAILABLE and hasattr(torch.ops.gandyn, "spectral_norm_normalize")
HAS_CPU = HAS_OPS and _ext.has_kernel("cpu")
HAS_CUDA = HAS_OPS and _ext.has_kernel("cuda") and torch.cuda.is_available()
BODIES = [
    "reference",
    pytest.param("cpu", marks=pytest.mark.skipif(not HAS_CPU, reason="extension gandyn._C not built")),
    pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not HAS_CUDA, reason="needs CUDA kernels")]),
]
KERNEL_BODIES = BODIES[1:]
EPS = 1e-12


def device_of(body: str) -> str:
    return "cuda" if body == "cuda" else "cpu"


def power_iteration(body, weights, us, vs, n, eps=EPS):
    if body == "reference":
        return sn.power_iteration_reference(weights, us, vs, n, eps)
    u, v = torch.ops.gandyn.spectral_norm_power_iteration(weights, us, vs, n, eps)
    return list(u), list(v)


def normalize(body, weights, us, vs):
    if body == "reference":
        return sn.normalize_reference(weights, us, vs)
    out, sigmas = torch.ops.gandyn.spectral_norm_normalize(weights, us, vs)
    return list(out), sigmas


def torch_power_iteration(w, u, v, n, eps=EPS):
    """torch's own code: _SpectralNorm._power_method on W.flatten(1), buffers set to (u, v)."""
    w64 = w.detach().to(torch.float64)
    m = _SpectralNorm(w64, n_power_iterations=1, dim=0, eps=eps)
    m._u.copy_(u)
    m._v.copy_(v)
    m._power_method(w64.flatten(1), n)
    return m._u, m._v


def random_layers(shapes, dtype, device, seed, noncontiguous=False):
    g = torch.Generator().manual_seed(seed)
    weights, us, vs = [], [], []
    for shape in shapes:
        w = torch.randn(shape, dtype=torch.float64, generator=g)
        if noncontiguous:
            # Same values, other strides: every other element of a twice-as-wide buffer
            # (a single element is contiguous whatever its strides).
            buf = torch.zeros(*shape[:-1], 2 * shape[-1], dtype=torch.float64)
            buf[..., ::2] = w
            w = buf[..., ::2]
            assert w.numel() == 1 or not w.is_contiguous()
        weights.append(w.to(dtype=dtype, device=device))
        us.append(F.normalize(torch.randn(shape[0], dtype=torch.float64, generator=g), dim=0).to(dtype).to(device))
        vs.append(F.normalize(torch.randn(w[0].numel(), dtype=torch.float64, generator=g), dim=0)
                  .to(dtype).to(device))
    return weights, us, vs


def tol(dtype):
    return dict(rtol=2e-4, atol=2e-5) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-12)


layer_shape = st.one_of(
    st.tuples(st.integers(1, 9), st.integers(1, 9)),                                        # Linear
    st.tuples(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),  # Conv2d
)


@pytest.mark.parametrize("body", BODIES)
@settings(deadline=None, max_examples=15)
@given(shapes=st.lists(layer_shape, min_size=1, max_size=4), n=st.integers(1, 3),
       dtype=st.sampled_from([torch.float32, torch.float64]), noncontiguous=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_power_iteration_and_normalize_match_torch(body, shapes, n, dtype, noncontiguous, seed):
    dev = device_of(body)
    weights, us, vs = random_layers(shapes, dtype, dev, seed, noncontiguous)
    u_new, v_new = power_iteration(body, weights, us, vs, n)
    out, sigmas = normalize(body, weights, u_new, v_new)
    assert sigmas.shape == (len(shapes),) and sigmas.dtype == dtype
    for i, (w, u, v) in enumerate(zip(weights, us, vs)):
        tu, tv = torch_power_iteration(w.cpu(), u.cpu().double(), v.cpu().double(), n)
        torch.testing.assert_close(u_new[i].cpu().double(), tu, **tol(dtype))
        torch.testing.assert_close(v_new[i].cpu().double(), tv, **tol(dtype))
        # torch's forward: sigma = vdot(u, W v), W / sigma, from the same (u, v).
        sigma = torch.vdot(tu, torch.mv(w.cpu().double().flatten(1), tv))
        torch.testing.assert_close(sigmas[i].cpu().double(), sigma, **tol(dtype))
        assert out[i].shape == w.shape and out[i].dtype == dtype
        torch.testing.assert_close(out[i].cpu().double(), w.cpu().double() / sigma, **tol(dtype))
    # The inputs are left alone.
    assert all(torch.equal(a, b) for a, b in zip(us, random_layers(shapes, dtype, dev, seed, noncontiguous)[1]))


@pytest.mark.parametrize("body", BODIES)
def test_sigma_converges_to_the_spectral_norm(body):
    # Matrices with a spectral gap (top singular values 3 and 1): after enough steps sigma is
    # ||W||_2 to float64 precision and W / sigma has spectral norm 1.
    dev = device_of(body)
    g = torch.Generator().manual_seed(0)
    weights = []
    for h, w in [(7, 5), (4, 12), (6, 6)]:
        q1, _ = torch.linalg.qr(torch.randn(h, h, dtype=torch.float64, generator=g))
        q2, _ = torch.linalg.qr(torch.randn(w, w, dtype=torch.float64, generator=g))
        s = torch.zeros(h, w, dtype=torch.float64)
        k = min(h, w)
        s[range(k), range(k)] = torch.tensor([3.0, 1.0] + [0.5] * (k - 2), dtype=torch.float64)
        weights.append((q1 @ s @ q2.T).to(dev))
    weights.append(torch.randn(3, 2, 2, 2, dtype=torch.float64, generator=g).to(dev))  # a conv weight, any gap
    _, us, vs = random_layers([tuple(w.shape) for w in weights], torch.float64, dev, 1)
    u, v = power_iteration(body, weights, us, vs, 200)
    out, sigmas = normalize(body, weights, u, v)
    exact = torch.stack([torch.linalg.matrix_norm(w.flatten(1), 2) for w in weights])
    torch.testing.assert_close(sigmas, exact, rtol=1e-10, atol=0)
    assert sigmas[:3].cpu().tolist() == pytest.approx([3.0, 3.0, 3.0], rel=1e-12)
    for x in out:
        assert torch.linalg.matrix_norm(x.flatten(1), 2).item() == pytest.approx(1.0, rel=1e-10)


@pytest.mark.parametrize("body", BODIES)
def test_many_layers_in_one_call(body):
    # More layers than one CUDA launch's table holds (24): the lists are processed in chunks.
    dev = device_of(body)
    shapes = [(1 + k % 5, 1 + (3 * k) % 7) for k in range(30)]
    weights, us, vs = random_layers(shapes, torch.float64, dev, 12)
    u, v = power_iteration(body, weights, us, vs, 2)
    out, sigmas = normalize(body, weights, u, v)
    ru, rv = sn.power_iteration_reference(weights, us, vs, 2)
    rout, rsig = sn.normalize_reference(weights, ru, rv)
    for a, b in zip(u + v + out + [sigmas], ru + rv + rout + [rsig]):
        torch.testing.assert_close(a, b, **tol(torch.float64))


def normalize_fn(body, us, vs):
    def f(*weights):
        out, sigmas = normalize(body, list(weights), us, vs)
        return (*out, sigmas)
    return f


@pytest.mark.parametrize("body", BODIES)
def test_gradcheck_and_gradgradcheck(body):
    dev = device_of(body)
    weights, us, vs = random_layers([(3, 4), (2, 3, 2, 2), (5, 1)], torch.float64, dev, 3)
    weights = [w.requires_grad_(True) for w in weights]
    f = normalize_fn(body, us, vs)
    assert torch.autograd.gradcheck(f, tuple(weights))
    assert torch.autograd.gradgradcheck(f, tuple(weights))


@pytest.mark.parametrize("body", BODIES)
def test_forward_mode_ad_of_the_public_api(body):
    # sn.normalize dispatches to the device's kernel: forward mode and forward-over-reverse
    # (torch.library's register_autograd gives the raw op reverse mode only).
    weights, us, vs = random_layers([(3, 4), (2, 3, 2, 2), (5, 1)], torch.float64, device_of(body), 4)
    weights = [w.requires_grad_(True) for w in weights]

    def f(*ws):
        out, sigmas = sn.normalize(list(ws), us, vs)
        return (*out, sigmas)

    assert torch.autograd.gradcheck(f, tuple(weights), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, tuple(weights), check_fwd_over_rev=True)


@pytest.mark.parametrize("body", KERNEL_BODIES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_backward_matches_reference_autograd(body, dtype):
    # The backward without create_graph runs the fused op; with create_graph the
    # differentiable formula: both must equal autograd through the reference, with a
    # gradient on sigma too, and with one layer's output unused (its gradient is None).
    dev = device_of(body)
    weights, us, vs = random_layers([(6, 5), (4, 3, 3, 3), (2, 7)], dtype, dev, 4)
    ws = [w.clone().requires_grad_(True) for w in weights]
    g = torch.Generator().manual_seed(5)
    grads = [torch.randn(w.shape, dtype=dtype, generator=g).to(dev) for w in weights]
    grad_sigma = torch.randn(3, dtype=dtype, generator=g).to(dev)
    ref_out, ref_sig = sn.normalize_reference(ws, us, vs)
    expected = torch.autograd.grad(ref_out[:2] + [ref_sig], ws, grads[:2] + [grad_sigma])
    for create_graph in (False, True):
        out, sig = normalize(body, ws, us, vs)
        got = torch.autograd.grad(out[:2] + [sig], ws, grads[:2] + [grad_sigma], create_graph=create_graph)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, **tol(dtype))


@pytest.mark.parametrize("body", KERNEL_BODIES)
def test_opcheck(body):
    dev = device_of(body)
    weights, us, vs = random_layers([(3, 4), (2, 3, 2, 2)], torch.float64, dev, 6)
    ws = [w.clone().requires_grad_(True) for w in weights]
    torch.library.opcheck(torch.ops.gandyn.spectral_norm_normalize, (ws, us, vs))
    torch.library.opcheck(torch.ops.gandyn.spectral_norm_power_iteration, (weights, us, vs, 2, EPS))
    grads = [torch.randn_like(w) for w in weights]
    sigmas = torch.tensor([1.5, 2.0], dtype=torch.float64, device=dev)
    grad_sigmas = torch.tensor([0.3, -0.7], dtype=torch.float64, device=dev)
    torch.library.opcheck(torch.ops.gandyn.spectral_norm_normalize_backward,
                          (grads, weights, us, vs, sigmas, grad_sigmas))


@pytest.mark.parametrize("body", BODIES)
def test_public_api_dispatches_and_leaves_buffers_alone(body):
    dev = device_of(body)
    weights, us, vs = random_layers([(4, 3), (3, 2, 2, 2)], torch.float64, dev, 7)
    u0 = [u.clone() for u in us]
    u1, v1 = sn.power_iteration(weights, us, vs, 2)
    u2, v2 = power_iteration(body, weights, us, vs, 2)
    assert all(torch.equal(a, b) for a, b in zip(us, u0))
    for a, b in zip(u1 + v1, u2 + v2):
        torch.testing.assert_close(a, b, **tol(torch.float64))
    out, sig = sn.normalize(weights, u1, v1)
    out2, sig2 = normalize(body, weights, u1, v1)
    torch.testing.assert_close(sig, sig2, **tol(torch.float64))


@pytest.mark.parametrize("body", KERNEL_BODIES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_layers_match_float64_to_one_rounding(body, dtype):
    # The public API computes float16/bfloat16 layers in float32 and rounds once: every output
    # is the float64 result of the same (rounded) inputs to about one unit of the last place.
    dev = device_of(body)
    weights, us, vs = random_layers([(8, 5), (4, 3, 3, 3), (6, 1)], torch.float64, dev, 12)
    low = [x.to(dtype) for x in weights], [x.to(dtype) for x in us], [x.to(dtype) for x in vs]
    exact = [[x.double() for x in xs] for xs in low]
    unit = torch.finfo(dtype).eps  # 2^-10 (float16), 2^-7 (bfloat16): twice the rounding of one result
    u, v = sn.power_iteration(*low, 2)
    ru, rv = sn.power_iteration_reference(*exact, 2)
    out, sigmas = sn.normalize(*low)
    rout, rsig = sn.normalize_reference(*exact)
    for a, b in zip(u + v + out + [sigmas], ru + rv + rout + [rsig]):
        assert a.dtype == dtype
        torch.testing.assert_close(a.double(), b, rtol=unit, atol=unit * b.abs().max().item())
    weights32 = [w.float().requires_grad_(True) for w in low[0]]
    grads = torch.autograd.grad(sum((x.double() * x.double()).sum() for x in sn.normalize(
        [w.to(dtype) for w in weights32], low[1], low[2])[0]), weights32)
    ref = torch.autograd.grad(sum((x * x).sum() for x in sn.normalize_reference(
        [w.double() for w in weights32], exact[1], exact[2])[0]), weights32)
    for a, b in zip(grads, ref):
        torch.testing.assert_close(a.double(), b.double(), rtol=4 * unit, atol=4 * unit * b.abs().max().item())


# ---------------------------------------------------------------- errors
ERRORS = (ValueError, TypeError, RuntimeError)


@pytest.mark.parametrize("body", BODIES)
def test_bad_lists_and_shapes_name_the_argument(body):
    dev = device_of(body)
    weights, us, vs = random_layers([(4, 3), (2, 5)], torch.float64, dev, 8)
    with pytest.raises(ERRORS, match=r"us must have one vector per weight"):
        normalize(body, weights, us[:1], vs)
    with pytest.raises(ERRORS, match=r"vs must have one vector per weight"):
        power_iteration(body, weights, us, vs[:1], 1)
    with pytest.raises(ERRORS, match=r"us\[1\] must have shape \(2,\)"):
        normalize(body, weights, [us[0], us[0]], vs)
    with pytest.raises(ERRORS, match=r"vs\[0\] must have shape \(3,\)"):
        power_iteration(body, weights, us, [vs[1], vs[1]], 1)
    with pytest.raises(ERRORS, match=r"weights\[1\] must have at least 2 dimensions"):
        normalize(body, [weights[0], weights[1].flatten()], us, vs)
    with pytest.raises(ERRORS, match=r"all weights must share one dtype"):
        normalize(body, [weights[0], weights[1].float()], us, vs)
    with pytest.raises(ERRORS, match=r"weights must be float32 or float64"):
        normalize(body, [w.long() for w in weights], us, vs)
    with pytest.raises(ERRORS, match=r"all weights must share one dtype"):  # the public API's float32 path
        sn.normalize([weights[0].half(), weights[1].bfloat16()], [u.half() for u in us], [v.half() for v in vs])
    with pytest.raises(ERRORS, match=r"n_power_iterations must be >= 0"):
        power_iteration(body, weights, us, vs, -1)


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_raise_naming_the_layer(body, bad):
    dev = device_of(body)
    weights, us, vs = random_layers([(4, 3), (2, 5), (3, 3)], torch.float64, dev, 9)
    weights[1][1, 2] = bad
    with pytest.raises(ERRORS, match=r"weights\[1\] contains non-finite values"):
        power_iteration(body, weights, us, vs, 1)
    with pytest.raises(ERRORS, match=r"weights\[1\] contains non-finite values"):
        normalize(body, weights, us, vs)
    weights, us, vs = random_layers([(4, 3), (2, 5), (3, 3)], torch.float64, dev, 9)
    vs[2][0] = bad
    with pytest.raises(ERRORS, match=r"vs\[2\] contains non-finite values"):
        normalize(body, weights, us, vs)


@pytest.mark.parametrize("body", BODIES)
def test_zero_sigma_raises_instead_of_nan(body):
    dev = device_of(body)
    weights, us, vs = random_layers([(4, 3), (2, 5)], torch.float64, dev, 10)
    weights[0].zero_()
    u, v = power_iteration(body, weights, us, vs, 1)  # torch's power method allows a zero W (u = v = 0)
    assert float(u[0].abs().sum()) == 0.0 and float(v[0].abs().sum()) == 0.0
    with pytest.raises(ERRORS, match=r"sigma = u\^T W v is 0 for weights\[0\]"):
        normalize(body, weights, u, v)


def test_empty_lists_are_rejected_by_the_public_api():
    # (The raw ops get the dispatcher's own "empty list of Tensors" error: no device to dispatch on.)
    with pytest.raises(ValueError, match=r"weights must be a non-empty list"):
        sn.normalize([], [], [])
    with pytest.raises(ValueError, match=r"weights must be a non-empty list"):
        sn.power_iteration([], [], [])


def test_u_requiring_grad_is_rejected():
    weights, us, vs = random_layers([(4, 3)], torch.float64, "cpu", 11)
    us[0].requires_grad_(True)
    with pytest.raises(ValueError, match=r"us\[0\] must not require grad"):
        sn.normalize(weights, us, vs)
    with pytest.raises(ValueError, match=r"us\[0\] must not require grad"):
        sn.normalize_reference(weights, us, vs)
