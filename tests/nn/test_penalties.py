"""gandyn.nn.gradient_penalty: closed forms for linear and quadratic discriminators, the lazy
regularization schedule, and finite differences w.r.t. D's parameters."""
import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

from gandyn import _ext
from gandyn.nn import gradient_penalty  # the public entry point (gandyn.nn.penalties)

IMPLS = ["reference", pytest.param("kernel", marks=pytest.mark.skipif(
    not _ext.has_kernel("cpu"), reason="extension gandyn._C not built"))]


class LinearD(nn.Module):
    """D(x) = <w, x> + b over all non-batch dims: ∇ₓD = w everywhere."""

    def __init__(self, shape):
        super().__init__()
        self.w = nn.Parameter(torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b


class QuadraticD(nn.Module):
    """D(x) = a/2 ‖x‖²: ∇ₓD = a·x, so ‖∇D(x_i)‖ = |a|·‖x_i‖."""

    def __init__(self, a):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))

    def forward(self, x):
        return self.a / 2 * x.flatten(1).pow(2).sum(1)


def small_conv_d():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Softplus(), nn.Flatten(),
                         nn.Linear(3 * 4 * 4, 1)).double()


def param_grads(loss, D):
    # The last bias does not enter ∇ₓD: its gradient is 0 (materialized as zeros).
    return torch.autograd.grad(loss, list(D.parameters()), allow_unused=True, materialize_grads=True)


def batch(seed, shape=(5, 2, 4, 4)):
    return torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("impl", IMPLS)
def test_linear_d_closed_forms(impl):
    D = LinearD((2, 4, 4))
    real, fake = batch(2), batch(3)
    w2 = D.w.detach().pow(2).sum().item()  # ‖w‖² over C, H, W together
    r1 = gradient_penalty(D, real, None, "r1", weight=4.0, impl=impl)
    r2 = gradient_penalty(D, None, fake, "r2", weight=4.0, impl=impl)
    gp = gradient_penalty(D, real, fake, "wgan-gp", weight=10.0, impl=impl)
    gp_t = gradient_penalty(D, real, fake, "wgan-gp", target=2.0, weight=10.0, impl=impl)
    assert r1.item() == pytest.approx(4.0 / 2 * w2, rel=1e-12)
    assert r2.item() == pytest.approx(4.0 / 2 * w2, rel=1e-12)
    assert gp.item() == pytest.approx(10.0 * (math.sqrt(w2) - 1) ** 2, rel=1e-12)
    assert gp_t.item() == pytest.approx(10.0 * (math.sqrt(w2) - 2) ** 2, rel=1e-12)
    # d R1 / d w = γ w; b does not enter ∇ₓD.
    dw, db = torch.autograd.grad(r1, [D.w, D.b], allow_unused=True)
    torch.testing.assert_close(dw, 4.0 * D.w.detach(), rtol=1e-12, atol=1e-12)
    assert db is None or db.abs().max().item() == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_quadratic_d_per_sample_norms(impl):
    a = 1.5
    D = QuadraticD(a)
    real, fake = batch(4), batch(5)
    sq = real.flatten(1).pow(2).sum(1)
    r1 = gradient_penalty(D, real, fake, "r1", weight=2.0, impl=impl)
    assert r1.item() == pytest.approx((2.0 / 2 * a ** 2 * sq).mean().item(), rel=1e-12)
    # WGAN-GP at x̂ = εx + (1−ε)x̃ with ε drawn from the same generator state.
    eps = torch.rand(5, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    x_hat = eps[:, None, None, None] * real + (1 - eps[:, None, None, None]) * fake
    expected = 10.0 * ((a * x_hat.flatten(1).norm(dim=1) - 1) ** 2).mean().item()
    gp = gradient_penalty(D, real, fake, "wgan-gp", generator=torch.Generator().manual_seed(6), impl=impl)
    assert gp.item() == pytest.approx(expected, rel=1e-12)


def test_samples_are_constants():
    D = LinearD((2, 4, 4))
    real = batch(7).requires_grad_(True)
    r1 = gradient_penalty(D, real, None, "r1")
    r1.backward()
    assert real.grad is None and D.w.grad is not None


@pytest.mark.parametrize("kind", ["r1", "wgan-gp"])
def test_lazy_regularization_schedule(kind):
    D = small_conv_d()
    real, fake, k = batch(8), batch(9), 3
    eager = gradient_penalty(D, real, fake, kind, generator=torch.Generator().manual_seed(0))
    eager_grad = param_grads(eager, D)
    for step in range(7):
        lazy = gradient_penalty(D, real, fake, kind, step=step, every=k, generator=torch.Generator().manual_seed(0))
        if step % k:
            assert lazy.item() == 0.0 and not lazy.requires_grad
        else:
            assert lazy.item() == pytest.approx(k * eager.item(), rel=1e-12)
            for g_lazy, g_eager in zip(param_grads(lazy, D), eager_grad):
                torch.testing.assert_close(g_lazy, k * g_eager, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("kind", ["r1", "r2", "wgan-gp"])
def test_gradient_wrt_parameters_matches_finite_differences(impl, kind):
    D = small_conv_d()
    names = [n for n, _ in D.named_parameters()]
    shapes = [p.shape for p in D.parameters()]
    sizes = [p.numel() for p in D.parameters()]
    real, fake = batch(10, (3, 2, 4, 4)), batch(11, (3, 2, 4, 4))

    def penalty_of(theta):
        params = {n: t.reshape(s) for n, t, s in zip(names, theta.split(sizes), shapes)}
        Dθ = lambda x: functional_call(D, params, (x,))  # noqa: E731
        return gradient_penalty(Dθ, real, fake, kind, generator=torch.Generator().manual_seed(12), impl=impl)

    theta = torch.cat([p.detach().flatten() for p in D.parameters()]).requires_grad_(True)
    # fast_mode: finite differences along random directions of θ (cheap for 106 parameters).
    assert torch.autograd.gradcheck(penalty_of, (theta,), eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


@pytest.mark.parametrize("impl", IMPLS)
def test_second_derivative_wrt_parameters(impl):
    # Consensus and SGA differentiate ∇θ(penalty) again: check it by finite differences too.
    D = LinearD((3,))
    real, fake = batch(13, (4, 3)), batch(14, (4, 3))

    def penalty_of(w):
        return gradient_penalty(lambda x: (x * w).sum(1), real, fake, "wgan-gp",
                                generator=torch.Generator().manual_seed(15), impl=impl)

    w = D.w.detach().clone().requires_grad_(True)
    assert torch.autograd.gradgradcheck(penalty_of, (w,))


def test_kernel_and_reference_agree_on_a_conv_d():
    if not _ext.has_kernel("cpu"):
        pytest.skip("extension gandyn._C not built")
    D = small_conv_d()
    real, fake = batch(16).float(), batch(17).float()
    D = D.float()
    ours = gradient_penalty(D, real, fake, "wgan-gp", generator=torch.Generator().manual_seed(1), impl="kernel")
    ref = gradient_penalty(D, real, fake, "wgan-gp", generator=torch.Generator().manual_seed(1), impl="reference")
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    for a, b in zip(param_grads(ours, D), param_grads(ref, D)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_errors_name_the_argument():
    D = LinearD((3,))
    x = batch(18, (4, 3))
    with pytest.raises(ValueError, match="kind: expected one of"):
        gradient_penalty(D, x, x, "r3")
    with pytest.raises(ValueError, match="every: expected an integer >= 1"):
        gradient_penalty(D, x, x, "r1", every=0)
    with pytest.raises(ValueError, match="step: expected an integer >= 0"):
        gradient_penalty(D, x, x, "r1", step=-1)
    with pytest.raises(TypeError, match="real: expected a Tensor"):
        gradient_penalty(D, None, x, "r1")
    with pytest.raises(TypeError, match="fake: expected a Tensor"):
        gradient_penalty(D, x, None, "wgan-gp")
    with pytest.raises(ValueError, match="real, fake: expected one shape"):
        gradient_penalty(D, x, x[:2], "wgan-gp")
    with pytest.raises(ValueError, match="real: expected a non-empty batch"):
        gradient_penalty(D, x[:0], None, "r1")
    with pytest.raises(ValueError, match="D: expected one output per sample"):
        gradient_penalty(lambda v: v * 2, x, None, "r1")
    nan = x.clone()
    nan[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        gradient_penalty(QuadraticD(1.0), nan, None, "r1")  # ∇ₓD = x holds the NaN
