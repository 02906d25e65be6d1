"""Lookahead-minmax (Chavdarova et al. 2021) around any game optimizer.

Every k inner steps all players backtrack together, at the same step, with
one shared k and α:  θ ← θ_slow + α (θ − θ_slow),  θ_slow ← θ.
The slow weights are a copy of the parameters taken at the first step. The
counters (grad_evals, hvp_evals, loss_evals) are the inner optimizer's.

`k` is an int, or a pair (k_min, k_max): then the length of each period is drawn
uniformly from k_min..k_max (both included) at its start, from a generator seeded by
`seed` whose state the state_dict carries, still one k shared by all players.
The inner optimizer may be a LookaheadMinmax itself: nested ("super-slow")
lookahead, Chavdarova et al. 2021 §4 — the outer one's k counts the inner one's
steps, i.e. the fast optimizer's steps, and its backtrack also moves the inner
one's slow weights to the backtracked point (the fast, slow and super-slow weights
all restart there).
"""
from __future__ import annotations

import math

import torch

from gandyn.optim.wrapper import GameOptimizerWrapper


def _check_k(k) -> tuple[int, int]:
    if not isinstance(k, bool) and isinstance(k, int):
        k = (k, k)
    if isinstance(k, (str, bytes)) or not hasattr(k, "__len__") or len(k) != 2 \
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 1 for x in k) or k[0] > k[1]:
        raise ValueError(f"k: expected a positive int or a pair [k_min, k_max] of positive ints "
                         f"with k_min <= k_max, got {k!r}")
    return int(k[0]), int(k[1])


class LookaheadMinmax(GameOptimizerWrapper):
    def __init__(self, inner_optimizer, k=5, alpha: float = 0.5, *, seed: int = 0):
        self.k_range = _check_k(k)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
                or not 0 < alpha <= 1:
            raise ValueError(f"alpha: expected a number in (0, 1], got {alpha!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed: expected an int, got {seed!r}")
        super().__init__(inner_optimizer)
        self.alpha = float(alpha)
        self._generator = torch.Generator().manual_seed(seed)
        self.inner_steps = 0
        self.next_sync = self._draw_k()

    @property
    def k(self):
        """The fixed period, or the (k_min, k_max) range it is drawn from."""
        return self.k_range[0] if self.k_range[0] == self.k_range[1] else self.k_range

    def _draw_k(self) -> int:
        lo, hi = self.k_range
        return lo if lo == hi else int(torch.randint(lo, hi + 1, (), generator=self._generator))

    def step(self, closure):  # type: ignore[override]
        params = self._params()
        with torch.no_grad():
            if "slow" not in self.state[params[0]]:
                for p in params:
                    self.state[p]["slow"] = p.detach().clone()
        losses = self.inner.step(closure)
        if self.inner.step_skipped:  # a float16 overflow: no step was taken, none is counted
            return losses
        self.inner_steps += 1
        if self.inner_steps == self.next_sync:
            with torch.no_grad():
                slow = [self.state[p]["slow"] for p in params]
                # θ ← slow + α(θ − slow) = lerp(slow, θ, α); then slow ← θ (both players at once)
                torch._foreach_lerp_(slow, params, self.alpha)
                torch._foreach_copy_(params, slow)
                # nested: the inner lookaheads restart from the backtracked point
                inner = self.inner
                while isinstance(inner, GameOptimizerWrapper):
                    if isinstance(inner, LookaheadMinmax) and "slow" in inner.state[params[0]]:
                        torch._foreach_copy_([inner.state[p]["slow"] for p in params], slow)
                    inner = inner.inner
            self.next_sync += self._draw_k()
        self._after_step(closure)
        return losses

    def state_dict(self) -> dict:
        return {"inner": self.inner.state_dict(), "slow": self._saved("slow"), "inner_steps": self.inner_steps,
                "next_sync": self.next_sync, "generator": self._generator.get_state(),
                "k": list(self.k_range), "alpha": self.alpha}

    def load_state_dict(self, state_dict: dict) -> None:
        self._load(state_dict, "slow")
        self.inner_steps = int(state_dict["inner_steps"])
        self.k_range, self.alpha = _check_k(state_dict["k"]), float(state_dict["alpha"])
        # a state saved before random periods existed: every k steps
        self.next_sync = int(state_dict.get("next_sync", (self.inner_steps // self.k_range[0] + 1) * self.k_range[0]))
        if "generator" in state_dict:
            self._generator.set_state(state_dict["generator"])
