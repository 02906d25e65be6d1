"""Iterate averaging of every player around any game optimizer (in the spirit of
torch.optim.swa_utils.AveragedModel, but over all players' parameters at once).

    mode="uniform":  θ̄_n = (1/n) Σ_{s=1..n} θ_{start+s}       (Gidel et al. 2019, §3.2:
                     uniform averaging of the iterates; with step sizes ∝ 1/√t it converges
                     on monotone games where the last iterate cycles)
    mode="ema":      θ̄ ← decay·θ̄ + (1 − decay)·θ_t, θ̄ = θ_{start+1} at the first average
                     (Yazıcı et al. 2019, "The unusual effectiveness of averaging in GAN training")

The first `start` steps are not averaged (a burn-in, as SWA's swa_start). Only
parameters are averaged, not buffers (a GAN's batch-norm statistics stay those of the
last iterate; the game's own `ema` option keeps an EMA of G with its buffers).

The inner optimizer does the stepping and keeps its counters; the wrapper shares its
param groups, so an `lr_scheduler` may be built on either. `swapped()` puts the
averaged point into the parameters for the duration of a `with` block (metrics,
sampling) and the iterate back afterwards; `averaged()` returns copies of it.
"""
from __future__ import annotations

import contextlib
import math

import torch

from gandyn.optim.wrapper import GameOptimizerWrapper

MODES = ("uniform", "ema")


class Averaged(GameOptimizerWrapper):
    def __init__(self, inner_optimizer, mode: str = "uniform", *, decay: float = 0.999, start: int = 0):
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not math.isfinite(decay) \
                or not 0 <= decay < 1:
            raise ValueError(f"decay: expected a number in [0, 1), got {decay!r}")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"start: expected an int >= 0, got {start!r}")
        super().__init__(inner_optimizer)
        self.mode, self.decay, self.start = mode, float(decay), start
        self.steps = 0          # inner steps taken
        self.n_averaged = 0     # iterates in the average

    def step(self, closure):  # type: ignore[override]
        losses = self.inner.step(closure)
        if self.inner.step_skipped:  # a float16 overflow: no step was taken, none is averaged
            return losses
        self.steps += 1
        if self.steps > self.start:
            self._update()
        self._after_step(closure)
        return losses

    @torch.no_grad()
    def _update(self) -> None:
        params = self._params()
        if self.n_averaged == 0:
            for p in params:
                self.state[p]["average"] = p.detach().clone()
        else:
            avg = [self.state[p]["average"] for p in params]
            weight = 1 / (self.n_averaged + 1) if self.mode == "uniform" else 1 - self.decay
            torch._foreach_lerp_(avg, [p.detach() for p in params], weight)
        self.n_averaged += 1

    def averaged(self) -> list[torch.Tensor]:
        """Copies of the averaged parameters (the current ones before the first average),
        in the order of the param groups."""
        return [(self.state[p]["average"] if self.n_averaged else p).detach().clone() for p in self._params()]

    @contextlib.contextmanager
    def swapped(self):
        """Within the block the parameters hold the averaged point; the iterate is put back on exit."""
        params = self._params()
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_([p.detach() for p in params], self.averaged())
        try:
            yield self
        finally:
            with torch.no_grad():
                torch._foreach_copy_([p.detach() for p in params], saved)

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "average": self._saved("average"), "steps": self.steps,
                "n_averaged": self.n_averaged, "mode": self.mode, "decay": self.decay, "start": self.start}

    def load_state_dict(self, state_dict: dict) -> None:
        self._load(state_dict, "average")
        self.steps, self.n_averaged = int(state_dict["steps"]), int(state_dict["n_averaged"])
        self.mode, self.decay, self.start = state_dict["mode"], float(state_dict["decay"]), int(state_dict["start"])
