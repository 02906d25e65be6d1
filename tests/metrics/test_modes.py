"""gandyn.metrics.modes: PacGAN's mixture metrics on hand-built sample sets (and against a
transcription of PacGAN's MetricLogger loop with scipy.stats.entropy), the strict 3σ
boundary, and the stacked-digits mode histogram by hand counts."""
import math

import numpy as np
import pytest
import scipy.stats
import torch

from gandyn.metrics import mixture_mode_metrics, reverse_kl_to_uniform, stacked_mode_metrics

MODES = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]], dtype=torch.float64)


def pacgan_reference(samples: np.ndarray, means: np.ndarray, std: float, thre: float = 3.0):
    """PacGAN's MetricLogger.do (synthetic_data_experiments/PacGAN/pacgan/extensions.py), isotropic std:
    nearest mode in units of std, high quality when below `thre`; KL(p̂ ‖ U) = log K − H(p̂)."""
    detail = np.zeros(len(means))
    for x in samples:
        dis = np.sqrt((((x - means) / std) ** 2).sum(1))
        j = int(np.argmin(dis))
        if dis[j] < thre:
            detail[j] += 1
    covered = len(np.nonzero(detail)[0])
    good = detail.sum() / len(samples)
    kl = math.log(len(means)) - scipy.stats.entropy(detail / detail.sum())
    return covered, good, kl, detail


def test_hand_built_counts():
    # Three samples at mode 0, one at mode 2, one far from every mode (7.07σ from the nearest).
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [0.0, -1.0], [0.2, 9.5], [5.0, 5.0]], dtype=torch.float64)
    out = mixture_mode_metrics(x, MODES, sigma=1.0)
    assert out["modes_covered"] == 2
    assert out["high_quality"] == pytest.approx(0.8)
    assert out["counts"].tolist() == [3, 0, 1]
    # p̂ = (3/4, 0, 1/4) against U(3): 3/4·log(3/4·3) + 1/4·log(1/4·3).
    assert out["reverse_kl"] == pytest.approx(0.75 * math.log(2.25) + 0.25 * math.log(0.75), rel=1e-14)


def test_threshold_is_strict_and_in_units_of_sigma():
    x = torch.tensor([[3.0, 0.0], [2.999, 0.0], [0.0, 15.5]], dtype=torch.float64)
    out = mixture_mode_metrics(x, MODES, sigma=1.0)   # 3σ exactly is not high quality (PacGAN: dis < 3)
    assert out["counts"].tolist() == [1, 0, 0] and out["high_quality"] == pytest.approx(1 / 3)
    out = mixture_mode_metrics(x, MODES, sigma=2.0)   # all three within 6 (5.5 from mode 2)
    assert out["counts"].tolist() == [2, 0, 1] and out["high_quality"] == 1.0
    out = mixture_mode_metrics(x, MODES, sigma=1.0, threshold=6.5)
    assert out["counts"].tolist() == [2, 0, 1]


def test_uniform_coverage_gives_zero_kl():
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    ring = torch.stack([torch.cos(angles), torch.sin(angles)], 1) * 2.0
    noise = 0.01 * torch.randn(8 * 25, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = ring.repeat(25, 1) + noise
    out = mixture_mode_metrics(x, ring, sigma=0.02)
    assert out["counts"].tolist() == [25] * 8
    assert out["modes_covered"] == 8 and out["high_quality"] == 1.0
    assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-14)


def test_collapse_on_one_mode_gives_log_k_and_no_sample_gives_inf():
    x = torch.zeros(10, 2, dtype=torch.float64)
    out = mixture_mode_metrics(x, MODES, sigma=0.1)
    assert out["modes_covered"] == 1 and out["reverse_kl"] == pytest.approx(math.log(3), rel=1e-14)
    out = mixture_mode_metrics(x + 100.0, MODES, sigma=0.1)
    assert out["modes_covered"] == 0 and out["high_quality"] == 0.0 and out["reverse_kl"] == math.inf


def test_grid_matches_pacgan_metric_logger():
    grid = torch.tensor([[i, j] for i in range(-4, 5, 2) for j in range(-4, 5, 2)], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    # A lopsided generator: modes picked non-uniformly, some spread too wide, some points off-grid.
    pick = torch.multinomial(torch.linspace(0.1, 1.0, 25), 400, replacement=True, generator=g)
    x = grid[pick] + 0.08 * torch.randn(400, 2, generator=g, dtype=torch.float64)
    x[::7] += torch.rand(len(x[::7]), 2, generator=g, dtype=torch.float64) * 1.5
    out = mixture_mode_metrics(x, grid, sigma=0.05)
    covered, good, kl, detail = pacgan_reference(x.numpy(), grid.numpy(), 0.05)
    assert out["modes_covered"] == covered
    assert out["high_quality"] == pytest.approx(good, rel=1e-14)
    assert out["reverse_kl"] == pytest.approx(kl, rel=1e-10, abs=1e-14)
    assert out["counts"].tolist() == detail.astype(int).tolist()
    assert 0 < good < 1 and kl > 0


def test_stacked_mode_histogram_by_hand():
    labels = torch.tensor([[1, 2, 3], [1, 2, 3], [0, 0, 0], [9, 9, 9]])
    out = stacked_mode_metrics(labels)
    assert out["modes_covered"] == 3
    assert out["counts"][123] == 2 and out["counts"][0] == 1 and out["counts"][999] == 1
    assert int(out["counts"].sum()) == 4
    # p̂ = (1/2, 1/4, 1/4) on 3 of 1000 modes: Σ p̂ log(1000 p̂).
    assert out["reverse_kl"] == pytest.approx(0.5 * math.log(500) + 0.5 * math.log(250), rel=1e-14)


def test_every_stacked_mode_once_gives_zero_kl():
    modes = torch.arange(1000)
    labels = torch.stack([modes // 100, modes // 10 % 10, modes % 10], 1)
    out = stacked_mode_metrics(labels[torch.randperm(1000, generator=torch.Generator().manual_seed(0))])
    assert out["modes_covered"] == 1000 and out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["counts"].tolist() == [1] * 1000
    # One channel → 10 modes, two → 100 (num_modes must be 10**C).
    assert stacked_mode_metrics(torch.tensor([[3], [3]]), num_modes=10)["reverse_kl"] == pytest.approx(math.log(10))


def test_reverse_kl_to_uniform_matches_scipy():
    counts = torch.tensor([5, 0, 3, 2, 7])
    p = counts.double().numpy() / 17
    assert reverse_kl_to_uniform(counts) == pytest.approx(scipy.stats.entropy(p, np.full(5, 0.2)), rel=1e-13)
    assert reverse_kl_to_uniform(torch.zeros(4)) == math.inf


def test_argument_checks_name_the_argument():
    x = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="samples and modes must have the same dimension"):
        mixture_mode_metrics(x, torch.zeros(3, 3, dtype=torch.float64), 1.0)
    with pytest.raises(ValueError, match="sigma must be a finite number > 0"):
        mixture_mode_metrics(x, MODES, 0.0)
    with pytest.raises(ValueError, match="threshold must be a finite number > 0"):
        mixture_mode_metrics(x, MODES, 1.0, threshold=float("inf"))
    with pytest.raises(ValueError, match="samples contains non-finite"):
        mixture_mode_metrics(torch.full((2, 2), float("nan")), MODES, 1.0)
    with pytest.raises(ValueError, match="samples must be a matrix"):
        mixture_mode_metrics(torch.zeros(2), MODES, 1.0)
    with pytest.raises(ValueError, match="channel_labels must be digit labels in 0..9"):
        stacked_mode_metrics(torch.tensor([[1, 2, 10]]))
    with pytest.raises(ValueError, match="num_modes must be 10\\*\\*C = 1000"):
        stacked_mode_metrics(torch.tensor([[1, 2, 3]]), num_modes=999)
    with pytest.raises(ValueError, match="channel_labels must have shape"):
        stacked_mode_metrics(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="channel_labels must be an integer tensor"):
        stacked_mode_metrics(torch.tensor([[1.0, 2.0, 3.0]]))
