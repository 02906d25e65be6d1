"""The training loop: a config goes in, a run directory comes out.

RUN_DIR/
  config.toml        the full config (defaults filled in)
  metrics.jsonl      one JSON line per logged step (and the game's evaluation every eval_every)
  status.json        {"status": "running" | "finished" | "diverged" | "failed", "step": k, "reason": ...}
                     ("running": k is the last checkpoint; "failed": the exception's message)
  run.lock           held (fcntl.flock) by the process running into the directory, its pid inside
  checkpoints/step_XXXXXXXX.pt   game, optimizer and RNG state, written atomically
  samples/step_XXXXXXXX.png      a GAN's samples at each evaluation
  tensorboard/       TensorBoard event files (tensorboard = true)

Logging and evaluation run inside `game.preserved()` where the game has it (a GAN's
batch-norm statistics, spectral-norm vectors and RNG streams are put back), so a run's
trajectory does not depend on log_every or eval_every.

Running a config into a directory that already holds checkpoints resumes from the
last intact one (gandyn.run_dir: damaged checkpoints are moved aside, a half-written
last metric line is dropped): metric lines logged after that checkpoint are dropped
and recomputed, so a resumed run continues the same metric stream as an
uninterrupted one.

Under torchrun (`torchrun --nproc_per_node N -m gandyn run CONFIG.toml`) every rank trains
its shard of the global batch (gandyn.distributed) and rank 0 alone locks and writes the
directory; checkpoints record the world size, and a resume with another one is refused.
A rank that raises records {"status": "failed", "reason": "rank r: ..."} itself and leaves
the process group, so its peers' collectives fail at once instead of hanging.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from gandyn import config as configs
from gandyn import distributed
from gandyn.games.base import Game, flatten
from gandyn.games.registry import make_game
from gandyn.run_dir import RunLock, checkpoint_path, checkpoints, load_checkpoint, read_metric_lines


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


def _lookahead(opt, table: dict, name: str = "lookahead"):
    """LookaheadMinmax(opt, k, alpha, seed) of a [lookahead] table; its sub-table
    [lookahead.outer] (same keys, recursively) wraps it once more: nested lookahead."""
    from gandyn.optim import LookaheadMinmax

    table = dict(table)  # its own keys were checked with the config (config.with_defaults)
    outer = table.pop("outer", None)
    opt = LookaheadMinmax(opt, **table)
    if outer is not None:
        if not isinstance(outer, dict):
            raise ValueError(f"{name}.outer: expected a table, got {outer!r}")
        configs.check_table(f"{name}.outer", outer, configs.LOOKAHEAD_OPTIONS)
        opt = _lookahead(opt, outer, f"{name}.outer")
    return opt


def make_optimizer(cfg: dict, game: Game):
    from gandyn.optim import OPTIMIZERS, Averaged

    name = cfg["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {name!r}")
    OPTIMIZERS[name].check_options("optimizer_args", cfg["optimizer_args"])
    opt = OPTIMIZERS[name](_player_groups(cfg, game), lr=cfg["lr"], **cfg["optimizer_args"])
    if cfg["lookahead"]:
        opt = _lookahead(opt, cfg["lookahead"])
    if cfg["averaging"]:
        opt = Averaged(opt, **cfg["averaging"])
    return opt


def check_config(config: dict) -> dict:
    """The config with defaults, checked as far as it can be without building anything:
    every top-level value and table, the game's name and its arguments' names and types,
    the optimizer's name and options. (`sweep` checks all its configs before running one.)"""
    from gandyn.games.registry import check_game_args
    from gandyn.optim import OPTIMIZERS

    cfg = configs.with_defaults(config)
    check_game_args(cfg["game"], cfg["game_args"])
    if cfg["optimizer"] not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {sorted(OPTIMIZERS)}, got {cfg['optimizer']!r}")
    OPTIMIZERS[cfg["optimizer"]].check_options("optimizer_args", cfg["optimizer_args"])
    return cfg


@dataclass
class Run:
    """A run loaded from its directory: game and optimizer at checkpoint `step`."""
    dir: Path
    config: dict
    game: Game
    optimizer: object
    step: int
    rng: torch.Tensor  # torch's CPU RNG state at the checkpoint (a resumed run restores it)
    world_size: int = 1  # the processes of the run that wrote the checkpoint
    cuda_rng: torch.Tensor | None = None  # this process's CUDA RNG state (dropout on a GPU), if it used CUDA


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
    path = checkpoint_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "game": game.state_dict(), "optimizer": optimizer.state_dict(),
             "rng": torch.get_rng_state(), "world_size": distributed.world_size(),
             "cuda_rng": torch.cuda.get_rng_state() if torch.cuda.is_initialized() else None}
    _atomic_write_bytes(path, lambda f: torch.save(state, f))
    return path


def load_run(run_dir, step: int | None = None) -> Run:
    """Game and optimizer of a run at checkpoint `step` (the latest intact one by default)."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.toml").exists():
        raise FileNotFoundError(f"run_dir: {run_dir} has no config.toml (not a run directory)")
    cfg = configs.with_defaults(configs.load(run_dir / "config.toml"))
    state = load_checkpoint(run_dir, step)
    game = build_game(cfg)
    opt = make_optimizer(cfg, game)
    game.load_state_dict(state["game"])
    opt.load_state_dict(state["optimizer"])
    return Run(run_dir, cfg, game, opt, int(state["step"]), state["rng"], int(state.get("world_size", 1)),
               state.get("cuda_rng"))


def _first_coordinates(game: Game) -> dict:
    """The first coordinate of each player: the axes of trajectory plots."""
    return {f"coord{i}": float(ps[0].detach().reshape(-1)[0]) for i, ps in enumerate(game.players) if ps}


def _preserved(game: Game):
    return game.preserved() if hasattr(game, "preserved") else contextlib.nullcontext()


def _point_metrics(game: Game, losses) -> dict:
    """‖v‖, the losses, the game's last stats, its distance to equilibrium and first
    coordinates, at the game's current parameters."""
    with _preserved(game):
        field = flatten(distributed.mean([g.detach() for gs in game.vector_field() for g in gs]))
        last = getattr(game, "last_stats", {})
        stats = dict(zip(last, map(float, distributed.mean(list(last.values())))))
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
    scaler = getattr(game, "loss_scaler", None)
    if scaler is not None:  # float16: the loss scale and the steps skipped for an overflow so far
        row["loss_scale"], row["skipped_steps"] = scaler.scale, scaler.skipped_steps
    if hasattr(opt, "swapped"):
        with opt.swapped(), _preserved(game):
            row["average"] = _point_metrics(game, distributed.mean([l.detach() for l in game.losses()]))
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
    kept = [row for row in read_metric_lines(path) if row["step"] <= last_step]
    _atomic_write_bytes(path, lambda f: f.write("".join(json.dumps(r) + "\n" for r in kept).encode()))


def run_experiment(config: dict, out_dir, *, resume: bool = True, progress: bool = False) -> dict:
    """Run `config` into `out_dir`; returns the final status dict.

    The directory is locked for the run (gandyn.run_dir.RunLock; under torchrun by rank 0).
    Nothing in it is removed or rewritten before the config has built its game and
    optimizer, so a bad config leaves an earlier run as it was. An exception mid-run
    leaves status.json at "failed" with its message, and is raised on."""
    cfg = check_config(config)  # a bad option is named before any other complaint
    distributed.session(cfg["device"])
    out = Path(out_dir)
    main = distributed.is_main()
    # Every rank sees the directory before rank 0 changes it, and all must agree.
    found = (checkpoints(out) or [0])[-1] if resume and out.is_dir() else 0
    if not distributed.same_everywhere(found):
        raise ValueError(f"out_dir: the ranks see different checkpoints in {out}; under torchrun on "
                         "several nodes the run directory must be on a shared filesystem")
    created = not out.exists()
    if main:
        out.mkdir(parents=True, exist_ok=True)
    with RunLock(out) if main else contextlib.nullcontext() as lock:
        try:
            game, opt, start = _start(cfg, out, found, main)
            if not distributed.same_everywhere(start):
                raise ValueError(f"out_dir: rank 0 resumes {out} from another checkpoint than this rank "
                                 f"(step {start}; a damaged one was set aside): resume in one process or --fresh")
        except Exception:
            if created and main:  # a config refused before anything ran leaves no directory behind
                lock.path.unlink()
                out.rmdir()
            distributed.shutdown()
            raise
        if start > cfg["steps"]:
            # Nothing to run; config.toml keeps the steps the run was made with.
            done = read_status(out)
            return {**done, "reason": f"{done.get('status', 'stopped')} at step {start} already; "
                    f"steps = {cfg['steps']} asks for fewer, so nothing was run (--fresh starts over)"}
        if main:
            _atomic_write_bytes(out / "config.toml", lambda f: f.write(configs.dumps(cfg).encode()))
        at = {"step": start}
        try:
            status = _train(cfg, out, game, opt, start, at, progress and main)
        except BaseException as e:
            _record_failure(out, at["step"], e)
            distributed.shutdown()  # peers blocked in a collective with this rank fail at once
            raise
        if main:
            _write_json(out / "status.json", status)
    distributed.barrier()  # every rank returns once the directory is complete
    return status


def _record_failure(out: Path, step: int, error: BaseException) -> None:
    """status.json "failed" with the exception's message; under torchrun written by the
    failing rank, unless a peer that failed first recorded its own (this rank's error is
    then the lost connection to it)."""
    where = f"rank {distributed.rank()}: " if distributed.active() else ""
    try:
        if distributed.active() and read_status(out).get("status") == "failed":
            return
    except ValueError:  # a status file being replaced
        pass
    if out.is_dir():
        _write_json(out / "status.json", {"status": "failed", "step": step,
                                          "reason": f"{where}failed at step {step}: {type(error).__name__}: {error}"})


def _check_world_size(run: Run, out: Path) -> None:
    if run.world_size != distributed.world_size():
        raise ValueError(f"out_dir: the checkpoint at step {run.step} of {out} was written by {run.world_size} "
                         f"process(es), this run has {distributed.world_size()}; resume with "
                         f"--nproc_per_node {run.world_size} (per-rank batch-norm statistics and the "
                         "held shards are per process), or start a new directory")


def _start(cfg: dict, out: Path, found: int, main: bool = True):
    """(game, optimizer, step) to run from: when `found` (the last checkpoint step every
    rank saw) the last intact checkpoint of `out`, else a fresh game; the old run's files
    are removed only once it is built, and only by rank 0 (`main`). Every rank runs this
    together: building a game may take collectives (SyncBatchNorm)."""
    metrics_path = out / "metrics.jsonl"
    if found:
        saved = configs.with_defaults(configs.load(out / "config.toml"))
        if {k: v for k, v in saved.items() if k != "steps"} != {k: v for k, v in cfg.items() if k != "steps"}:
            raise ValueError(f"out_dir: {out} holds a run of a different config; choose another "
                             "directory (--out), or start over there with --fresh (resume=False in Python)")
        run = load_run(out) if main else load_run(out, found)  # rank 0 alone sets damaged files aside
        _check_world_size(run, out)
        torch.set_rng_state(run.rng)
        if run.cuda_rng is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state(run.cuda_rng)  # the current device: under torchrun this rank's GPU
        if main:
            _truncate_metrics(metrics_path, run.step)
        return run.game, run.optimizer, run.step
    torch.manual_seed(cfg["seed"])
    game = build_game(cfg)
    opt = make_optimizer(cfg, game)
    if main:
        for old in (metrics_path, out / "status.json"):
            old.unlink(missing_ok=True)
        for s in checkpoints(out):
            checkpoint_path(out, s).unlink()
    return game, opt, 0


def _train(cfg: dict, out: Path, game: Game, opt, start: int, at: dict, progress: bool) -> dict:
    """Steps start..steps; `at["step"]` follows the step being run. Returns the final status."""
    summary = None
    if cfg["diagnostics_every"]:
        from gandyn.diagnostics import summary

    main = distributed.is_main()
    if main:
        _write_json(out / "status.json", {"status": "running", "step": start})
    distributed.barrier()  # a peer's failure record from now on comes after this one
    writer = None
    if cfg["tensorboard"] and main:
        from torch.utils.tensorboard import SummaryWriter
        writer = SummaryWriter(str(out / "tensorboard"), purge_step=start + 1 if start else None)
    bar = None
    steps = range(start, cfg["steps"])
    if progress:
        from tqdm import tqdm
        steps = bar = tqdm(steps, initial=start, total=cfg["steps"], desc=cfg["optimizer"])
    evaluate = getattr(game, "evaluate", None)
    metrics_path = out / "metrics.jsonl"
    try:
        with open(metrics_path, "a") if main else contextlib.nullcontext() as log:
            def write(row):
                if not main:
                    return
                log.write(json.dumps(row) + "\n")
                log.flush()
                if writer is not None:
                    _tensorboard(writer, row)
                if bar is not None:
                    bar.set_postfix(_postfix(row), refresh=False)

            if start == 0:
                with _preserved(game):
                    row = _metrics(game, opt, 0, distributed.mean([l.detach() for l in game.losses()]))
                    if evaluate is not None and cfg["eval_every"]:
                        row.update(evaluate(out, 0))
                write(row)
            for step in steps:
                at["step"] = step
                try:
                    losses = opt.step(game)  # a game draws the step's minibatch itself
                except ValueError as e:  # a kernel's finiteness check (the penalty's NaN): divergence
                    if "non-finite" not in str(e):
                        raise
                    return {"status": "diverged", "step": step, "reason": f"diverged at step {step}: {e}"}
                if not all(math.isfinite(float(l)) for l in losses):
                    # The losses are those of iterate `step`: the run left the reals there.
                    return {"status": "diverged", "step": step,
                            "reason": f"diverged at step {step}: non-finite loss {[float(l) for l in losses]}"}
                done = step + 1
                at["step"] = done
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
                        return {"status": "diverged", "step": done, "reason": f"diverged at step {done}: {reason}"}
                    reason = distributed.active() and distributed.replica_mismatch(
                        _replicated(game), "parameters, spectral-norm vectors or replay buffers")
                    if reason:
                        return {"status": "failed", "step": done, "reason": f"step {done}: {reason}"}
                if (done % cfg["checkpoint_every"] == 0 or last) and main:
                    save_checkpoint(out, done, game, opt)
                    if not last:
                        _write_json(out / "status.json", {"status": "running", "step": done})
        return {"status": "finished", "step": cfg["steps"]}
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()


def _replicated(game: Game) -> list:
    """The tensors every rank must hold identically (a GAN names its own: no per-rank BN statistics)."""
    return game.replicated() if hasattr(game, "replicated") else game.params()


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
    """The rows of RUN_DIR/metrics.jsonl (a half-written last line is left out)."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"run_dir: {run_dir} has no metrics.jsonl")
    return read_metric_lines(path)


def read_status(run_dir) -> dict:
    path = Path(run_dir) / "status.json"
    return json.loads(path.read_text()) if path.exists() else {"status": "unknown"}
