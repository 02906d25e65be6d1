"""GAN runs on a GPU (skipped without one; `make device-check` runs them): the first
evaluation equals the CPU's, a resumed run equals an uninterrupted one (replay buffer,
instance noise, EMA and the CUDA RNG state through a checkpoint), float16 with loss scaling
trains, SNGAN's AltGD step runs, and on two GPUs NCCL data parallelism equals one process."""
from __future__ import annotations

import math

import pytest
import torch

from gandyn.train import read_metrics, read_status, run_experiment
from test_distributed import DIGITS, RING, _config, assert_rows_close, torchrun

pytestmark = pytest.mark.cuda


@pytest.fixture
def no_tf32():
    """cuDNN convolutions in TF32 (torch's default) round to 10 mantissa bits: float32 here
    (float32 matmuls are already full precision: torch.get_float32_matmul_precision() "highest")."""
    cudnn = torch.backends.cudnn
    with cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark, deterministic=cudnn.deterministic,
                     allow_tf32=False):
        yield


def _finished(run_dir, steps):
    assert read_status(run_dir) == {"status": "finished", "step": steps}
    rows = read_metrics(run_dir)
    assert all(math.isfinite(r["grad_norm"]) for r in rows if "grad_norm" in r)
    return rows


def test_digits_run_on_cuda_starts_as_on_the_cpu(tmp_path, no_tf32):
    """At step 0 (the same initial models: the CPU generator draws them) the losses and ‖v‖ of a
    digits DCGAN with a spectral-norm D and an EMA of G are the CPU's to float32 rounding; the
    run trains to the end on the GPU with finite metrics."""
    cfg = _config(DIGITS, "extragradient")
    cfg["game_args"] = {**cfg["game_args"], "sync_batchnorm": False}
    run_experiment({**cfg, "device": "cpu"}, tmp_path / "cpu")
    run_experiment({**cfg, "device": "cuda"}, tmp_path / "cuda")
    cpu, gpu = _finished(tmp_path / "cpu", cfg["steps"]), _finished(tmp_path / "cuda", cfg["steps"])
    assert gpu[0]["grad_norm"] == pytest.approx(cpu[0]["grad_norm"], rel=1e-4)
    assert gpu[0]["losses"] == pytest.approx(cpu[0]["losses"], rel=1e-5)
    assert "fid" in gpu[-1] and math.isfinite(gpu[-1]["fid"])


def test_resumed_cuda_run_equals_the_uninterrupted_one(tmp_path):
    """Stopped at its step-5 checkpoint and resumed on the GPU, a ring GAN with a replay buffer,
    instance noise and an EMA continues as the uninterrupted run: the checkpoint (loaded on the
    CPU) puts the held batch, the buffer and the CUDA RNG state back."""
    game_args = {**RING["game_args"], "replay_buffer": 64, "replay_fraction": 0.25, "instance_noise": 0.1}
    cfg = {**_config(RING, "extragradient"), "game_args": game_args, "device": "cuda"}
    run_experiment(cfg, tmp_path / "full")
    run_experiment({**cfg, "steps": 5}, tmp_path / "resumed")
    run_experiment(cfg, tmp_path / "resumed")
    full, resumed = _finished(tmp_path / "full", 10), _finished(tmp_path / "resumed", 10)
    assert [r["step"] for r in resumed] == [r["step"] for r in full] == [0, 5, 10]
    # the stopped run evaluated at its last step, 5: that row has more keys; the others are the same
    assert_rows_close([resumed[0], resumed[2]], [full[0], full[2]])
    state = torch.load(tmp_path / "resumed" / "checkpoints" / "step_00000010.pt", weights_only=False)
    assert isinstance(state["cuda_rng"], torch.Tensor) and state["game"]["replay"]["count"] == 64


def test_float16_with_loss_scaling_on_cuda(tmp_path, no_tf32):
    """float16 autocast on the GPU with dynamic loss scaling: the run finishes, logs its scale,
    and its step-0 field norm is the float32 run's to float16 rounding."""
    base = {**_config(RING, "simgd"), "device": "cuda", "steps": 20, "log_every": 10, "eval_every": 20}
    run_experiment(base, tmp_path / "f32")
    half = {**base, "game_args": {**base["game_args"], "precision": "float16"}}
    run_experiment(half, tmp_path / "f16")
    f32, f16 = _finished(tmp_path / "f32", 20), _finished(tmp_path / "f16", 20)
    assert f16[0]["grad_norm"] == pytest.approx(f32[0]["grad_norm"], rel=2e-2)
    assert f16[-1]["loss_scale"] > 0 and f16[-1]["skipped_steps"] >= 0


def test_sngan_altgd_on_cuda(tmp_path):
    """SNGAN's setting (ResNet, hinge, Adam (0, 0.9), D first with n_dis steps) at CIFAR-10's shape."""
    cfg = {"game": "gan", "optimizer": "altgd", "lr": 2e-4, "steps": 4, "log_every": 2, "eval_every": 0,
           "checkpoint_every": 4, "device": "cuda",
           "game_args": {"data": "stacked-digits", "data_args": {"size": 32}, "model": "sngan-resnet",
                         "model_args": {"width": 32}, "loss": "hinge", "batch_size": 16, "ema": 0.999},
           "optimizer_args": {"base": "adam", "betas": [0.0, 0.9], "order": [1, 0], "player_steps": [1, 2]}}
    run_experiment(cfg, tmp_path / "sngan")
    _finished(tmp_path / "sngan", 4)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
@pytest.mark.parametrize("optimizer", ["simgd", "consensus"])
def test_two_gpus_with_nccl_train_the_one_gpu_run(tmp_path, optimizer):
    """torchrun --nproc_per_node 2 with device "cuda": NCCL, one GPU per rank (LOCAL_RANK), the same
    metrics as one process on one GPU with the same global batch."""
    cfg = {**_config(RING, optimizer), "device": "cuda"}
    done = torchrun([{"config": cfg, "out": str(tmp_path / "two")}], tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    run_experiment(cfg, tmp_path / "one")
    assert read_status(tmp_path / "two") == read_status(tmp_path / "one")
    two, one = read_metrics(tmp_path / "two"), read_metrics(tmp_path / "one")
    assert [r["step"] for r in two] == [r["step"] for r in one]
    for a, b in zip(two, one):  # GEMMs of another batch size sum in another order: 1e-4, not 1e-5
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-4), (a["step"], a, b)
        assert a["losses"] == pytest.approx(b["losses"], rel=1e-4), (a["step"], a, b)
