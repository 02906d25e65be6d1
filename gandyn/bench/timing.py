"""Timing helpers shared by every benchmark suite: median wall time of a callable."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def peak_bandwidth_gbps(device: str) -> float | None:
    """The device's peak memory bandwidth in GB/s (CUDA, from NVML: DDR memory clock × bus
    width), or None where it is not known (CPU, or no NVML)."""
    dev = torch.device(device)
    if dev.type != "cuda":
        return None
    try:
        import pynvml  # nvidia-ml-py
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(dev.index if dev.index is not None else torch.cuda.current_device())
        mhz = pynvml.nvmlDeviceGetMaxClockInfo(handle, pynvml.NVML_CLOCK_MEM)
        bits = pynvml.nvmlDeviceGetMemoryBusWidth(handle)
    except Exception:  # noqa: BLE001 - no NVML, or a field it does not report: no percentage
        return None
    return 2 * mhz * 1e6 * bits / 8 / 1e9 if mhz and bits else None


def median_ms(fn: Callable[[], object], *, device: str = "cpu", warmup: int = 2, repeat: int = 5,
              min_time_s: float = 0.0) -> float:
    """Median over `repeat` runs (more while under `min_time_s`) of fn's wall time in ms."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def row(suite: str, case: str, *, ours_ms: float, ref_ms: float, ref: str = "eager reference",
        **extra) -> dict:
    """One line of the benchmark table: our time, the reference's, their ratio, extras
    (compiled_ms, gbps, rel_err, note ...)."""
    return {"suite": suite, "case": case, "ours_ms": ours_ms, "ref_ms": ref_ms, "ref": ref,
            "speedup": ref_ms / ours_ms if ours_ms > 0 else float("inf"), **extra}
