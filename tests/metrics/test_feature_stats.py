"""gandyn.metrics.FeatureStats: streaming and merged statistics against one-shot NumPy
(mean, np.cov with ddof=1) to 1e-12, including badly centred data where the naive
Σxxᵀ − nμμᵀ formula loses its digits, and the merge across processes."""
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from gandyn.metrics import FeatureStats


def data(n, d, seed, offset=0.0):
    rng = np.random.default_rng(seed)
    mix = np.eye(d) + 0.5 * rng.standard_normal((d, d))
    return rng.standard_normal((n, d)) @ mix + offset


def rel_err(a, b):
    return np.abs(np.asarray(a) - b).max() / np.abs(b).max()


def test_streaming_batches_equal_one_shot_numpy():
    x = data(500, 7, seed=0)
    s = FeatureStats(7)
    for chunk in np.array_split(x, [1, 2, 50, 51, 300]):  # includes a 1-row batch
        s.update(torch.from_numpy(chunk))
    assert s.n == 500
    assert rel_err(s.mean.numpy(), x.mean(0)) < 1e-12
    assert rel_err(s.cov.numpy(), np.cov(x, rowvar=False, ddof=1)) < 1e-12
    assert s.cov.dtype == torch.float64


def test_merge_of_uneven_shards_equals_one_shot():
    x = data(333, 5, seed=1)
    shards = []
    for chunk in np.array_split(x, [0, 10, 11, 200]):  # an empty shard and a 1-row shard
        s = FeatureStats(5)
        s.update(torch.from_numpy(chunk))
        shards.append(s)
    merged = FeatureStats.merge_all(shards)
    assert merged.n == 333
    assert rel_err(merged.mean.numpy(), x.mean(0)) < 1e-12
    assert rel_err(merged.cov.numpy(), np.cov(x, rowvar=False, ddof=1)) < 1e-12
    # Order does not matter beyond rounding.
    rev = FeatureStats.merge_all(shards[::-1])
    assert rel_err(rev.cov.numpy(), merged.cov.numpy()) < 1e-13


def test_badly_centred_data_keeps_its_digits():
    # Offset 1e8 over unit spread: the naive formula cancels all 16 digits, the shifted merge none.
    x = data(2000, 4, seed=2, offset=1e8)
    s = FeatureStats(4)
    for chunk in np.array_split(x, 20):
        s.update(torch.from_numpy(chunk))
    ref = np.cov(x, rowvar=False, ddof=1)
    assert rel_err(s.cov.numpy(), ref) < 1e-12
    naive = (x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0))) / (len(x) - 1)
    assert rel_err(naive, ref) > 1e-6  # what the test guards against


def test_float32_features_accumulate_in_float64():
    x = data(1000, 3, seed=3, offset=100.0).astype(np.float32)
    s = FeatureStats(3)
    for chunk in np.array_split(x, 7):
        s.update(torch.from_numpy(chunk))
    assert s.mean.dtype == torch.float64
    assert rel_err(s.cov.numpy(), np.cov(x.astype(np.float64), rowvar=False, ddof=1)) < 1e-12


def test_pack_unpack_round_trip_and_errors():
    s = FeatureStats(3).update(torch.from_numpy(data(10, 3, seed=4)))
    t = FeatureStats.unpack(s.pack(), 3)
    assert t.n == 10 and torch.equal(t.mean, s.mean) and torch.equal(t.m2, s.m2)
    with pytest.raises(ValueError, match=r"x must be a feature matrix \(n, 3\)"):
        s.update(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="non-finite"):
        s.update(torch.tensor([[0.0, float("nan"), 1.0]]))
    with pytest.raises(ValueError, match="n >= 2"):
        FeatureStats(3).update(torch.zeros(1, 3)).cov
    with pytest.raises(ValueError, match="dim 3"):
        s.merge(FeatureStats(4))
    with pytest.raises(ValueError, match="dim must be a positive int"):
        FeatureStats(0)


def test_all_reduce_without_distributed_is_a_no_op():
    s = FeatureStats(2).update(torch.from_numpy(data(5, 2, seed=5)))
    before = s.cov.clone()
    assert not dist.is_initialized()
    assert torch.equal(s.all_reduce().cov, before)


def _rank_main(rank, world, init_file, x, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        s = FeatureStats(x.shape[1])
        s.update(torch.from_numpy(np.array_split(x, world)[rank]))
        s.all_reduce()
        torch.save((s.n, s.mean, s.cov), f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_all_reduce_across_two_processes(tmp_path):
    x = data(101, 3, seed=6, offset=1e5)
    out = str(tmp_path / "stats")
    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), x, out), nprocs=2, join=True)
    ref = np.cov(x, rowvar=False, ddof=1)
    for rank in range(2):
        n, mean, cov = torch.load(f"{out}.{rank}", weights_only=True)
        assert n == 101
        assert rel_err(mean.numpy(), x.mean(0)) < 1e-12
        assert rel_err(cov.numpy(), ref) < 1e-12
