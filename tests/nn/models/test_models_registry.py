"""Registry entries on every data shape they take: output shapes and ranges, G/D attributes, the
errors for unknown names / keywords / shapes; parameter counts of the standard DCGAN and SNGAN
CNN against the layer lists written out by hand."""
import pytest
import torch

from gandyn.nn.models import (MODELS, DCGANDiscriminator, DCGANGenerator, SNGANCNNDiscriminator,
                              SNGANCNNGenerator, make_models, model_keywords)

# Tiny widths: every entry builds and runs in milliseconds.
TINY = {
    "mlp": dict(hidden=8, depth=2),
    "pacgan-mlp": dict(packing=2),
    "dcgan": dict(width=4),
    "sngan-cnn": dict(width=16),
    "sngan-resnet": dict(width=8),
    "cgan-mlp": dict(hidden=8, depth=2),
    "cgan-dcgan": dict(width=4),
    "sngan-projection": dict(width=8),
}
SHAPES = {
    "mlp": [(2,), (5,), (1,)],
    "pacgan-mlp": [(2,), (3,)],
    "dcgan": [(1, 8, 8), (1, 16, 16), (3, 32, 32), (3, 64, 64)],
    "sngan-cnn": [(1, 16, 16), (3, 24, 24), (3, 32, 32)],
    "sngan-resnet": [(1, 8, 8), (1, 16, 16), (3, 32, 32)],
    "cgan-mlp": [(2,), (4,)],
    "cgan-dcgan": [(1, 16, 16), (3, 32, 32)],
    "sngan-projection": [(1, 16, 16), (3, 32, 32)],
}
REJECTED = {
    "mlp": [(1, 16, 16), (0,), ()],
    "pacgan-mlp": [(1, 16, 16)],
    "dcgan": [(2,), (1, 12, 12), (1, 4, 4), (1, 16, 8), (1, 24, 24)],
    "sngan-cnn": [(2,), (1, 12, 12), (1, 4, 4)],
    "sngan-resnet": [(2,), (1, 20, 20)],
    "cgan-mlp": [(1, 16, 16)],
    "cgan-dcgan": [(2,), (1, 48, 48)],
    "sngan-projection": [(2,), (1, 12, 12)],
}
B = 4


def test_tables_cover_the_registry():
    assert set(MODELS) == set(TINY) == set(SHAPES) == set(REJECTED) == {
        "mlp", "pacgan-mlp", "dcgan", "sngan-cnn", "sngan-resnet", "cgan-mlp", "cgan-dcgan", "sngan-projection"}


@pytest.mark.parametrize("name,shape", [(n, s) for n in SHAPES for s in SHAPES[n]])
def test_shapes_and_ranges(name, shape):
    torch.manual_seed(0)
    nc = 3 if MODELS[name].conditional else 0
    G, D = make_models(name, shape, nc, **TINY[name])
    assert G.num_classes == D.num_classes == nc
    assert tuple(G.out_shape) == shape and isinstance(G.latent_dim, int) and G.latent_dim > 0
    z = torch.randn(B, G.latent_dim)
    y = (torch.arange(B) % 3,) if nc else ()
    x = G(z, *y)
    assert x.shape == (B, *shape) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    if len(shape) == 3:  # tanh images
        assert x.abs().max() <= 1 and x.std() > 1e-3
    logits = D(x, *y)
    assert logits.shape == (B,) and torch.isfinite(logits).all()
    # Eval mode keeps the contract too.
    G.eval(), D.eval()
    with torch.no_grad():
        assert G(z, *y).shape == (B, *shape) and D(x, *y).shape == (B,)


@pytest.mark.parametrize("name,shape", [(n, s) for n in REJECTED for s in REJECTED[n]])
def test_rejected_shapes(name, shape):
    nc = 3 if MODELS[name].conditional else 0
    with pytest.raises(ValueError, match="data_shape") as e:
        make_models(name, shape, nc, **TINY[name])
    assert str(shape) in str(e.value) and "expected" in str(e.value)


def test_unknown_name_lists_models():
    with pytest.raises(ValueError) as e:
        make_models("dcgan2", (1, 16, 16))
    assert "dcgan2" in str(e.value) and all(n in str(e.value) for n in MODELS)


def test_unknown_keywords_named_with_the_valid_ones():
    with pytest.raises(ValueError) as e:
        make_models("dcgan", (1, 16, 16), widht=8)
    msg = str(e.value)
    assert "'widht'" in msg and "width" in msg and "latent_dim" in msg and "spectral_norm" in msg
    with pytest.raises(ValueError, match="'spectral_norm'.*valid keywords"):
        make_models("dcgan", (1, 16, 16), g_args=dict(spectral_norm=True))  # a D keyword given to G
    with pytest.raises(ValueError, match="'latent_dim'"):
        make_models("mlp", (2,), d_args=dict(latent_dim=3))
    with pytest.raises(ValueError, match="'size'.*data_shape"):
        make_models("dcgan", (1, 16, 16), size=32)  # set from data_shape


def test_keyword_routing():
    G, D = make_models("dcgan", (1, 16, 16), width=4, latent_dim=7, d_args=dict(width=2, spectral_norm=True))
    assert G.latent_dim == 7 and G.main[0].out_channels == 4 * 2  # width 4: 8 channels at 4x4
    assert D.main[0].out_channels == 2 and hasattr(D.main[0], "parametrizations")
    assert set(model_keywords("dcgan")["shared"]) == {"latent_dim", "width", "init", "batch_norm", "spectral_norm"}
    G, D = MODELS["pacgan-mlp"]((2,), 0, packing=4)  # the builder itself, as in MODELS
    assert D.packing == 4 and D.net[0].linear.in_features == 8 and G.latent_dim == 2


def test_num_classes_checked():
    with pytest.raises(ValueError, match="unconditional.*cgan-mlp"):
        make_models("mlp", (2,), num_classes=10)
    with pytest.raises(ValueError, match="conditional: num_classes must be >= 1"):
        make_models("cgan-mlp", (2,))


def _count(module):
    return sum(p.numel() for p in module.parameters())


def test_dcgan_parameter_counts():
    # PyTorch examples/dcgan (64x64, nz=100, ngf=ndf=64, nc=3), no conv biases.
    # G: ConvT(100->512,4) BN(512) ConvT(512->256) BN(256) ConvT(256->128) BN(128) ConvT(128->64) BN(64) ConvT(64->3)
    g64 = (100 * 512 * 16 + 2 * 512 + 512 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128
           + 128 * 64 * 16 + 2 * 64 + 64 * 3 * 16)
    # D: Conv(3->64) Conv(64->128) BN(128) Conv(128->256) BN(256) Conv(256->512) BN(512) Conv(512->1)
    d64 = (3 * 64 * 16 + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256 + 256 * 512 * 16 + 2 * 512
           + 512 * 1 * 16)
    assert (g64, d64) == (3_576_704, 2_765_568)
    assert _count(DCGANGenerator(100, 3, 64, 64)) == g64
    assert _count(DCGANDiscriminator(3, 64, 64)) == d64
    # 32x32: one level fewer, 256 channels at 4x4.
    g32 = 100 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 3 * 16
    d32 = 3 * 64 * 16 + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256 + 256 * 1 * 16
    assert _count(DCGANGenerator(100, 3, 32, 64)) == g32
    assert _count(DCGANDiscriminator(3, 32, 64)) == d32
    # Without BN every conv of D gets a bias: + 64 + 128 + 256 + 1, minus the BN parameters.
    assert _count(DCGANDiscriminator(3, 32, 64, batch_norm=False)) == d32 - 2 * (128 + 256) + 64 + 128 + 256 + 1


def test_sngan_cnn_parameter_counts():
    # Miyato et al. 2018, Table 3 (b), CIFAR-10: convs with biases, (k*k*cin + 1) * cout each.
    d = ((3 * 3 * 3 + 1) * 64 + (4 * 4 * 64 + 1) * 64 + (3 * 3 * 64 + 1) * 128 + (4 * 4 * 128 + 1) * 128
         + (3 * 3 * 128 + 1) * 256 + (4 * 4 * 256 + 1) * 256 + (3 * 3 * 256 + 1) * 512 + (4 * 4 * 512 + 1) * 1)
    assert d == 2_935_873
    D = SNGANCNNDiscriminator(3, 32, 512)  # spectrally normalized: the raw weights are the parameters
    assert _count(D) == d
    # The chainer code's layout: 64, 128, 128, 256, 256, 512, 512.
    d_code = ((3 * 3 * 3 + 1) * 64 + (4 * 4 * 64 + 1) * 128 + (3 * 3 * 128 + 1) * 128 + (4 * 4 * 128 + 1) * 256
              + (3 * 3 * 256 + 1) * 256 + (4 * 4 * 256 + 1) * 512 + (3 * 3 * 512 + 1) * 512 + 4 * 4 * 512 + 1)
    assert _count(SNGANCNNDiscriminator(3, 32, 512, layout="code", spectral_norm=False)) == d_code
    # G: dense 128 -> 4*4*512 + BN1d, deconvs 512->256->128->64 (4x4, biases) + BN, conv 3x3 64->3.
    g = ((128 + 1) * 8192 + 2 * 8192 + (16 * 512 + 1) * 256 + 2 * 256 + (16 * 256 + 1) * 128 + 2 * 128
         + (16 * 128 + 1) * 64 + 2 * 64 + (9 * 64 + 1) * 3)
    assert _count(SNGANCNNGenerator(128, 3, 32, 512)) == g


def test_data_shape_types():
    G, _ = make_models("dcgan", torch.Size([1, 16, 16]), width=4)
    assert G.out_shape == (1, 16, 16)
    G, _ = make_models("mlp", [3], hidden=4)
    assert G.out_shape == (3,)
    with pytest.raises(ValueError, match="data_shape: expected a tuple of integers"):
        make_models("mlp", "2")
    with pytest.raises(ValueError, match="data_shape: expected a tuple of integers"):
        make_models("mlp", (2.0,))
