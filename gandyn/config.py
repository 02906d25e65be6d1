"""Run configurations: a flat TOML file with optional sub-tables, read with tomllib.

    game = "bilinear"            # a name of gandyn.games.registry.GAMES
    optimizer = "extragradient"  # a name of gandyn.optim.OPTIMIZERS
    lr = 0.1
    steps = 2000
    seed = 0
    log_every = 10               # metrics.jsonl gets a line every log_every steps
    checkpoint_every = 500       # and the last step is always checkpointed
    diagnostics_every = 0        # 0: never; else gandyn.diagnostics.summary every N steps
    diverge_above = 1e10         # stop as diverged when the distance or ‖v‖ exceeds this
    eval_every = 0               # 0: never; else the game's own evaluation (a GAN's sample
                                 # metrics and samples/step_XXXXXXXX.png) every N steps and at the end
    device = "cpu"               # "cuda" on a GPU machine (games that take a device)
    tensorboard = false          # also write TensorBoard event files to RUN_DIR/tensorboard
    [game_args]                  # keyword arguments of the game's builder (tables nest:
    dim = 10                     #   [game_args.data_args] for a GAN's data, ...)
    [optimizer_args]             # keyword arguments of the optimizer (base="adam", gamma=...)
    [players.D]                  # per-player options (lr, betas, momentum, eps, constraint =
                                 #   {box = [lo, hi]} or {ball = r}: gandyn/optim/constraints.py), by player
    lr = 4e-4                    #   name (a GAN's "G", "D") or index ("0", "1")
    [lookahead]                  # optional: wrap the optimizer in LookaheadMinmax(k, alpha, seed);
    k = 5                        #   k = [k_min, k_max] draws each period's k; a sub-table
    alpha = 0.5                  #   [lookahead.outer] (same keys) nests a super-slow lookahead
    [averaging]                  # optional: wrap it in Averaged(mode, decay, start); every
    mode = "uniform"             #   metrics line then also holds the averaged iterate's
                                 #   metrics under "average", and `gandyn sample/eval --average`
                                 #   use the averaged point
"""
from __future__ import annotations

import math
import tomllib

import torch

DEFAULTS = {
    "game": "bilinear", "optimizer": "simgd", "lr": 0.1, "steps": 1000, "seed": 0,
    "log_every": 10, "checkpoint_every": 500, "diagnostics_every": 0, "diverge_above": 1e10,
    "eval_every": 0, "device": "cpu", "tensorboard": False,
    "game_args": {}, "optimizer_args": {}, "players": {}, "lookahead": {},
    "averaging": {},
}
PLAYER_OPTIONS = ("lr", "betas", "momentum", "eps", "constraint")


def with_defaults(config: dict) -> dict:
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key in ("steps", "log_every", "checkpoint_every"):
        if not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise ValueError(f"{key}: expected a positive integer, got {cfg[key]!r}")
    for key in ("diagnostics_every", "eval_every"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] < 0:
            raise ValueError(f"{key}: expected an integer >= 0, got {cfg[key]!r}")
    if not isinstance(cfg["device"], str):
        raise ValueError(f"device: expected a device name such as \"cpu\" or \"cuda\", got {cfg['device']!r}")
    if not isinstance(cfg["tensorboard"], bool):
        raise ValueError(f"tensorboard: expected true or false, got {cfg['tensorboard']!r}")
    lr = cfg["lr"]
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite step size > 0, got {lr!r}")
    for key in ("game_args", "optimizer_args", "players", "lookahead", "averaging"):
        if not isinstance(cfg[key], dict):
            raise ValueError(f"{key}: expected a table, got {cfg[key]!r}")
    if "lr" in cfg["optimizer_args"]:
        raise ValueError("optimizer_args.lr: give the step size as the top-level lr, and a "
                         "player's own as [players.NAME] lr")
    for name, opts in cfg["players"].items():
        if not isinstance(opts, dict):
            raise ValueError(f"players.{name}: expected a table of {PLAYER_OPTIONS}, got {opts!r}")
        unknown = sorted(set(opts) - set(PLAYER_OPTIONS))
        if unknown:
            raise ValueError(f"players.{name}: unknown keys {unknown}; expected some of {list(PLAYER_OPTIONS)}")
    return cfg


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def dtype(value, name: str = "dtype") -> torch.dtype:
    """A torch dtype, given as one or by its name in a config file ("float32", "float64")."""
    if isinstance(value, torch.dtype) and value in DTYPES.values():
        return value
    if value in DTYPES:
        return DTYPES[value]
    raise ValueError(f"{name}: expected one of {sorted(DTYPES)}, got {value!r}")


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"config value {v!r}: cannot be written as TOML")


def dumps(config: dict, prefix: str = "") -> str:
    """TOML text of a config: scalars first, then one [table] per dict value (nested
    tables as [a.b])."""
    lines = [f"{_key(k)} = {_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            name = f"{prefix}{_key(k)}"
            lines += ["", f"[{name}]", dumps(v, name + ".").rstrip("\n")]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else _value(str(k))


def load(path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)
