"""The training loop: a config goes in, a run directory comes out.

RUN_DIR/
  config.toml        the full config (defaults filled in)
  metrics.jsonl      one JSON line per logged step (and the game's evaluation every eval_every)
  status.json        {"status": "running" | "finished" | "diverged", "step": k, "reason": ...}
  checkpoints/step_XXXXXXXX.pt   game, optimizer and RNG state, written atomically
  samples/step_XXXXXXXX.png      a GAN's samples at each evaluation
  tensorboard/       TensorBoard event files (tensorboard = true)

Logging and evaluation run inside `game.preserved()` where the game has it (a GAN's
batch-norm statistics, spectral-norm vectors and RNG streams are put back), so a run's
trajectory does not depend on log_every or eval_every.

Running a config into a directory that already holds checkpoints resumes from the
last one: metric lines logged after that checkpoint are dropped and recomputed,
so a resumed run continues the same metric stream as an uninterrupted one.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from gandyn import config as configs
from gandyn.games.base import Game, flatten
from gandyn.games.registry import make_game

CHECKPOINT = re.compile(r"step_(\d{8})\.pt$")


def build_game(cfg: dict) -> Game:
    """The config's game, on its device (a builder that takes no `device` runs on the CPU)."""
    import inspect

    from gandyn.games.registry import GAMES

    kwargs = dict(cfg["game_args"])
    builder = GAMES.get(cfg["game"])
    if builder is not None and "device" in inspect.signature(builder).parameters:
        kwargs["device"] = cfg["device"]
    elif cfg["device"] != "cpu":
        raise ValueError(f"device: the game {cfg['game']!r} runs on the CPU only, got {cfg['device']!r}")
    return make_game(cfg["game"], seed=cfg["seed"], **kwargs)


def _player_groups(cfg: dict, game: Game) -> list[dict]:
    """One param group per player, with the options of [players.NAME] (by name or index)."""
    names = list(getattr(game, "player_names", ()) or ())
    valid = names + [str(i) for i in range(game.num_players)]
    for key in cfg["players"]:
        if key not in valid:
            raise ValueError(f"players.{key}: no such player; expected one of {valid}")
    groups = []
    for i, ps in enumerate(game.players):
        opts = {**cfg["players"].get(str(i), {}),
                **(cfg["players"].get(names[i], {}) if i < len(names) else {})}
        if "betas" in opts:
            opts["betas"] = tuple(opts["betas"])
        groups.append({"params": list(ps), "player": i, **opts})
    return groups


def _lookahead(opt, table: dict):
    """LookaheadMinmax(opt, k, alpha, seed) of a [lookahead] table; its sub-table
    [lookahead.outer] (same keys, recursively) wraps it once more: nested lookahead."""
    from gandyn.optim import LookaheadMinmax

    table = dict(table)
    outer = table.pop("outer", None)
    unknown = sorted(set(table) - {"k", "alpha", "seed"})
    if unknown:
        raise ValueError(f"lookahead: unknown keys {unknown}; expected some of ['alpha', 'k', 'outer', 'seed']")
    opt = LookaheadMinmax(opt, **table)
    if outer is not None:
        if not isinstance(outer, dict):
            raise ValueError(f"lookahead.outer: expected a table, got {outer!r}")
        opt = _lookahead(opt, outer)
    return opt


def make_optimizer(cfg: dict, game: Game):
    from gandyn.optim import OPTIMIZERS, Averaged

    name = cfg["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {name!r}")
    try:
        opt = OPTIMIZERS[name](_player_groups(cfg, game), lr=cfg["lr"], **cfg["optimizer_args"])
    except TypeError as e:  # an unknown keyword in [optimizer_args]
        raise ValueError(f"optimizer_args for {name!r}: {e}") from None
    if cfg["lookahead"]:
        opt = _lookahead(opt, cfg["lookahead"])
    if cfg["averaging"]:
        table = dict(cfg["averaging"])
        unknown = sorted(set(table) - {"mode", "decay", "start"})
        if unknown:
            raise ValueError(f"averaging: unknown keys {unknown}; expected some of ['decay', 'mode', 'start']")
        opt = Averaged(opt, **table)
    return opt


@dataclass
class Run:
    """A run loaded from its directory: game and optimizer at checkpoint `step`."""
    dir: Path
    config: dict
    game: Game
    optimizer: object
    step: int
    rng: torch.Tensor  # torch's CPU RNG state at the checkpoint (a resumed run restores it)


def checkpoints(run_dir) -> list[int]:
    d = Path(run_dir) / "checkpoints"
    steps = [int(m.group(1)) for p in d.glob("step_*.pt") if (m := CHECKPOINT.search(p.name))]
    return sorted(steps)


def _atomic_write_bytes(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_json(path: Path, obj) -> None:
    _atomic_write_bytes(path, lambda f: f.write(json.dumps(obj).encode()))


def save_checkpoint(run_dir, step: int, game: Game, optimizer) -> Path:
    path = Path(run_dir) / "checkpoints" / f"step_{step:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "game": game.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": torch.get_rng_state()}
    _atomic_write_bytes(path, lambda f: torch.save(state, f))
    return path


def load_run(run_dir, step: int | None = None) -> Run:
    """Game and optimizer of a run at checkpoint `step` (the latest by default)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise FileNotFoundError(f"run_dir: {run_dir} has no config.toml (not a run directory)")
    cfg = configs.with_defaults(configs.load(run_dir / "config.toml"))
    steps = checkpoints(run_dir)
    if not steps:
        raise FileNotFoundError(f"run_dir: {run_dir} has no checkpoints")
    if step is None:
        step = steps[-1]
    elif step not in steps:
        raise ValueError(f"step: no checkpoint at step {step} in {run_dir}; available: {steps}")
    game = build_game(cfg)
    opt = make_optimizer(cfg, game)
    state = torch.load(run_dir / "checkpoints" / f"step_{step:08d}.pt", weights_only=False)
    game.load_state_dict(state["game"])
    opt.load_state_dict(state["optimizer"])
    return Run(run_dir, cfg, game, opt, step, state["rng"])


def _first_coordinates(game: Game) -> dict:
    """The first coordinate of each player: the axes of trajectory plots."""
    return {f"coord{i}": float(ps[0].detach().reshape(-1)[0]) for i, ps in enumerate(game.players) if ps}


def _preserved(game: Game):
    import contextlib
    return game.preserved() if hasattr(game, "preserved") else contextlib.nullcontext()


def _point_metrics(game: Game, losses) -> dict:
    """‖v‖, the losses, the game's last stats, its distance to equilibrium and first
    coordinates, at the game's current parameters."""
    with _preserved(game):
        field = flatten([g.detach() for gs in game.vector_field() for g in gs])
        stats = {k: float(v) for k, v in getattr(game, "last_stats", {}).items()}
    row = {"grad_norm": float(field.norm()), "losses": [float(l) for l in losses], **stats}
    dist = game.distance_to_equilibrium()
    if dist is not None:
        row["distance"] = dist
    if game.num_params() <= 10_000:
        row.update(_first_coordinates(game))
    return row


def _metrics(game: Game, opt, step: int, losses) -> dict:
    """A metrics line; an [averaging] run also logs the averaged iterate's, under "average"."""
    row = {"step": step, **_point_metrics(game, losses),
           "grad_evals": int(getattr(opt, "grad_evals", 0)), "hvp_evals": int(getattr(opt, "hvp_evals", 0))}
    if hasattr(opt, "swapped"):
        with opt.swapped(), _preserved(game):
            row["average"] = _point_metrics(game, [l.detach() for l in game.losses()])
    return row


def _diverged(row: dict, limit: float) -> str | None:
    for key in ("distance", "grad_norm"):
        v = row.get(key)
        if v is not None and not math.isfinite(v):
            return f"{key} is {v}"
        if v is not None and v > limit:
            return f"{key} = {v:.3g} exceeds diverge_above = {limit:.3g}"
    if not all(math.isfinite(l) for l in row["losses"]):
        return f"non-finite loss {row['losses']}"
    return None


def _truncate_metrics(path: Path, last_step: int) -> None:
    """Keep the metric lines up to `last_step` (the checkpoint a resumed run starts from)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["step"] <= last_step]
    _atomic_write_bytes(path, lambda f: f.write("".join(l + "\n" for l in kept).encode()))


def run_experiment(config: dict, out_dir, *, resume: bool = True, progress: bool = False) -> dict:
    """Run `config` into `out_dir`; returns the final status dict."""
    cfg = configs.with_defaults(config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics_path = out / "metrics.jsonl"
    start = 0
    if resume and checkpoints(out):
        saved = configs.with_defaults(configs.load(out / "config.toml"))
        if {k: v for k, v in saved.items() if k != "steps"} != {k: v for k, v in cfg.items() if k != "steps"}:
            raise ValueError(f"out_dir: {out} holds a run of a different config; "
                             "choose another directory or pass resume=False")
        run = load_run(out)
        game, opt, start = run.game, run.optimizer, run.step
        torch.set_rng_state(run.rng)
        _truncate_metrics(metrics_path, start)
    else:
        for old in (metrics_path, out / "status.json"):
            old.unlink(missing_ok=True)
        for s in checkpoints(out):
            (out / "checkpoints" / f"step_{s:08d}.pt").unlink()
        torch.manual_seed(cfg["seed"])
        game = build_game(cfg)
        opt = make_optimizer(cfg, game)
    _atomic_write_bytes(out / "config.toml", lambda f: f.write(configs.dumps(cfg).encode()))

    summary = None
    if cfg["diagnostics_every"]:
        from gandyn.diagnostics import summary

    status = {"status": "running", "step": start}
    _write_json(out / "status.json", status)
    writer = None
    if cfg["tensorboard"]:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1 if start else None)
    bar = None
    steps = range(start, cfg["steps"])
    if progress:
        from tqdm import tqdm
        steps = bar = tqdm(steps, initial=start, total=cfg["steps"], desc=cfg["optimizer"])
    evaluate = getattr(game, "evaluate", None)
    with open(metrics_path, "a") as log:
        def write(row):
            log.write(json.dumps(row) + "\n")
            log.flush()
            if writer is not None:
                _tensorboard(writer, row)
            if bar is not None:
                bar.set_postfix(_postfix(row), refresh=False)

        if start == 0:
            with _preserved(game):
                row = _metrics(game, opt, 0, [l.detach() for l in game.losses()])
                if evaluate is not None and cfg["eval_every"]:
                    row.update(evaluate(out, 0))
            write(row)
        for step in steps:
            try:
                losses = opt.step(game)  # a game draws the step's minibatch itself
            except ValueError as e:  # a kernel's finiteness check (the penalty's NaN): divergence
                if "non-finite" not in str(e):
                    raise
                status = {"status": "diverged", "step": step, "reason": f"diverged at step {step}: {e}"}
                break
            if not all(math.isfinite(float(l)) for l in losses):
                # The losses are those of iterate `step`: the run left the reals there.
                status = {"status": "diverged", "step": step,
                          "reason": f"diverged at step {step}: non-finite loss {[float(l) for l in losses]}"}
                break
            done = step + 1
            last = done == cfg["steps"]
            evaluating = evaluate is not None and cfg["eval_every"] and (done % cfg["eval_every"] == 0 or last)
            if done % cfg["log_every"] == 0 or last or evaluating:
                row = _metrics(game, opt, done, losses)
                if summary is not None and done % cfg["diagnostics_every"] == 0:
                    with _preserved(game):
                        row["diagnostics"] = summary(game, opt)
                if evaluating:
                    with _preserved(game):
                        row.update(evaluate(out, done))
                write(row)
                reason = _diverged(row, cfg["diverge_above"])
                if reason is not None:
                    status = {"status": "diverged", "step": done,
                              "reason": f"diverged at step {done}: {reason}"}
                    break
            if done % cfg["checkpoint_every"] == 0 or last:
                save_checkpoint(out, done, game, opt)
        else:
            status = {"status": "finished", "step": cfg["steps"]}
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    _write_json(out / "status.json", status)
    return status


def _scalars(row: dict, prefix: str = ""):
    for k, v in row.items():
        if k == "step":
            continue
        if isinstance(v, dict):
            yield from _scalars(v, f"{prefix}{k}/")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    yield f"{prefix}{k}/{i}", x
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{prefix}{k}", v


def _tensorboard(writer, row: dict) -> None:
    for tag, value in _scalars(row):
        writer.add_scalar(tag, value, row["step"])
    writer.flush()


def _postfix(row: dict) -> dict:
    """The progress bar's: the losses and the row's last sample-quality metric."""
    post = {f"L{i}": f"{l:.3g}" for i, l in enumerate(row["losses"])}
    for key in ("fid", "modes_covered", "distance"):
        if isinstance(row.get(key), (int, float)):
            post[key] = f"{row[key]:.4g}"
            break
    return post


def read_metrics(run_dir) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"run_dir: {run_dir} has no metrics.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_status(run_dir) -> dict:
    path = Path(run_dir) / "status.json"
    return json.loads(path.read_text()) if path.exists() else {"status": "unknown"}
