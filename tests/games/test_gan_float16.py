"""GANs at precision = "float16" on the CPU: autocast with dynamic loss scaling
(gandyn/optim/loss_scaling.py). An overflowing scale skips steps without touching parameters,
optimizer state or the EMA of G; at a valid scale the field is the float32 game's to float16
rounding, for every architecture; resume is exact, scale included; bad options are refused."""
from __future__ import annotations

from copy import deepcopy

import pytest
import torch
from torch import nn

from gandyn.games.base import flatten
from gandyn.games.gan import GANGame
from gandyn.games.registry import make_game
from gandyn.optim import OPTIMIZERS, loss_scaling
from gandyn.train import load_run, read_metrics, run_experiment

RING = {"data": "ring", "model": "mlp", "model_args": {"hidden": 32}, "batch_size": 64}


def _game(precision="float16", **kw):
    torch.manual_seed(0)
    args = {**RING, **kw}
    return make_game("gan", precision=precision, seed=0, **args)


def _no_counters(sd: dict) -> dict:
    return {k: _no_counters(v) if isinstance(v, dict) else v for k, v in sd.items() if k != "counters"}


def _equal(a, b) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("name, options", [("simgd", {}), ("extragradient", {}), ("altgd", {"order": [1, 0]}),
                                           ("unrolled", {"unroll_steps": 2}),
                                           ("unrolled", {"unroll_steps": 2, "unroll_base": "adam"}),
                                           ("consensus", {})])
def test_huge_scale_skips_steps_bit_identically_and_halves(name, options):
    game = _game(ema=0.9, penalty="r1", loss_scaling={"init_scale": 2.0 ** 8})
    opt = OPTIMIZERS[name](game.players, lr=1e-3, base="adam", **options)
    for _ in range(2):
        opt.step(game)
    scaler = game.loss_scaler
    assert scaler.skipped_steps == 0
    scaler.scale = 2.0 ** 40   # D's logit adjoints ~2⁴⁰/64 overflow float16
    params = [p.detach().clone() for p in game.params()]
    state, ema = _no_counters(opt.state_dict()), deepcopy(game.G_ema.state_dict())
    for k in range(1, 4):
        losses = opt.step(game)
        assert opt.step_skipped and scaler.scale == 2.0 ** 40 * 2.0 ** -k and scaler.skipped_steps == k
        assert all(torch.isfinite(l) for l in losses)
    assert all(torch.equal(p, q) for p, q in zip(game.params(), params))
    assert _equal(_no_counters(opt.state_dict()), state)
    assert _equal(game.G_ema.state_dict(), ema)  # a skipped step is no step for the EMA of G either


def _rel(a, b) -> float:
    a, b = flatten([t.double() for t in a]), flatten([t.double() for t in b])
    return float((a - b).norm() / b.norm())


def test_unscaled_field_and_hamiltonian_gradient_match_the_float32_game():
    g16, g32 = _game(loss_scaling={"init_scale": 2.0 ** 8}), _game("float32")
    assert all(torch.equal(p, q) for p, q in zip(g16.params(), g32.params()))
    o16 = OPTIMIZERS["consensus"](g16.players, lr=1e-3)
    o32 = OPTIMIZERS["consensus"](g32.players, lr=1e-3)
    with loss_scaling.scaling(g16.loss_scaler):
        _, v16, h16 = o16.field_and_hamiltonian_grad(g16)
    _, v32, h32 = o32.field_and_hamiltonian_grad(g32)
    for k in range(2):
        # float16 keeps 11 significant bits (2⁻¹¹ ≈ 5e-4 a rounding); through the layers and
        # the batch mean the field is measured at 2e-3 (G) and 3e-3 (D), products 1e-2
        assert _rel(v16[k], v32[k]) < 1e-2
        assert _rel(h16[k], h32[k]) < 3e-2
        assert all(t.dtype == torch.float32 for t in [*v16[k], *h16[k]])


def test_the_logged_field_is_the_optimizers_scaled_field():
    game = _game(loss_scaling={"init_scale": 2.0 ** 8})
    opt = OPTIMIZERS["simgd"](game.players, lr=1e-3)
    with loss_scaling.scaling(game.loss_scaler):
        _, v = opt.field(game)
    assert all(torch.equal(a, b) for k in range(2) for a, b in zip(game.vector_field()[k], v[k]))
    game.loss_scaler.scale = 2.0 ** 40   # overflows: the unscaled float16 field, finite
    assert all(torch.isfinite(t).all() for f in game.vector_field() for t in f)


CPU_MODELS = [("mlp", "ring", {}, {"hidden": 16}), ("pacgan-mlp", "ring", {}, {}),
              ("dcgan", "digits", {"size": 16}, {"width": 8, "latent_dim": 16}),
              ("cgan-dcgan", "digits", {"size": 16}, {"width": 8}),
              ("sngan-cnn", "digits", {"size": 32}, {"width": 8}),
              ("sngan-resnet", "digits", {"size": 32}, {"width": 8}),
              ("sngan-projection", "digits", {"size": 32}, {"width": 8})]


@pytest.mark.parametrize("model, data, data_args, model_args", CPU_MODELS)
def test_every_architecture_runs_float16_on_the_cpu(model, data, data_args, model_args):
    # torch 2.14's CPU autocast runs linear, conv, transposed conv in float16; batch norm is
    # kept in float32 (its second derivative, here through the R1 penalty, overflows float16)
    kw = dict(data=data, data_args=data_args, model=model, model_args=model_args, batch_size=16, penalty="r1")
    g16, g32 = _game(loss_scaling={"init_scale": 2.0 ** 8}, **kw), _game("float32", **kw)
    seen = []
    layer = next(m for m in g16.D.modules() if isinstance(m, (nn.Linear, nn.Conv2d)))
    layer.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    o16, o32 = (OPTIMIZERS["simgd"](g.players, lr=1e-3) for g in (g16, g32))
    with loss_scaling.scaling(g16.loss_scaler):
        _, v16 = o16.field(g16)
    _, v32 = o32.field(g32)
    assert seen and set(seen) == {torch.float16}
    for k in range(2):  # batch 16: measured at most 3.6e-2 (sngan-cnn's G)
        assert _rel(v16[k], v32[k]) < 5e-2
    o16.step(g16)
    assert not o16.step_skipped


def test_an_op_without_a_float16_cpu_kernel_is_named():
    class DetDiscriminator(nn.Module):  # torch 2.14 has no float16 CPU kernel for linalg.det (LU)
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 4)

        def forward(self, x):
            return torch.linalg.det(self.lin(x).reshape(-1, 2, 2))

    G = nn.Linear(2, 2)
    G.latent_dim = 2
    game = GANGame(G, DetDiscriminator(), lambda n: torch.randn(n, 2), batch_size=4, precision="float16")
    with pytest.raises(ValueError, match=r"precision: float16 autocast on cpu fails .*game_args.precision"):
        game.losses()


SCALED = {"game": "gan", "optimizer": "extragradient", "lr": 1e-3, "steps": 24, "log_every": 1,
          "checkpoint_every": 6, "eval_every": 0,
          "game_args": {**RING, "model_args": {"hidden": 16}, "batch_size": 32, "precision": "float16",
                        "loss_scaling": {"init_scale": 2.0 ** 20, "growth_interval": 4}},
          "optimizer_args": {"base": "adam"}}


def test_resume_mid_run_equals_the_uninterrupted_run_scale_included(tmp_path):
    assert run_experiment(SCALED, tmp_path / "full")["status"] == "finished"
    run_experiment({**SCALED, "steps": 10}, tmp_path / "resumed")   # last checkpoint: step 10
    run_experiment(SCALED, tmp_path / "resumed")
    full, resumed = read_metrics(tmp_path / "full"), read_metrics(tmp_path / "resumed")
    assert full == resumed
    # the logged scale follows GradScaler's rule from the logged skips: ½ at a skip, ×2 after 4 good steps
    scale, good = 2.0 ** 20, 0
    for before, row in zip(full, full[1:]):
        if row["skipped_steps"] > before["skipped_steps"]:
            scale, good = scale / 2, 0
        else:
            good += 1
            scale, good = (scale * 2, 0) if good == 4 else (scale, good)
        assert row["loss_scale"] == scale, row
    assert full[5]["skipped_steps"] == 5 and full[-1]["skipped_steps"] == 8  # 2²⁰ … 2¹⁶ overflow, then 2¹⁶ does
    a, b = load_run(tmp_path / "full"), load_run(tmp_path / "resumed")
    assert a.game.loss_scaler.state_dict() == b.game.loss_scaler.state_dict()
    assert all(torch.equal(p, q) for p, q in zip(a.game.params(), b.game.params()))


@pytest.mark.parametrize("game_args, message", [
    ({"precision": "float64"}, "precision: expected one of"),
    ({"precision": "bfloat16", "loss_scaling": {"init_scale": 1024.0}},
     "loss_scaling: loss scaling is for precision"),
    ({"precision": "float16", "loss_scaling": {"grow_every": 10}},
     r"loss_scaling.grow_every: unknown option; expected one of \['backoff_factor'"),
    ({"precision": "float16", "loss_scaling": {"growth_interval": "10"}},
     "loss_scaling.growth_interval: expected an integer"),
    ({"precision": "float16", "loss_scaling": {"init_scale": -1.0}}, "loss_scaling.init_scale"),
    ({"precision": "float16", "loss_scaling": 1024}, "game_args.loss_scaling: expected a table"),
])
def test_bad_precision_options_are_refused(tmp_path, game_args, message):
    cfg = {**SCALED, "game_args": {**RING, **game_args}}
    with pytest.raises(ValueError, match=message):
        run_experiment(cfg, tmp_path / "r")
    assert not (tmp_path / "r").exists()
