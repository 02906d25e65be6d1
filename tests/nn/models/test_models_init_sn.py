"""init_weights statistics (with and without spectral normalization), the spectral norm of every
layer of the SN discriminators, and double backward (gradient penalties) through every D."""
import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from gandyn.nn import spectral_norm
from gandyn.nn.models import (MODELS, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, SNGANCNNDiscriminator,
                              SNGANProjectionDiscriminator, SNGANResNetDiscriminator, SNGANResNetGenerator,
                              init_weights, make_models)
from gandyn.nn.models.conditional import ConditionalDCGANDiscriminator, ConditionalMLPDiscriminator

Z = 6  # standard errors allowed in the statistical checks


def check_normal(w, mean, std):
    """w's entries look like N(mean, std^2): the sample mean and std within Z standard errors."""
    n = w.numel()
    assert abs(w.mean().item() - mean) < Z * std / math.sqrt(n)
    assert abs(w.std().item() / std - 1) < Z / math.sqrt(2 * n)


def sigma(w):
    """Spectral norm of a weight read as torch's SN reads it: (out, -1)."""
    return torch.linalg.matrix_norm(w.detach().flatten(1), 2).item()


def sn_layers(model):
    return [m for m in model.modules() if parametrize.is_parametrized(m, "weight")]


def test_dcgan_init_after_spectral_norm():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.BatchNorm1d(128), nn.ReLU(), nn.Linear(128, 256),
                        nn.Unflatten(1, (16, 4, 4)), nn.Conv2d(16, 64, 3))
    init_weights(spectral_norm(net), "dcgan")
    layers = sn_layers(net)
    assert len(layers) == 3
    for layer in layers:
        w = layer.parametrizations.weight.original
        check_normal(w, 0.0, 0.02)  # the raw weights: n = 8192, 32768, 9216
        assert torch.count_nonzero(layer.bias) == 0
        assert 1 - 1e-4 < sigma(layer.weight) < 1.05  # u, v refreshed for the new weights
    check_normal(net[1].weight, 1.0, 0.02)  # BN gamma N(1, 0.02), n = 128
    assert torch.count_nonzero(net[1].bias) == 0
    net(torch.randn(8, 64)).sum().backward()  # still a working SN network
    for layer in layers:
        assert 1 - 1e-4 < sigma(layer.weight) < 1.05


def test_init_with_torch_parametrization_refreshes_it_too():
    torch.manual_seed(0)
    lin = torch_spectral_norm(nn.Linear(100, 200))
    init_weights(lin, "dcgan")
    check_normal(lin.parametrizations.weight.original, 0.0, 0.02)
    assert 1 - 1e-4 < sigma(lin.weight) < 1.05


def test_xavier_gains_of_the_resnets():
    torch.manual_seed(0)
    G = SNGANResNetGenerator(latent_dim=16, channels=1, size=16, width=16)  # xavier by default
    block = G.blocks[0]

    def check_uniform(w, gain):
        fan_in, fan_out = nn.init._calculate_fan_in_and_fan_out(w)
        bound = gain * math.sqrt(6 / (fan_in + fan_out))
        n = w.numel()
        assert w.abs().max() <= bound
        # uniform(-a, a): std a/sqrt(3); the sample std's relative s.e. is sqrt(0.2/n)
        assert abs(w.std().item() / (bound / math.sqrt(3)) - 1) < Z * math.sqrt(0.2 / n)

    check_uniform(block.c1.weight, math.sqrt(2))  # residual 3x3: 16*16*9 entries
    check_uniform(block.c2.weight, math.sqrt(2))
    check_uniform(block.c_sc.weight, 1.0)  # 1x1 shortcut
    check_uniform(G.l1.weight, 1.0)
    assert torch.count_nonzero(block.c1.bias) == 0
    # The SN discriminator: initialized before SN, raw weights carry the same gains.
    D = SNGANResNetDiscriminator(channels=1, size=16, width=16)
    check_uniform(D.phi.blocks[1].c1.parametrizations.weight.original, math.sqrt(2))
    check_uniform(D.phi.blocks[1].c_sc.parametrizations.weight.original, 1.0)


def test_model_init_and_default_scheme():
    torch.manual_seed(0)
    G = DCGANGenerator(latent_dim=64, channels=1, size=16, width=32)
    check_normal(G.main[0].weight, 0.0, 0.02)  # 64 * 64 * 16 entries
    D = DCGANDiscriminator(channels=3, size=32, width=32, batch_norm=False, spectral_norm=True)
    check_normal(D.main[2].parametrizations.weight.original, 0.0, 0.02)
    before = {k: v.clone() for k, v in D.state_dict().items()}
    init_weights(D, "default")
    assert all(torch.equal(before[k], v) for k, v in D.state_dict().items())
    with pytest.raises(ValueError, match="scheme"):
        init_weights(D, "kaiming")


SN_DISCRIMINATORS = [
    ("mlp", lambda: MLPDiscriminator(2, 16, depth=2, spectral_norm=True), (2,), 0),
    ("mlp-maxout", lambda: MLPDiscriminator(2, 16, depth=2, maxout=3, spectral_norm=True), (2,), 0),
    ("dcgan", lambda: DCGANDiscriminator(1, 16, 8, batch_norm=False, spectral_norm=True), (1, 16, 16), 0),
    ("sngan-cnn", lambda: SNGANCNNDiscriminator(1, 16, 16), (1, 16, 16), 0),
    ("sngan-resnet", lambda: SNGANResNetDiscriminator(1, 16, 8), (1, 16, 16), 0),
    ("cgan-mlp", lambda: ConditionalMLPDiscriminator(3, 2, 16, spectral_norm=True), (2,), 3),
    ("cgan-dcgan", lambda: ConditionalDCGANDiscriminator(3, 1, 16, 8, batch_norm=False, spectral_norm=True),
     (1, 16, 16), 3),
    ("sngan-projection", lambda: SNGANProjectionDiscriminator(3, 1, 16, 8), (1, 16, 16), 3),
]


@pytest.mark.parametrize("name,build,shape,nc", SN_DISCRIMINATORS, ids=[s[0] for s in SN_DISCRIMINATORS])
def test_spectral_norm_of_every_layer(name, build, shape, nc):
    torch.manual_seed(0)
    D = build()
    types = (nn.Linear, nn.Conv2d, nn.Embedding) if name == "sngan-projection" else (nn.Linear, nn.Conv2d)
    layers = [m for m in D.modules() if isinstance(m, types)]
    assert layers and sn_layers(D) == layers  # every Linear/Conv (and the embedding) normalized
    x = torch.randn(8, *shape)
    y = (torch.arange(8) % 3,) if nc else ()
    for _ in range(5):
        D(x, *y)
    for layer in layers:
        s = sigma(layer.weight)
        assert 1 - 1e-4 < s < 1.05, (layer, s)  # sigma-hat <= sigma: never below 1


@pytest.mark.parametrize("name", sorted(MODELS))
def test_double_backward_through_every_discriminator(name):
    torch.manual_seed(0)
    nc = 3 if MODELS[name].conditional else 0
    shape = (2,) if "mlp" in name else (1, 16, 16)
    tiny = {"mlp": dict(hidden=8), "cgan-mlp": dict(hidden=8), "pacgan-mlp": dict(packing=2),
            "sngan-cnn": dict(width=16)}.get(name, dict(width=8))
    _, D = make_models(name, shape, nc, **tiny)
    x = torch.randn(6, *shape, requires_grad=True)
    y = (torch.arange(6) % 3,) if nc else ()
    (gx,) = torch.autograd.grad(D(x, *y).sum(), x, create_graph=True)
    assert gx.shape == x.shape and torch.isfinite(gx).all() and gx.abs().sum() > 0
    penalty = (gx.flatten(1).norm(dim=1) - 1).pow(2).mean()  # WGAN-GP's
    params = [p for p in D.parameters() if p.requires_grad]
    grads = torch.autograd.grad(penalty, params, allow_unused=True)
    assert all(g is None or torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_input_gradient_and_penalty_gradient_match_finite_differences():
    torch.manual_seed(0)
    D = MLPDiscriminator(2, 6, depth=2, spectral_norm=True).double().eval()  # eval: u, v fixed
    x = torch.randn(5, 2, dtype=torch.float64, requires_grad=True)
    (gx,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
    eps = 1e-6
    with torch.no_grad():
        for j in range(2):
            e = torch.zeros_like(x)
            e[:, j] = eps
            fd = (D(x + e) - D(x - e)) / (2 * eps)  # sample i's logit depends on x_i only
            torch.testing.assert_close(gx[:, j], fd, rtol=1e-6, atol=1e-8)

    # d/dW of the penalty sum_i ||grad_x D(x_i)||^2 (double backward), a smooth D (tanh).
    D = MLPDiscriminator(2, 6, depth=2, activation="tanh", spectral_norm=True).double().eval()
    W = D.net[0].parametrizations.weight.original

    def penalty():
        (g,) = torch.autograd.grad(D(x).sum(), x, create_graph=True)
        return g.pow(2).sum()

    (gW,) = torch.autograd.grad(penalty(), W)
    for idx in [(0, 0), (3, 1), (5, 0)]:
        with torch.no_grad():
            W[idx] += eps
        up = penalty().item()
        with torch.no_grad():
            W[idx] -= 2 * eps
        down = penalty().item()
        with torch.no_grad():
            W[idx] += eps
        assert gW[idx].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8)
