"""Benchmark suite "gradient_penalty": the fused per-sample norm penalty against its reference.

Op rows: forward and forward+backward of gandyn.ops.gradient_penalty vs the eager
reference (and torch.compile of the reference where it compiles), with the memory
bandwidth the kernel reaches: the forward reads the gradient once, forward+backward
reads it twice and writes d penalty/d grad once. On CUDA, pct_of_peak_bw divides it by
the device's peak (NVML's memory clock × bus width; the issue's target is >= 70 %).

End-to-end rows: a whole WGAN-GP discriminator step (small conv D, Adam) with our
penalty vs the reference penalty. The penalty is a small part of that step (D's
forward, its double backward and the parameter update dominate), so a kernel
speed-up is NOT a training speed-up: read the two kinds of rows together.
"""
from __future__ import annotations

import torch
from torch import nn

from gandyn import _ext
from gandyn.bench.timing import median_ms, peak_bandwidth_gbps, row
from gandyn.nn.penalties import gradient_penalty as nn_gradient_penalty
from gandyn.ops import gradient_penalty as gp

SUITE = "gradient_penalty"


def _of_peak(gbps: float, peak: float | None) -> dict:
    """{"pct_of_peak_bw": ...} where the device's peak bandwidth is known (the GPU target: >= 70 %)."""
    return {} if peak is None else {"pct_of_peak_bw": 100 * gbps / peak}


def _op_shapes(device: str, quick: bool) -> list[tuple[int, ...]]:
    if quick:
        return [(8, 3, 8, 8), (4, 1000)]
    if torch.device(device).type == "cuda":
        # 64M-element gradients three ways: images, many short rows, few long rows.
        return [(64, 3, 32, 32), (64, 3, 128, 128), (256, 4, 256, 256), (1 << 16, 1 << 10), (16, 1 << 22)]
    return [(64, 3, 32, 32), (64, 3, 128, 128), (16, 1 << 18)]


def _compile_or_note(fn):
    """torch.compile(fn) and a note, or (None, why) when compiling fails."""
    try:
        compiled = torch.compile(fn, dynamic=False)
        return compiled, ""
    except Exception as e:  # noqa: BLE001 - any failure to compile is reported, not fatal
        return None, f"compile failed: {type(e).__name__}"


def _time_compiled(compiled, args_fn, device, repeat):
    try:
        return median_ms(lambda: compiled(*args_fn()), device=device, repeat=repeat), ""
    except Exception as e:  # noqa: BLE001
        return float("nan"), f"compile failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"


def _op_rows(device: str, quick: bool, dtype: torch.dtype) -> list[dict]:
    rows = []
    repeat = 3 if quick else 10
    kernel = _ext.has_kernel(device)
    ref = lambda g: gp.reference(g, 1.0)[0]  # noqa: E731
    ours = lambda g: gp.gradient_penalty(g, 1.0, check_finite=False, impl="kernel")  # noqa: E731

    def fwd_bwd(f, g):
        return torch.autograd.grad(f(g), g)[0]

    peak = peak_bandwidth_gbps(device)
    for shape in _op_shapes(device, quick):
        g = torch.randn(shape, device=device, dtype=dtype)
        gr = g.detach().requires_grad_(True)
        numel, size = g.numel(), g.element_size()
        case = f"{'x'.join(map(str, shape))} {str(dtype).removeprefix('torch.')}"
        exact = gp.reference(g.double(), 1.0)[0].item()
        ref_fwd = median_ms(lambda: ref(g), device=device, repeat=repeat)
        ref_fb = median_ms(lambda: fwd_bwd(ref, gr), device=device, repeat=repeat)
        comp_fwd = comp_fb = float("nan")
        note = ""
        if quick:
            note = "compile skipped (quick)"
        else:
            compiled, note = _compile_or_note(ref)
            if compiled is not None:
                comp_fwd, note = _time_compiled(compiled, lambda: (g,), device, repeat)
                if not note:
                    comp_fb, note = _time_compiled(lambda x: fwd_bwd(compiled, x), lambda: (gr,), device, repeat)
        if not kernel:
            rows.append(row(SUITE, f"fwd {case}", ours_ms=float("nan"), ref_ms=ref_fwd,
                            note=f"no {torch.device(device).type} kernel in this build"))
            continue
        fwd = median_ms(lambda: ours(g), device=device, repeat=repeat)
        fb = median_ms(lambda: fwd_bwd(ours, gr), device=device, repeat=repeat)
        rel_err = abs(ours(g).item() - exact) / abs(exact)
        fwd_gbps, fb_gbps = numel * size / fwd / 1e6, 3 * numel * size / fb / 1e6
        rows.append(row(SUITE, f"fwd {case}", ours_ms=fwd, ref_ms=ref_fwd, compiled_ms=comp_fwd,
                        gbps=fwd_gbps, **_of_peak(fwd_gbps, peak), rel_err=rel_err, note=note))
        rows.append(row(SUITE, f"fwd+bwd {case}", ours_ms=fb, ref_ms=ref_fb, compiled_ms=comp_fb,
                        gbps=fb_gbps, **_of_peak(fb_gbps, peak), note=note))
    return rows


class _ConvD(nn.Module):
    """A small DCGAN-style critic (no normalization layers: WGAN-GP's convention)."""

    def __init__(self, channels: int, width: int, size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (size // 4) ** 2, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def _end_to_end_rows(device: str, quick: bool) -> list[dict]:
    batch, channels, size, width = (8, 1, 16, 8) if quick else (64, 3, 32, 64)
    torch.manual_seed(0)
    D = _ConvD(channels, width, size).to(device)
    opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    real = torch.randn(batch, channels, size, size, device=device)
    fake = torch.randn(batch, channels, size, size, device=device)

    def d_step(impl: str):
        opt.zero_grad(set_to_none=True)
        loss = D(fake).mean() - D(real).mean() + nn_gradient_penalty(D, real, fake, "wgan-gp", impl=impl)
        loss.backward()
        opt.step()

    if not _ext.has_kernel(device):
        return [row(SUITE, "end-to-end WGAN-GP D step", ours_ms=float("nan"), ref_ms=float("nan"),
                    note=f"no {torch.device(device).type} kernel in this build")]
    repeat = 3 if quick else 20
    # Interleaved A B A B, best median of each: less bias from a machine whose load drifts.
    times = {"kernel": [], "reference": []}
    for _ in range(2):
        for impl in times:
            times[impl].append(median_ms(lambda: d_step(impl), device=device, repeat=repeat))
    ours, ref = min(times["kernel"]), min(times["reference"])
    return [row(SUITE, f"end-to-end WGAN-GP D step (conv D, B={batch}, {channels}x{size}x{size})",
                ours_ms=ours, ref_ms=ref, ref="reference penalty",
                note="whole training step: the kernel speed-up diluted")]


def run(device: str, quick: bool) -> list[dict]:
    rows = _op_rows(device, quick, torch.float32)
    if torch.device(device).type == "cuda" and not quick:
        rows += _op_rows(device, quick, torch.bfloat16)
    return rows + _end_to_end_rows(device, quick)
