"""Bad input, tried as a hostile user would: for each, a clear error naming the argument,
nothing written that misleads, nothing lost. Hypothesis draws the large spaces (option
names, config values, tensor shapes and dtypes)."""
import json
import math
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gandyn import config as configs
from gandyn.cli import main as cli
from gandyn.games import Bilinear
from gandyn.games.registry import GAMES
from gandyn.metrics import frechet_distance
from gandyn.nn import gradient_penalty
from gandyn.ops.frechet import jacobi_eigh, trace_sqrt
from gandyn.optim import OPTIMIZERS, LookaheadMinmax
from gandyn.options import _accepted, _hints, type_ok
from gandyn.train import read_metrics, read_status, run_experiment

REPO = Path(__file__).resolve().parents[1]
NAMES = st.from_regex(r"[a-z][a-z_]{0,11}", fullmatch=True)
# one value of each kind a TOML file or a KEY=VALUE override can hold
VALUES = st.sampled_from(["x", "10", True, False, 1.5, -3, 0, [1, 2], {"a": 1}, float("nan")])
BASE = {"game": "bilinear", "game_args": {"dim": 2}, "optimizer": "simgd", "lr": 0.1, "steps": 10,
        "log_every": 5, "checkpoint_every": 5}
fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished run that every refused config below must leave exactly as it was."""
    d = tmp_path_factory.mktemp("finished")
    run_experiment(BASE, d)
    return d


def _snapshot(d: Path) -> dict:
    return {p.relative_to(d): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _refused(finished: Path, cfg: dict, pattern: str, resumes=(True, False)) -> None:
    """Options checked before building (`check_config`) are named whether the run would
    resume or start afresh (--fresh); those only the build checks (nested GAN tables,
    lookahead values), when starting afresh: resuming first says the config differs."""
    before = _snapshot(finished)
    for resume in resumes:
        with pytest.raises(ValueError, match=pattern):
            run_experiment(cfg, finished, resume=resume)
    assert _snapshot(finished) == before


def _game() -> Bilinear:
    return Bilinear.random(2, seed=0)


# -------------------------------------------------------------- optimizer options
@given(name=st.sampled_from(sorted(OPTIMIZERS)), key=NAMES, value=VALUES)
def test_unknown_optimizer_option_is_refused_listing_the_valid_ones(name, key, value):
    cls = OPTIMIZERS[name]
    if key in cls.option_names():
        return
    valid = re.escape(str(cls.option_names()))
    with pytest.raises(ValueError, match=rf"{key}: unknown option of {cls.__name__}; expected one of {valid}"):
        cls(_game().players, lr=0.1, **{key: value})


def _typed_options(cls):
    """(option, accepted types) for every annotated constructor option of cls and its bases."""
    out = {}
    for c in cls.__mro__:
        if "__init__" in vars(c) and c.__module__.startswith("gandyn"):
            for k, ann in _hints(c.__init__).items():
                if k not in ("return", "players") and _accepted(ann) is not None:
                    out.setdefault(k, _accepted(ann))
    return sorted(out.items())


@given(data=st.data(), name=st.sampled_from(sorted(OPTIMIZERS)), value=VALUES)
def test_wrong_type_of_optimizer_option_is_refused_naming_it(data, name, value):
    key, accepted = data.draw(st.sampled_from(_typed_options(OPTIMIZERS[name])))
    if type_ok(value, accepted):
        return
    with pytest.raises(ValueError, match=rf"\b{key}\b"):
        OPTIMIZERS[name](_game().players, **{"lr": 0.1, key: value})


@fixture_ok
@given(name=st.sampled_from(sorted(OPTIMIZERS)), key=NAMES)
def test_unknown_optimizer_args_key_leaves_the_run_untouched(finished, name, key):
    if key in OPTIMIZERS[name].option_names():
        return
    _refused(finished, {**BASE, "optimizer": name, "optimizer_args": {key: 1.0}},
             rf"optimizer_args\.{key}: unknown option")


def test_cgd_tol_typo_on_the_command_line_is_refused_and_not_written(tmp_path, capsys):
    out = tmp_path / "r"
    assert cli(["run", "bilinear", "--optimizer", "cgd", "--opt-arg", "tol=-1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "optimizer_args.tol: unknown option of CGD" in err and "cg_rtol" in err
    assert not out.exists()  # no config.toml claiming tol was applied


@given(key=NAMES)
def test_unknown_param_group_option_is_refused(key):
    from gandyn.optim import SimGD

    valid = {"params", "player", "lr", "base", "momentum", "betas", "eps"}
    if key in valid:
        return
    g = _game()
    with pytest.raises(ValueError, match=rf"param group option '{key}': unknown to SimGD"):
        SimGD([{"params": g.players[0], "player": 0, key: 0.5}, {"params": g.players[1], "player": 1}])


# ------------------------------------------------------------------ config tables
TOP = {
    "steps": st.sampled_from([True, 1.5, 0, -2, "10", None]),
    "log_every": st.sampled_from([False, 2.0, 0, "5"]),
    "checkpoint_every": st.sampled_from([True, 0.5, -1]),
    "seed": st.sampled_from([1.5, True, -1, "0"]),
    "diagnostics_every": st.sampled_from([-1, 1.0, True]),
    "eval_every": st.sampled_from([-5, "1", 2.5]),
    "diverge_above": st.sampled_from([-1.0, 0, float("nan"), "big", True]),
    "lr": st.sampled_from([0, -0.1, float("inf"), float("nan"), "0.1", True]),
    "tensorboard": st.sampled_from([1, "yes", None]),
    "device": st.sampled_from([0, None, True]),
    "game": st.sampled_from([1, None, ["bilinear"]]),
    "optimizer": st.sampled_from([2, None]),
    "game_args": st.sampled_from([1, "dim=3", [1]]),
    "lookahead": st.sampled_from([5, "k=5"]),
}


@fixture_ok
@given(data=st.data(), key=st.sampled_from(sorted(TOP)))
def test_wrong_top_level_value_is_refused_in_one_line_naming_the_key(finished, data, key):
    value = data.draw(TOP[key])
    before = _snapshot(finished)
    with pytest.raises(ValueError, match=rf"^{key}: expected") as e:
        run_experiment({**BASE, key: value}, finished)
    assert "\n" not in str(e.value)
    assert _snapshot(finished) == before


@fixture_ok
@given(key=NAMES)
def test_unknown_lookahead_and_player_keys_are_refused(finished, key):
    if key not in configs.LOOKAHEAD_OPTIONS:
        _refused(finished, {**BASE, "lookahead": {"k": 2, key: 1}}, rf"lookahead\.{key}: unknown option; "
                 rf"expected one of \['alpha', 'k', 'outer', 'seed'\]")
        _refused(finished, {**BASE, "lookahead": {"k": 2, "outer": {"k": 3, key: 1}}},
                 rf"lookahead\.outer\.{key}: unknown option", (False,))
    if key not in configs.AVERAGING_OPTIONS:
        _refused(finished, {**BASE, "averaging": {key: 1}}, rf"averaging\.{key}: unknown option; "
                 rf"expected one of \['decay', 'mode', 'start'\]")
    if key not in configs.PLAYER_OPTIONS:
        _refused(finished, {**BASE, "players": {"x": {key: 1}}}, rf"players\.x\.{key}: unknown option")


@fixture_ok
@given(data=st.data(), game=st.sampled_from(["bilinear", "quadratic", "dirac"]), value=VALUES)
def test_wrong_type_of_game_arg_is_refused_naming_it(finished, data, game, value):
    typed = sorted((k, _accepted(a)) for k, a in _hints(GAMES[game]).items()
                   if k != "return" and _accepted(a) is not None)
    key, accepted = data.draw(st.sampled_from(typed))
    if type_ok(value, accepted):
        return
    _refused(finished, {**BASE, "game": game, "game_args": {key: value}}, rf"^game_args\.{key}: expected")


@fixture_ok
@given(game=st.sampled_from(["bilinear", "quadratic", "dirac"]), key=NAMES)
def test_unknown_game_arg_is_refused(finished, game, key):
    import inspect

    if key in inspect.signature(GAMES[game]).parameters:
        return
    _refused(finished, {**BASE, "game": game, "game_args": {key: 1}}, rf"unknown keys \['{key}'\]")


@pytest.mark.parametrize("table, pattern", [
    ({"data_args": {"sigmaa": 0.1}}, "unknown keyword 'sigmaa'"),
    ({"data_args": {"sigma": "wide"}}, r"ring\.sigma: expected a number"),
    ({"model_args": {"hiden": 8}}, "unknown shared keyword 'hiden'"),
    ({"model_args": {"hidden": "8"}}, r"mlp G\.hidden: expected an integer"),
    ({"g_args": {"depth": 1.5}}, r"mlp G\.depth: expected an integer"),
    ({"d_args": {"spectral_norm": "yes"}}, r"mlp D\.spectral_norm: expected true or false"),
    ({"batch_size": "64"}, r"game_args\.batch_size: expected an integer"),
    ({"penalty_weight": True}, r"game_args\.penalty_weight: expected a number"),
])
def test_gan_tables_refuse_unknown_keys_and_wrong_types(finished, table, pattern):
    _refused(finished, {**BASE, "game": "gan", "game_args": {"data": "ring", **table}}, pattern, (False,))


def test_lookahead_values_are_checked(finished):
    _refused(finished, {**BASE, "lookahead": {"k": 0}}, "k: expected a positive int", (False,))
    _refused(finished, {**BASE, "lookahead": {"k": 2, "alpha": 1.5}}, r"alpha: expected a number in \(0, 1\]",
             (False,))
    g = _game()
    with pytest.raises(ValueError, match="k: expected a positive int"):
        LookaheadMinmax(OPTIMIZERS["simgd"](g.players), k=True)


# ------------------------------------------------------------------------ penalties
def _linear_D(w):
    return lambda x: x.reshape(x.shape[0], -1) @ w


@given(bad=st.sampled_from([float("nan"), float("inf"), -1.0, -1e-12, "10", True]),
       kind=st.sampled_from(["r1", "r2", "wgan-gp"]))
def test_penalty_weight_must_be_finite_and_nonnegative(bad, kind):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"^weight: expected a finite number >= 0"):
        gradient_penalty(_linear_D(torch.ones(3)), x, x + 1, kind=kind, weight=bad)


@given(bad=st.sampled_from([float("nan"), -0.5, float("-inf"), "1"]))
def test_penalty_target_must_be_finite_and_nonnegative(bad):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=r"^target: expected a finite number >= 0"):
        gradient_penalty(_linear_D(torch.ones(3)), x, x + 1, kind="wgan-gp", target=bad)
    from gandyn.ops.gradient_penalty import gradient_penalty as op
    with pytest.raises(ValueError, match=r"^target: expected"):
        op(torch.ones(2, 3), bad)


@pytest.mark.parametrize("kind", ["r1", "r2"])
def test_a_target_with_r1_r2_is_refused_not_ignored(kind):
    x = torch.randn(4, 3)
    with pytest.raises(ValueError, match=rf"target: {kind} penalizes the squared norm"):
        gradient_penalty(_linear_D(torch.ones(3)), x, x, kind=kind, target=2.0)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), gamma=st.floats(0, 10),
       kind=st.sampled_from(["r1", "r2"]))
def test_r1_needs_only_real_and_r2_only_fake(shape, gamma, kind):
    # D(x) = <w, x>: ∇ₓD = w at every sample, so R1 = R2 = γ/2 ‖w‖² exactly.
    x = torch.randn(3, *shape, dtype=torch.float64)
    w = torch.randn(math.prod(shape), dtype=torch.float64)
    sample = {"real": x} if kind == "r1" else {"fake": x}
    p = gradient_penalty(_linear_D(w), **sample, kind=kind, weight=gamma)
    assert float(p) == pytest.approx(gamma / 2 * float(w @ w), rel=1e-12, abs=1e-300)
    missing = "real" if kind == "r1" else "fake"
    with pytest.raises(TypeError, match=rf"^{missing}: expected a Tensor"):
        gradient_penalty(_linear_D(w), **({"fake": x} if kind == "r1" else {"real": x}), kind=kind)


@given(dtypes=st.sampled_from([(torch.float32, torch.float64), (torch.float64, torch.float32),
                               (torch.float32, torch.float16), (torch.bfloat16, torch.float32)]))
def test_wgan_gp_real_and_fake_of_mixed_dtypes_are_refused(dtypes):
    real, fake = torch.randn(4, 3, dtype=dtypes[0]), torch.randn(4, 3, dtype=dtypes[1])
    with pytest.raises(ValueError, match=r"^real, fake: expected one dtype and device"):
        gradient_penalty(_linear_D(torch.ones(3)), real, fake, kind="wgan-gp")


# ------------------------------------------------------------------------- Fréchet
@given(d=st.integers(1, 6), seed=st.integers(0, 2 ** 16), which=st.sampled_from([1, 2, 12]),
       method=st.sampled_from(["eigh", "jacobi"]))
def test_all_zero_covariance_gives_the_exact_distance(d, seed, which, method):
    # Σ₁ = 0 (a generator collapsed to a point): Tr sqrt(Σ₁Σ₂) = 0, so d² = ‖μ₁ − μ₂‖² + Tr Σ₂.
    g = torch.Generator().manual_seed(seed)
    mu1, mu2 = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    B = torch.randn(d, d, generator=g, dtype=torch.float64)
    S = B @ B.T
    zero = torch.zeros(d, d, dtype=torch.float64)
    s1, s2 = {1: (zero, S), 2: (S, zero), 12: (zero, zero)}[which]
    expected = float(((mu1 - mu2) ** 2).sum() + s1.trace() + s2.trace())
    got = float(frechet_distance(mu1, s1, mu2, s2, method=method))
    assert got == pytest.approx(expected, rel=1e-12)


@given(where=st.sampled_from(["nan", "inf"]), arg=st.sampled_from(["sigma1", "sigma2"]))
def test_trace_sqrt_checks_finiteness_itself(where, arg):
    S = torch.eye(3, dtype=torch.float64)
    bad = S.clone()
    bad[1, 1] = float(where)
    args = (bad, S) if arg == "sigma1" else (S, bad)
    with pytest.raises(ValueError, match=rf"trace_sqrt: {arg} contains non-finite values"):
        trace_sqrt(*args)
    with pytest.raises(ValueError, match="jacobi_eigh: A contains non-finite values"):
        jacobi_eigh(bad)


# ---------------------------------------------------------------------- CLI friction
def test_run_without_a_game_refuses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="no game given"):
        cli(["run", "--steps", "3"])
    assert not (tmp_path / "runs").exists()


@given(bad=st.sampled_from(["nosuch", "simgd,nosuch", "simgd, extragradient,sga,cgd,typo"]))
@fixture_ok
def test_sweep_checks_every_name_before_running_any(tmp_path, bad, capsys):
    out = tmp_path / "sweep"
    assert cli(["sweep", "bilinear", "--optimizers", bad, "--lrs", "0.1", "--steps", "3", "--out", str(out)]) == 2
    assert "optimizer: expected one of" in capsys.readouterr().err
    assert not out.exists()


def test_sweep_checks_every_step_size_before_running_any(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli(["sweep", "bilinear", "--optimizers", "simgd", "--lrs", "0.1", "-0.5", "--steps", "3",
                "--out", str(out)]) == 2
    assert "lr: expected a finite step size > 0, got -0.5" in capsys.readouterr().err
    assert not out.exists()


def test_plot_with_an_unknown_x_is_a_clear_error(finished, tmp_path, capsys):
    assert cli(["plot", str(finished), "--x", "nosuch", "--out", str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert "x: " in err and "'nosuch'" in err and "grad_evals" in err
    assert not (tmp_path / "a.png").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_bench_on_cuda_without_a_gpu_is_a_clear_error(capsys):
    from gandyn.bench import main as bench

    with pytest.raises(SystemExit) as e:
        bench(["optim", "--device", "cuda"])
    assert e.value.code == 2 and "torch sees no CUDA device" in capsys.readouterr().err


def test_bench_json_is_strict(tmp_path, monkeypatch):
    from gandyn.bench import main as bench

    rows = [{"suite": "optim", "case": "c", "ours_ms": 1.5, "ref_ms": float("nan"), "speedup": float("inf"),
             "extra": [float("-inf"), 2.0]}]
    monkeypatch.setitem(sys.modules, "gandyn.bench.optim", types.SimpleNamespace(run=lambda device, quick: rows))
    path = tmp_path / "b.json"
    assert bench(["optim", "--device", "cpu", "--json", str(path)]) == 0

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    parsed = json.loads(path.read_text(), parse_constant=refuse)
    assert parsed == [{"suite": "optim", "case": "c", "ours_ms": 1.5, "ref_ms": None, "speedup": None,
                       "extra": [None, 2.0]}]


def test_gandyn_ops_names_its_op_modules():
    code = "import gandyn.ops; print(callable(gandyn.ops.gradient_penalty.gradient_penalty), " \
           "callable(gandyn.ops.frechet.trace_sqrt), callable(gandyn.ops.spectral_norm.normalize))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, check=True).stdout
    assert out.split() == ["True", "True", "True"]


def test_diagnose_prints_no_torch_jit_warning(tmp_path):
    run_experiment({**BASE, "steps": 2, "checkpoint_every": 2}, tmp_path)
    proc = subprocess.run([sys.executable, "-W", "error::FutureWarning", "-m", "gandyn", "diagnose", str(tmp_path)],
                          capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr


def test_metrics_status_untouched_by_all_of_the_above(finished):
    assert read_status(finished) == {"status": "finished", "step": 10}
    assert [r["step"] for r in read_metrics(finished)] == [0, 5, 10]
