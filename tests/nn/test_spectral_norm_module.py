"""gandyn.nn.spectral_norm against torch.nn.utils.parametrizations.spectral_norm applied to
each layer: the same buffers at creation, outputs, gradients and buffer updates over training
steps (train and eval), state_dicts that load both ways, WGAN-GP double backward, and a
discriminator run twice in one step."""
import copy
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from gandyn.nn.spectral_norm import DEFAULT_LAYER_TYPES, spectral_norm
from gandyn.ops import spectral_norm as sn_ops

DT = torch.float64
TOL = dict(rtol=1e-10, atol=1e-12)


class Scale(nn.Module):
    """A layer with a 1-D weight (torch normalizes it exactly: W / ||W||, no buffers)."""

    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(n) + 0.5)

    def forward(self, x):
        return x * self.weight.view(1, -1, 1, 1)


LAYER_TYPES = DEFAULT_LAYER_TYPES + (Scale,)


@pytest.fixture(params=["kernel", "reference"])
def body(request, monkeypatch):
    """Run a test with the compiled ops (when built) and again with the pure-PyTorch references."""
    if request.param == "reference":
        monkeypatch.setattr(sn_ops, "_use_kernel", lambda weights: False)
    elif not sn_ops._use_kernel([torch.zeros(1, 1)]):
        pytest.skip("extension gandyn._C not built")
    return request.param


def make_discriminator(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.LeakyReLU(0.1),
        Scale(4),
        nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), nn.LeakyReLU(0.1),  # dim = 1
        nn.Conv2d(3, 4, 4, stride=2, padding=1), nn.LeakyReLU(0.1),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 1),
    ).to(DT)


def torch_sn(module):
    """torch's parametrization on each layer, in named_modules order (as ours)."""
    for m in module.modules():
        if isinstance(m, LAYER_TYPES):
            torch_spectral_norm(m)
    return module


def pair(seed=0, same_buffers=True):
    """(torch's SN discriminator, ours) from one initial network, buffers copied over."""
    base = make_discriminator(seed)
    ref = torch_sn(copy.deepcopy(base))
    ours = spectral_norm(copy.deepcopy(base), layer_types=LAYER_TYPES)
    if same_buffers:
        ours.load_state_dict(ref.state_dict())
    return ref, ours


def assert_same_state(ref, ours):
    a, b = ref.state_dict(), ours.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], **TOL, msg=k)


def batch(seed, n=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, 4, 4, dtype=DT, generator=g)


def test_creation_draws_the_same_buffers_as_torch():
    # Same seed, same random draws in the same order, 15 warm-up steps plus the one of
    # register_parametrization's consistency check: the very buffers torch makes.
    base = make_discriminator()
    torch.manual_seed(123)
    ref = torch_sn(copy.deepcopy(base))
    torch.manual_seed(123)
    ours = spectral_norm(copy.deepcopy(base), layer_types=LAYER_TYPES)
    assert_same_state(ref, ours)


def test_state_dict_keys_are_torchs_and_load_both_ways():
    ref, ours = pair(same_buffers=False)
    keys = set(ref.state_dict())
    assert keys == set(ours.state_dict())
    assert {"0.parametrizations.weight.original", "0.parametrizations.weight.0._u",
            "0.parametrizations.weight.0._v", "2.parametrizations.weight.original",
            "3.parametrizations.weight.0._v"} <= keys
    assert not any(k.startswith("2.parametrizations.weight.0.") for k in keys)  # 1-D: no buffers
    # ConvTranspose2d(4, 3, 4): weight (4, 3, 4, 4) read with dim = 1: u has 3 entries, v 4*4*4.
    assert ours.state_dict()["3.parametrizations.weight.0._u"].shape == (3,)
    assert ours.state_dict()["3.parametrizations.weight.0._v"].shape == (64,)
    x = batch(1)
    ours.load_state_dict(ref.state_dict())
    ref.eval(), ours.eval()
    torch.testing.assert_close(ours(x), ref(x), **TOL)
    # And back: a fresh torch-SN network loads ours.
    other = torch_sn(make_discriminator(seed=5)).eval()
    other.load_state_dict(ours.state_dict())
    torch.testing.assert_close(other(x), ours(x), **TOL)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_outputs_gradients_and_buffers_match_torch_over_steps(mode, body):
    ref, ours = pair()
    getattr(ref, mode)(), getattr(ours, mode)()
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.05)
    opt_ours = torch.optim.SGD(ours.parameters(), lr=0.05)
    before = copy.deepcopy(ours.state_dict())
    for step in range(4):
        x = batch(step)
        out_ref, out_ours = ref(x), ours(x)
        torch.testing.assert_close(out_ours, out_ref, **TOL)
        for model, out, opt in ((ref, out_ref, opt_ref), (ours, out_ours, opt_ours)):
            opt.zero_grad()
            out.square().mean().backward()
            opt.step()
        for p, q in zip(ref.parameters(), ours.parameters()):
            torch.testing.assert_close(q.grad, p.grad, **TOL)
        assert_same_state(ref, ours)
    after = ours.state_dict()
    buffers_moved = [not torch.equal(after[k], before[k]) for k in after
                     if k.endswith(("_u", "_v")) and after[k].numel() > 1]  # a 1-entry u is always 1
    assert all(buffers_moved) if mode == "train" else not any(buffers_moved)


def test_weights_are_spectrally_normalized():
    # After many training forwards on fixed weights u, v converge: ||W_sn||_2 = 1 per layer.
    _, ours = pair()
    x = batch(0)
    with torch.no_grad():
        for _ in range(120):
            ours(x)
    ours.eval()
    for m in ours.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            assert torch.linalg.matrix_norm(m.weight.flatten(1), 2).item() == pytest.approx(1.0, rel=1e-8)
        if isinstance(m, nn.ConvTranspose2d):
            assert torch.linalg.matrix_norm(m.weight.movedim(1, 0).flatten(1), 2).item() == pytest.approx(1.0, rel=1e-8)
        if isinstance(m, Scale):
            assert m.weight.norm().item() == pytest.approx(1.0, rel=1e-12)


def test_one_op_call_per_forward_for_all_layers():
    _, ours = pair()
    with mock.patch.object(sn_ops, "normalize", wraps=sn_ops.normalize) as norm, \
            mock.patch.object(sn_ops, "power_iteration", wraps=sn_ops.power_iteration) as power:
        ours(batch(0))
        assert norm.call_count == 1 and power.call_count == 1
        assert len(norm.call_args.args[0]) == 4  # every layer with a matrix weight, in one call
    # The cache lives for one forward only: afterwards a layer recomputes from its weight.
    layer = ours[0]
    with torch.no_grad():
        layer.parametrizations.weight.original.mul_(2.0)
    ours.eval()
    torch.testing.assert_close(layer.weight, layer.parametrizations.weight.original
                               / torch.dot(layer.parametrizations.weight[0]._u,
                                           layer.parametrizations.weight.original.flatten(1)
                                           @ layer.parametrizations.weight[0]._v), **TOL)


def test_discriminator_run_twice_in_one_step(body):
    # D(real) and D(fake), one backward: torch's clone of u, v makes this work; ours saves the
    # fresh u, v of each forward. Both: same loss, gradients and twice-updated buffers.
    ref, ours = pair()
    real, fake = batch(0), batch(1)
    losses = []
    for model in (ref, ours):
        loss = F.softplus(-model(real)).mean() + F.softplus(model(fake)).mean()
        loss.backward()
        losses.append(loss)
    torch.testing.assert_close(losses[1], losses[0], **TOL)
    for p, q in zip(ref.parameters(), ours.parameters()):
        torch.testing.assert_close(q.grad, p.grad, **TOL)
    assert_same_state(ref, ours)


def test_wgan_gp_double_backward_matches_torch(body):
    ref, ours = pair()
    real, fake = batch(0), batch(1)
    alpha = torch.rand(3, 1, 1, 1, dtype=DT, generator=torch.Generator().manual_seed(2))
    grads = []
    for model in (ref, ours):
        x_hat = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (g,) = torch.autograd.grad(model(x_hat).sum(), x_hat, create_graph=True)
        penalty = 10.0 * (g.flatten(1).norm(dim=1) - 1).square().mean()
        loss = model(fake).mean() - model(real).mean() + penalty
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, **TOL)
    assert_same_state(ref, ours)


def test_gradient_of_gradient_through_the_weights():
    # Differentiating the weight gradient again (consensus optimization, SGA) needs the
    # normalization's backward to be differentiable: compare the Hessian-vector product.
    ref, ours = pair()
    x = batch(0)
    hvps = []
    for model in (ref, ours):
        params = list(model.parameters())
        gs = torch.autograd.grad(model(x).square().mean(), params, create_graph=True)
        vec = [torch.ones_like(p) for p in params]
        hvps.append(torch.autograd.grad(sum((g * v).sum() for g, v in zip(gs, vec)), params))
    for a, b in zip(*hvps):
        torch.testing.assert_close(b, a, **TOL)


def test_direct_weight_access_matches_torch():
    # Outside the top module's forward a layer normalizes on its own, as torch's does
    # (in training, each access is one power-iteration step).
    ref, ours = pair()
    for _ in range(2):
        torch.testing.assert_close(ours[3].weight, ref[3].weight, **TOL)
        torch.testing.assert_close(ours[2].weight, ref[2].weight, **TOL)
    assert_same_state(ref, ours)


def test_deepcopy_is_independent():
    # GAN code deep-copies networks (EMA, snapshots): the copy's hooks must drive the copy's layers.
    ref, ours = pair()
    twin = copy.deepcopy(ours)
    before = copy.deepcopy(ours.state_dict())
    x = batch(0)
    torch.testing.assert_close(twin(x), ref(x), **TOL)
    assert_same_state(ref, twin)
    for k, v in ours.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_float32_matches_torch():
    base = make_discriminator().float()
    ref = torch_sn(copy.deepcopy(base))
    ours = spectral_norm(copy.deepcopy(base), layer_types=LAYER_TYPES)
    ours.load_state_dict(ref.state_dict())
    x = batch(0).float()
    for _ in range(3):
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)
    a, b = ref.state_dict(), ours.state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_module_tracks_torch_in_float64(dtype):
    # A half-precision discriminator (buffers in its dtype, computed in float32) against
    # torch's parametrization of the same values in float64, over three training steps.
    base = make_discriminator().to(dtype)
    ref = torch_sn(copy.deepcopy(base).double())
    ours = spectral_norm(copy.deepcopy(base), layer_types=LAYER_TYPES)
    ours.load_state_dict({k: v.to(dtype) for k, v in ref.state_dict().items()})
    x = batch(0).to(dtype)
    tol = dict(rtol=8 * torch.finfo(dtype).eps, atol=8 * torch.finfo(dtype).eps)
    for _ in range(3):
        out = ours(x)
        assert out.dtype == dtype
        torch.testing.assert_close(out.double(), ref(x.double()), **tol)
    for k, v in ref.state_dict().items():
        assert ours.state_dict()[k].dtype == dtype
        torch.testing.assert_close(ours.state_dict()[k].double(), v, **tol, msg=k)


def test_errors():
    with pytest.raises(ValueError, match="has no submodule of types"):
        spectral_norm(nn.Sequential(nn.ReLU()))
    layer = nn.Linear(3, 2)
    torch_spectral_norm(layer)
    with pytest.raises(ValueError, match="already parametrized"):
        spectral_norm(nn.Sequential(layer))
    with pytest.raises(ValueError, match="n_power_iterations must be positive"):
        spectral_norm(nn.Linear(3, 2), n_power_iterations=0)
    assert parametrize.is_parametrized(spectral_norm(nn.Linear(3, 2)), "weight")
