"""gandyn.metrics.inception: the rebuilt FID Inception equals pytorch-fid's InceptionV3([3]) on
the same (random, seeded) weights, never downloads, loads an explicit file or torch hub's cache
file and names the path when neither exists; features are (B, 2048) float64, deterministic and
batch-invariant; frechet_distance equals pytorch-fid's calculate_frechet_distance."""
import re
import warnings

import numpy as np
import pytest
import pytorch_fid.inception
import torch
from pytorch_fid.fid_score import calculate_frechet_distance

from gandyn.metrics import FeatureStats, InceptionFeatures, frechet_distance
from gandyn.metrics.inception import FID_WEIGHTS_FILE, _random_state_dict


def no_download(*args, **kwargs):
    raise AssertionError("load_state_dict_from_url must never be called")


@pytest.fixture(autouse=True)
def forbid_downloads(monkeypatch):
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)


@pytest.fixture(scope="module")
def net():
    return InceptionFeatures(random_weights=True, seed=0, batch_size=1)


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    color = torch.rand(1, 3, 16, 16, generator=g) * 2 - 1
    gray = torch.rand(1, 1, 16, 16, generator=g) * 2 - 1
    return color, gray


@pytest.fixture(scope="module")
def features(net, images):
    color, gray = images
    big = InceptionFeatures(random_weights=True, seed=0, batch_size=50)   # both images in one forward
    return big(torch.cat([color, gray.expand(-1, 3, -1, -1)]))


def test_shape_dtype_batch_invariance_and_determinism(net, images, features):
    color, gray = images
    assert features.shape == (2, 2048) and features.dtype == torch.float64
    assert bool(torch.isfinite(features).all()) and float(features.std()) > 0.01   # unit-scale features
    one = net(color)                                   # batch of 1 (batch_size=1)
    torch.testing.assert_close(one, features[:1], rtol=1e-5, atol=1e-6)
    assert torch.equal(net(color), one)                # same input twice: identical
    # 1-channel images are repeated to 3 channels.
    torch.testing.assert_close(net(gray), features[1:], rtol=1e-5, atol=1e-6)


def test_matches_pytorch_fid_inception_v3(monkeypatch, images, features):
    color, gray = images
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", lambda *a, **k: _random_state_dict(0))
    ref = pytorch_fid.inception.InceptionV3([3]).eval()   # resize_input=True, normalize_input=True
    x = torch.cat([color, gray.expand(-1, 3, -1, -1)])
    with torch.no_grad():
        expected = ref((x + 1) / 2)[0].flatten(1).double()   # pytorch-fid expects [0, 1]
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-6)


def test_loads_explicit_file_and_torch_hub_cache(monkeypatch, tmp_path):
    state = _random_state_dict(3)
    hub = tmp_path / "hub"
    (hub / "checkpoints").mkdir(parents=True)
    path = hub / "checkpoints" / FID_WEIGHTS_FILE
    torch.save(state, path)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    for f in (InceptionFeatures(weights=str(path)), InceptionFeatures()):   # explicit path; hub cache
        assert f.weights_path == path
        got = f.net.state_dict()
        assert torch.equal(got["blocks.0.0.conv.weight"], state["Conv2d_1a_3x3.conv.weight"])
        assert torch.equal(got["blocks.3.2.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])


def test_missing_weights_name_the_path(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "empty-hub"))
    cache = tmp_path / "empty-hub" / "checkpoints" / FID_WEIGHTS_FILE
    with pytest.raises(FileNotFoundError, match=re.escape(str(cache))):
        InceptionFeatures()
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        InceptionFeatures(weights=tmp_path / "nowhere.pth")
    with pytest.raises(ValueError, match="not both"):
        InceptionFeatures(weights=tmp_path / "nowhere.pth", random_weights=True)


def test_image_checks(net):
    with pytest.raises(ValueError, match="C = 1 or 3"):
        net(torch.zeros(1, 2, 8, 8))
    with pytest.raises(ValueError, match="images contains non-finite"):
        net(torch.full((1, 3, 8, 8), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        net(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))


def test_frechet_distance_matches_pytorch_fid():
    g = torch.Generator().manual_seed(0)
    mix = torch.eye(64, dtype=torch.float64) + 0.2 * torch.randn(64, 64, generator=g, dtype=torch.float64)
    a = torch.randn(300, 64, generator=g, dtype=torch.float64) @ mix
    b = torch.randn(300, 64, generator=g, dtype=torch.float64) @ mix * 1.2 + 0.3
    sa, sb = FeatureStats(64).update(a), FeatureStats(64).update(b)
    ours = float(frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov))
    an, bn = a.numpy(), b.numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # scipy's sqrtm(disp=False) in pytorch-fid
        ref = calculate_frechet_distance(an.mean(0), np.cov(an, rowvar=False), bn.mean(0), np.cov(bn, rowvar=False))
    assert ours == pytest.approx(ref, rel=1e-6)
