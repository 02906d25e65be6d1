"""gandyn.metrics.digits_classifier: the shipped weights (weights_only load, float32, < 1 MB),
held-out accuracy recomputed, the digits FID (halves of the real digits against noise), the
Inception Score of the test digits, stacked-digit channel labels, and the training script's
determinism."""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

from gandyn.data.digits import digits_images
from gandyn.metrics import (DigitsFeatures, FeatureStats, frechet_distance, inception_score,
                            load_digits_classifier, stacked_mode_metrics)
from gandyn.metrics.digits_classifier import WEIGHTS_PATH, DigitsClassifier

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits():
    return digits_images(16)


@pytest.fixture(scope="module")
def features():
    return DigitsFeatures()


@pytest.fixture(scope="module")
def real(features, digits):
    return features(digits[0])


def fid(a, b):
    sa, sb = FeatureStats(a.shape[1]).update(a), FeatureStats(b.shape[1]).update(b)
    return float(frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov))


def test_shipped_weights_load_with_weights_only():
    assert WEIGHTS_PATH.is_file() and WEIGHTS_PATH.stat().st_size < 1 << 20
    record = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
    state = record["state_dict"]
    assert all(isinstance(v, torch.Tensor) and v.dtype == torch.float32 for v in state.values())
    assert set(state) == set(DigitsClassifier().state_dict())
    assert record["test_accuracy"] >= 0.97
    model = load_digits_classifier()
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_held_out_accuracy(digits, real):
    x, y = digits
    _, probs = real
    acc = float((probs[1500:].argmax(1) == y[1500:]).double().mean())
    assert acc >= 0.95
    record = torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)
    assert acc == pytest.approx(record["test_accuracy"], abs=1 / 297 + 1e-12)   # what the script measured
    assert probs.dtype == torch.float64 and torch.allclose(probs.sum(1), torch.ones(len(y), dtype=torch.float64))


@pytest.mark.parametrize("size", [8, 32])
def test_other_sizes_are_resized_to_16(features, size):
    x, y = digits_images(size)
    _, probs = features(x[1500:])
    assert float((probs.argmax(1) == y[1500:]).double().mean()) >= 0.95


def test_features_are_batch_invariant_float64(features, digits, real):
    feats, probs = real
    assert feats.shape == (1797, 128) and feats.dtype == torch.float64 and bool((feats >= 0).all())
    small = DigitsFeatures(batch_size=7)
    f2, p2 = small(digits[0][:50])
    torch.testing.assert_close(f2, feats[:50], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(p2, probs[:50], rtol=1e-5, atol=1e-7)


def test_digits_fid_separates_real_from_noise(features, real):
    feats, _ = real
    noise = torch.rand(900, 1, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise_feats, _ = features(noise)
    halves = fid(feats[:900], feats[900:])
    assert 0 < halves and fid(feats[:900], noise_feats) > 10 * halves


def test_inception_score_of_the_test_digits(real):
    _, probs = real
    mean, std = inception_score(probs[1500:], splits=1)
    assert 8 < mean <= 10 and std == 0.0
    # Ten roughly balanced classes, confident posteriors: IS <= exp(H(class histogram)) <= 10.
    counts = torch.bincount(probs[1500:].argmax(1), minlength=10).double()
    p = counts / counts.sum()
    assert mean <= math.exp(float(-(p * p.log()).sum())) + 1e-9


def test_stacked_digits_channel_labels(features, digits):
    x, y = digits
    idx = torch.arange(1500, 1797).reshape(-1, 3)                       # 99 stacks of 3 test digits
    stacks = x[idx].squeeze(2)                                           # (99, 3, 16, 16)
    labels = features.channel_labels(stacks)
    assert labels.shape == (99, 3) and labels.dtype == torch.int64
    assert torch.equal(labels, features.predict(x[1500:1797]).reshape(99, 3))
    assert float((labels == y[idx]).double().mean()) >= 0.95
    truth = stacked_mode_metrics(y[idx])
    got = stacked_mode_metrics(labels)
    assert abs(got["modes_covered"] - truth["modes_covered"]) <= 15


def test_image_checks(features):
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\) with S in \(8, 16, 32\)"):
        features(torch.zeros(2, 1, 12, 12))
    with pytest.raises(ValueError, match=r"\(B, 1, S, S\)"):
        features(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="non-finite"):
        features(torch.full((1, 1, 16, 16), float("nan")))
    with pytest.raises(TypeError, match="floating-point"):
        features(torch.zeros(1, 1, 16, 16, dtype=torch.long))


def test_training_script_is_deterministic(tmp_path):
    spec = importlib.util.spec_from_file_location("train_digits_classifier",
                                                  ROOT / "experiments" / "train_digits_classifier.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    (xtr, ytr), (xte, yte) = script.split()
    assert len(xtr) == 1500 and len(xte) == 297
    threads = torch.get_num_threads()
    m1, r1 = script.train(epochs=1)
    m2, r2 = script.train(epochs=1)
    assert torch.get_num_threads() == threads                               # restored
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    assert r1["test_accuracy"] == r2["test_accuracy"] > 0.5
    script.save(m1, r1, tmp_path / "w.pt")
    record = torch.load(tmp_path / "w.pt", weights_only=True)
    assert record["test_accuracy"] == r1["test_accuracy"]
    assert load_digits_classifier(tmp_path / "w.pt").state_dict()["fc2.bias"].equal(m1.state_dict()["fc2.bias"])
