"""Benchmark suite "spectral_norm": gandyn.nn.spectral_norm vs torch's parametrization.

Rows:
- "sn weights fwd": the forward alone (one power-iteration step and W / sigma for every layer,
  the autograd graph recorded as in training).
- "sn weights fwd+bwd": the spectral normalization alone for every layer of a 10-layer
  SNGAN-style discriminator (one power-iteration step, W / sigma, then backward of all W_sn
  with given gradients; weights only, no data). Reference: torch.nn.utils.parametrizations.
  spectral_norm on each layer; also torch.compile of the same math (compiled_ms) where it
  compiles. rel_err: max relative difference of W_sn between ours and torch from the same u, v.
- "D step end-to-end": a full discriminator step (hinge loss on D(real) and D(fake), backward,
  Adam) with our SN vs torch's, because SN is only a few percent of a D step on CPU.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from gandyn.bench.timing import median_ms, row
from gandyn.nn.spectral_norm import normalized_weights, spectral_norm

SUITE = "spectral_norm"


def sngan_discriminator(ch: int) -> nn.Sequential:
    """10 weight layers, SNGAN's standard CNN (Miyato et al. 2018, table 3) with two more 3x3 convs
    at the end; for 32x32 inputs the last feature map is 4x4."""
    c = [3, ch, ch, 2 * ch, 2 * ch, 4 * ch, 4 * ch, 8 * ch, 8 * ch, 8 * ch]
    kernels = [(3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (4, 2), (3, 1), (3, 1), (3, 1)]
    layers: list[nn.Module] = []
    for i, (k, s) in enumerate(kernels):
        layers += [nn.Conv2d(c[i], c[i + 1], k, stride=s, padding=1), nn.LeakyReLU(0.1)]
    layers += [nn.Flatten(), nn.Linear(8 * ch * 4 * 4, 1)]
    return nn.Sequential(*layers)


def _torch_sn(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            torch_spectral_norm(m)
    return module


def _sn_layers(module: nn.Module) -> list[nn.Module]:
    return [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _reference_math(weights, us, vs, eps=1e-12):
    """torch's _SpectralNorm forward (training mode) as a pure function, for torch.compile."""
    out = []
    for w, u, v in zip(weights, us, vs):
        m = w.flatten(1)
        with torch.no_grad():
            u = F.normalize(torch.mv(m, v), dim=0, eps=eps)
            v = F.normalize(torch.mv(m.H, u), dim=0, eps=eps)
        out.append(w / torch.vdot(u, torch.mv(m, v)))
    return out


def _sn_rows(device: str, quick: bool) -> list[dict]:
    """SN of every layer: forward, and forward + backward (also against torch.compile of torch's math)."""
    ch = 8 if quick else 64
    base = sngan_discriminator(ch).to(device)
    ref = _torch_sn(copy.deepcopy(base))
    ours = spectral_norm(copy.deepcopy(base))
    ours.load_state_dict(ref.state_dict())
    ref_layers = _sn_layers(ref)
    gen = torch.Generator().manual_seed(0)
    # (shapes from the originals: reading m.weight would run a power-iteration step on ref only)
    grads = [torch.randn(m.parametrizations.weight.original.shape, generator=gen).to(device) for m in ref_layers]
    ours_params = [p for n, p in ours.named_parameters() if n.endswith("original")]
    ref_params = [p for n, p in ref.named_parameters() if n.endswith("original")]

    # Accuracy from the same (u, v): eval mode, no power-iteration step.
    ref.eval(), ours.eval()
    with torch.no_grad():
        w_ref = [m.weight for m in ref_layers]
        w_ours = normalized_weights(ours)
        rel_err = max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(w_ours, w_ref))
    ref.train(), ours.train()

    def step_ours():
        torch.autograd.backward(normalized_weights(ours), grads)

    def step_ref():
        torch.autograd.backward([m.weight for m in ref_layers], grads)

    repeat = 5 if quick else 20
    # Forward alone (power iteration + W / sigma, the graph recorded as in training), then with backward.
    ours_fwd_ms = median_ms(lambda: normalized_weights(ours), device=device, repeat=repeat)
    ref_fwd_ms = median_ms(lambda: [m.weight for m in ref_layers], device=device, repeat=repeat)
    ours_ms = median_ms(step_ours, device=device, repeat=repeat)
    ref_ms = median_ms(step_ref, device=device, repeat=repeat)
    for p in ours_params + ref_params:
        p.grad = None

    extra: dict = {}
    if quick:
        extra["note"] = "torch.compile skipped in quick mode"
    else:
        weights = [p.detach().clone().requires_grad_(True) for p in ref_params]
        us = [m.parametrizations.weight[0]._u.clone() for m in ref_layers]
        vs = [m.parametrizations.weight[0]._v.clone() for m in ref_layers]
        try:
            compiled = torch.compile(_reference_math)

            def step_compiled():
                torch.autograd.backward(compiled(weights, us, vs), grads)

            extra["compiled_ms"] = median_ms(step_compiled, device=device, repeat=repeat)
            extra["speedup_vs_compiled"] = extra["compiled_ms"] / ours_ms
        except Exception as e:  # noqa: BLE001 - report, don't crash the suite
            extra["note"] = f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}"
    n_weights = sum(p.numel() for p in ref_params)
    case = f"(10 layers, ch={ch}, {n_weights / 1e6:.2f}M weights)"
    return [row(SUITE, f"sn weights fwd {case}", ours_ms=ours_fwd_ms, ref_ms=ref_fwd_ms,
                ref="torch parametrizations.spectral_norm", rel_err=rel_err),
            row(SUITE, f"sn weights fwd+bwd {case}", ours_ms=ours_ms, ref_ms=ref_ms,
                ref="torch parametrizations.spectral_norm", rel_err=rel_err, **extra)]


def _d_step_rows(device: str, quick: bool) -> list[dict]:
    ch, batch = (8, 4) if quick else (64, 16)
    base = sngan_discriminator(ch).to(device)
    ref = _torch_sn(copy.deepcopy(base))
    ours = spectral_norm(copy.deepcopy(base))
    ours.load_state_dict(ref.state_dict())
    gen = torch.Generator().manual_seed(1)
    real = torch.randn(batch, 3, 32, 32, generator=gen).to(device)
    fake = torch.randn(batch, 3, 32, 32, generator=gen).to(device)

    def make_step(model):
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.0, 0.9))

        def step():
            opt.zero_grad(set_to_none=True)
            loss = F.relu(1 - model(real)).mean() + F.relu(1 + model(fake)).mean()
            loss.backward()
            opt.step()
        return step

    repeat = 3 if quick else 5
    ours_ms = median_ms(make_step(ours), device=device, warmup=1, repeat=repeat)
    ref_ms = median_ms(make_step(ref), device=device, warmup=1, repeat=repeat)
    return [row(SUITE, f"D step end-to-end (hinge, Adam, B={batch}, 32x32, ch={ch})", ours_ms=ours_ms,
                ref_ms=ref_ms, ref="torch parametrizations.spectral_norm")]


def run(device: str, quick: bool) -> list[dict]:
    return _sn_rows(device, quick) + _d_step_rows(device, quick)
