"""PacGAN packing, maxout, conditional batch norm, the projection discriminator and the label
dependence of the conditional generators, each against the formula computed by hand."""
import pytest
import torch
import torch.nn.functional as F

from gandyn.nn.models import (ConditionalBatchNorm2d, ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                              ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                              ConditionalSNGANResNetGenerator, Maxout, SNGANProjectionDiscriminator,
                              pacgan_discriminator, pacgan_generator)


def test_pacgan_sizes():
    G, D = pacgan_generator(), pacgan_discriminator(packing=3)
    linears = [m for m in G.net if isinstance(m, torch.nn.Linear)]
    assert G.latent_dim == 2 and [(m.in_features, m.out_features) for m in linears] == [
        (2, 400), (400, 400), (400, 400), (400, 400), (400, 2)]
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in G.net) == 4
    maxouts = [m for m in D.net if isinstance(m, Maxout)]
    assert [(m.linear.in_features, m.out_features, m.pieces) for m in maxouts] == [(6, 200, 5), (200, 200, 5),
                                                                                     (200, 200, 5)]


def test_packing_equals_the_unpacked_network_on_packs():
    torch.manual_seed(0)
    m, B = 3, 12
    D = pacgan_discriminator(packing=m)
    x = torch.randn(B, 2)
    out = D(x)
    packs = x.reshape(B // m, 2 * m)  # rows 0-2 form pack 0, ...
    assert torch.equal(packs[1], torch.cat([x[3], x[4], x[5]]))
    logits = D.net(packs).squeeze(-1)
    torch.testing.assert_close(out, logits.repeat_interleave(m))
    # The per-sample loss average is PacGAN's per-pack average.
    torch.testing.assert_close(F.softplus(-out).mean(), F.softplus(-logits).mean())
    with pytest.raises(ValueError, match="divisible by 3.*10"):
        D(torch.randn(10, 2))


def test_maxout_by_hand():
    torch.manual_seed(0)
    layer = Maxout(4, 3, 5)
    x = torch.randn(7, 4)
    full = x @ layer.linear.weight.T + layer.linear.bias  # (7, 15): unit j has pieces 5j .. 5j+4
    expected = torch.stack([full[:, 5 * j:5 * j + 5].max(1).values for j in range(3)], 1)
    torch.testing.assert_close(layer(x), expected)


def test_conditional_batch_norm_by_hand():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(4, num_classes=3)
    assert torch.equal(cbn.gamma, torch.ones(3, 4)) and torch.equal(cbn.beta, torch.zeros(3, 4))
    with torch.no_grad():
        cbn.gamma.normal_()
        cbn.beta.normal_()
    x = torch.randn(8, 4, 5, 5) * 3 + 1
    y = torch.tensor([0, 2, 1, 1, 0, 2, 2, 0])
    g, b = cbn.gamma[y][:, :, None, None], cbn.beta[y][:, :, None, None]
    expected = F.batch_norm(x, None, None, training=True, eps=1e-5) * g + b
    torch.testing.assert_close(cbn(x, y), expected)
    for _ in range(40):
        cbn(x, y)
    cbn.eval()
    mean, var = cbn.bn.running_mean, cbn.bn.running_var
    assert (mean - x.mean((0, 2, 3))).abs().max() < 0.05  # running stats were updated in training
    expected = (x - mean[None, :, None, None]) / (var[None, :, None, None] + 1e-5).sqrt() * g + b
    torch.testing.assert_close(cbn(x, y), expected)
    with pytest.raises(ValueError, match="int64"):
        cbn(x, y.float())


def test_projection_discriminator_by_hand():
    torch.manual_seed(0)
    D = SNGANProjectionDiscriminator(num_classes=5, channels=1, size=16, width=8)
    x, y = torch.randn(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    D(x, y)  # a training forward: one power iteration
    D.eval()  # fixed u, v: the submodules called by hand use the same normalized weights
    with torch.no_grad():
        out = D(x, y)
        h = D.phi(x)
        assert h.shape == (6, 8)
        expected = D.psi(h).squeeze(1) + (D.embed(y) * h).sum(1)
        torch.testing.assert_close(out, expected)
        assert 1 - 1e-4 < torch.linalg.matrix_norm(D.embed.weight, 2) < 1.05  # SN on the embedding
        other = D(x, (y + 1) % 5)
    assert (other - out).abs().min() > 1e-6  # every sample's logit depends on its label


CONDITIONAL_GENERATORS = [
    ("mlp", lambda: ConditionalMLPGenerator(4, latent_dim=3, hidden=8)),
    ("dcgan", lambda: ConditionalDCGANGenerator(4, latent_dim=8, channels=1, size=16, width=4)),
    ("sngan-cbn", lambda: ConditionalSNGANResNetGenerator(4, latent_dim=8, channels=1, size=16, width=8)),
]


@pytest.mark.parametrize("name,build", CONDITIONAL_GENERATORS, ids=[g[0] for g in CONDITIONAL_GENERATORS])
def test_conditional_generators_depend_on_labels(name, build):
    torch.manual_seed(0)
    G = build()
    if name == "sngan-cbn":  # make the per-class scales differ (they start at gamma = 1, beta = 0)
        with torch.no_grad():
            for m in G.modules():
                if isinstance(m, ConditionalBatchNorm2d):
                    m.gamma.normal_(1, 0.5), m.beta.normal_(0, 0.5)
    z = torch.randn(4, G.latent_dim)
    zeros, ones = torch.zeros(4, dtype=torch.int64), torch.ones(4, dtype=torch.int64)
    for mode in (G.train, G.eval):
        mode()
        a, b = G(z, zeros), G(z, ones)
        assert a.shape == b.shape == (4, *G.out_shape)
        assert (a - b).flatten(1).abs().amax(1).min() > 1e-4  # same z, other label: other sample
        torch.testing.assert_close(G(z, zeros), a)  # deterministic given (z, y)


def test_conditional_discriminators_see_labels():
    torch.manual_seed(0)
    D = ConditionalMLPDiscriminator(3, in_dim=2, hidden=8)
    x = torch.randn(5, 2)
    y = torch.tensor([0, 1, 2, 0, 1])
    # The one-hot concatenation by hand.
    torch.testing.assert_close(D(x, y), D.net(torch.cat([x, F.one_hot(y, 3).float()], 1)))
    D = ConditionalDCGANDiscriminator(3, channels=1, size=8, width=4)
    x = torch.randn(5, 1, 8, 8)
    maps = F.one_hot(y, 3).float()[:, :, None, None].expand(5, 3, 8, 8)
    torch.testing.assert_close(D(x, y), D.net(torch.cat([x, maps], 1)))
    assert D.net.main[0].in_channels == 4
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        D(x, y[:4])
