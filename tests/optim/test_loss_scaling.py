"""Dynamic loss scaling (gandyn/optim/loss_scaling.py) on a small float16 game: a step with an
overflow in any of its evaluations is skipped as a whole (parameters and optimizer state
bit-identical), the scale follows GradScaler's rule in closed form, and scaling is what keeps
float16 gradients that would underflow."""
from __future__ import annotations

from copy import deepcopy

import pytest
import torch

from gandyn.games.base import Game
from gandyn.optim import OPTIMIZERS, LookaheadMinmax, Averaged, loss_scaling
from gandyn.optim.base import grad_or_zeros
from gandyn.optim.loss_scaling import LossScaler


class Float16Bilinear(Game):
    """L₀ = c·xᵀAy = −L₁, xᵀAy computed in float16 (a stand-in for autocast), with a loss scaler.
    At the `overflow_at`-th closure call of a step a term is added whose float16 backward
    overflows (its adjoint S·10⁴ > 65504 for S ≥ 8): the step's later evaluations can be
    made to fail while its first ones are fine."""

    def __init__(self, scaler: LossScaler | None, c: float = 1.0):
        g = torch.Generator().manual_seed(0)
        self.A = torch.randn(4, 4, generator=g)
        self.players = [[torch.randn(4, generator=g).requires_grad_()],
                        [torch.randn(4, generator=g).requires_grad_()]]
        self.loss_scaler, self.c = scaler, c
        self.calls, self.overflow_at = 0, None

    def resample(self):
        self.calls = 0

    def losses(self):
        self.calls += 1
        x, y = self.players[0][0], self.players[1][0]
        f = self.c * (x.half() @ self.A.half() @ y.half()).float()
        if self.calls == self.overflow_at:
            f = f + (x.half() * 1e4).float().sum()
        return [f, -f]


def _state(opt) -> dict:
    """The optimizer's state dict without its evaluation counters (which count work done)."""
    def strip(d):
        return {k: strip(v) if isinstance(v, dict) else v for k, v in d.items() if k != "counters"}
    return strip(deepcopy(opt.state_dict()))


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


# (optimizer, options, the closure call of a step that is its last field evaluation)
CASES = [
    ("simgd", {}, 1),
    ("optimistic", {}, 1),
    ("extragradient", {}, 2),
    ("extragradient", {"extrapolation_steps": 2}, 3),
    ("extragradient-past", {}, 2),             # call 1: the start's losses, not differentiated
    ("extragradient-past", {"past": "gradient"}, 2),
    ("altgd", {"order": [1, 0]}, 2),           # G's field, after D has moved
    ("consensus", {}, 1),
    ("sga", {}, 1),
    ("cgd", {}, 1),
]


def _make(name, options, scaler, wrap=None):
    game = Float16Bilinear(scaler)
    opt = OPTIMIZERS[name](game.players, lr=0.05, base="adam", **options)
    if wrap == "lookahead":
        opt = LookaheadMinmax(opt, k=2)
    elif wrap == "averaged":
        opt = Averaged(opt)
    return game, opt


@pytest.mark.parametrize("name, options, last, wrap", [(*c, None) for c in CASES] + [
    (*c, w) for c in (CASES[2], CASES[6]) for w in ("lookahead", "averaged")])
def test_overflow_in_the_last_evaluation_skips_the_whole_step(name, options, last, wrap):
    scaler = LossScaler(init_scale=2.0 ** 10)
    game, opt = _make(name, options, scaler, wrap)
    for _ in range(3):  # good steps: Adam moments, past steps, slow weights exist
        opt.step(game)
    assert scaler.skipped_steps == 0 and scaler.scale == 2.0 ** 10
    params, state = [p.detach().clone() for p in game.params()], _state(opt)
    game.overflow_at = last
    losses = opt.step(game)
    assert opt.step_skipped
    assert all(torch.equal(p, q) for p, q in zip(game.params(), params))
    assert _equal(_state(opt), state)
    assert scaler.scale == 2.0 ** 9 and scaler.skipped_steps == 1 and scaler.good_steps == 0
    # the losses returned are the step's first evaluation's, at the unchanged point
    x, y = (p.detach() for p in game.params())
    f = (x.half() @ game.A.half() @ y.half()).float()
    if last == 1:  # the first evaluation is the one with the overflowing term
        f = f + (x.half() * 1e4).float().sum()
    assert float(losses[0]) == float(f) and float(losses[1]) == -float(f)
    # a step after it is the step that would have been taken: the same as a fresh run's
    game.overflow_at = None
    twin, twin_opt = _make(name, options, LossScaler(init_scale=2.0 ** 9), wrap)
    for _ in range(3):
        twin_opt.step(twin)
    opt.step(game)
    twin_opt.step(twin)
    assert all(torch.equal(p, q) for p, q in zip(game.params(), twin.params()))


def test_skipped_first_step_leaves_no_state_and_scale_halves_each_time():
    scaler = LossScaler(init_scale=2.0 ** 40)   # S·|A y| > 65504: every field overflows
    game, opt = _make("extragradient", {}, scaler)
    params = [p.detach().clone() for p in game.params()]
    for k in range(1, 6):
        opt.step(game)
        assert opt.step_skipped and scaler.scale == 2.0 ** 40 * 2.0 ** -k and scaler.skipped_steps == k
    assert all(torch.equal(p, q) for p, q in zip(game.params(), params))
    assert opt.state_dict()["state"] == {}  # no Adam moments, no step count
    assert opt.grad_evals == 5               # the work spent is still counted


def test_scale_grows_after_growth_interval_good_steps():
    scaler = LossScaler(init_scale=2.0 ** 4, growth_interval=3, growth_factor=4.0, backoff_factor=0.25)
    game, opt = _make("simgd", {}, scaler)
    scales = []
    for step in range(14):
        game.overflow_at = 1 if step == 7 else None
        opt.step(game)
        scales.append(scaler.scale)
    # ×4 after every 3 consecutive good steps; the skip at step 7 quarters S and restarts the count
    assert scales == [16, 16, 64, 64, 64, 256, 256, 64, 64, 64, 256, 256, 256, 1024]
    assert scaler.skipped_steps == 1 and scaler.good_steps == 0


def test_scaling_keeps_gradients_that_float16_flushes_to_zero():
    # c = 2⁻²⁶: the float16 adjoint of xᵀAy is c, under half float16's smallest subnormal
    # (2⁻²⁴), so it rounds to 0 and so does the field; scaled by 2²⁶ it is 1. The reference:
    # the field in float64.
    c = 2.0 ** -26
    ref_game = Float16Bilinear(None, c)
    x, y = (p.detach().half().double() for p in ref_game.params())
    A = ref_game.A.half().double()
    expected = [c * (A @ y), -c * (A.T @ x)]

    def error(scale):
        game = Float16Bilinear(None if scale is None else LossScaler(init_scale=scale), c)
        opt = OPTIMIZERS["simgd"](game.players, lr=1.0)
        with loss_scaling.scaling(game.loss_scaler):
            _, v = opt.field(game)
        return max(float((v[k][0].double() - e).norm() / e.norm()) for k, e in enumerate(expected))

    assert error(2.0 ** 26) < 2e-3          # float16 rounding of the products (2⁻¹¹ each)
    assert error(None) == 1.0               # unscaled: the field is exactly zero


def test_products_of_the_field_are_scaled_and_checked():
    # Jᵀu of the field of L₀ = L = ½ s·‖x.half()‖², J = s·I: the product's backward runs at S·u.
    x = torch.randn(5, dtype=torch.float32).requires_grad_()
    s = 2.0 ** 10
    with torch.enable_grad():
        f = (0.5 * s * x.half().float() ** 2).sum()
        (v,) = torch.autograd.grad(f, [x], create_graph=True)
    u = torch.full((5,), 0.1)
    with loss_scaling.scaling(LossScaler(init_scale=2.0 ** 2)):
        (jtu,) = grad_or_zeros([v], [x], [u], create_graph=False)
    torch.testing.assert_close(jtu, s * u, rtol=1e-3, atol=0)
    with loss_scaling.scaling(LossScaler(init_scale=2.0 ** 10)), pytest.raises(loss_scaling.Overflow):
        grad_or_zeros([v], [x], [u], create_graph=False)  # S·s·u ≈ 10⁵ > 65504 in float16


class NaNField(Float16Bilinear):
    def losses(self):
        f, _ = super().losses()
        f = f + float("nan") * self.players[0][0].sum()  # a NaN field at every scale
        return [f, -f]


def test_a_field_that_is_non_finite_at_any_scale_is_reported():
    scaler = LossScaler(init_scale=2.0 ** -20)
    game = NaNField(scaler)
    opt = OPTIMIZERS["simgd"](game.players, lr=0.05)
    for k in range(1, 5):
        opt.step(game)
        assert scaler.scale == 2.0 ** (-20 - k)
    with pytest.raises(ValueError, match="non-finite at any scale"):
        opt.step(game)  # 2⁻²⁵: below float16's smallest number


@pytest.mark.parametrize("options, message", [
    ({"init_scale": 0}, "loss_scaling.init_scale: expected a positive finite number"),
    ({"init_scale": float("inf")}, "loss_scaling.init_scale"),
    ({"growth_factor": 1.0}, "loss_scaling.growth_factor: expected a finite number > 1"),
    ({"backoff_factor": 1.0}, r"loss_scaling.backoff_factor: expected a number in \(0, 1\)"),
    ({"backoff_factor": True}, "loss_scaling.backoff_factor"),
    ({"growth_interval": 0}, "loss_scaling.growth_interval: expected a positive integer"),
    ({"growth_interval": 2.5}, "loss_scaling.growth_interval"),
])
def test_bad_scaler_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        LossScaler(**options)


def test_scaler_state_round_trips_and_bad_state_is_refused():
    a = LossScaler(init_scale=8.0, growth_interval=2)
    for skipped in (False, True, False):
        a.update(skipped)
    b = LossScaler()
    b.load_state_dict(a.state_dict())
    assert b.state_dict() == a.state_dict() == {"scale": 4.0, "good_steps": 1, "skipped_steps": 1}
    with pytest.raises(ValueError, match="state: expected a LossScaler state dict"):
        b.load_state_dict({"scale": 1.0})
