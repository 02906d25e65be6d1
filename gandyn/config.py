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
    [players.D]                  # per-player options (lr, betas, momentum, eps, weight_decay, constraint =
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
PLAYER_OPTIONS = ("lr", "betas", "momentum", "eps", "weight_decay", "constraint")


LOOKAHEAD_OPTIONS = ("k", "alpha", "seed", "outer")
AVERAGING_OPTIONS = ("mode", "decay", "start")
TABLES = ("game_args", "optimizer_args", "players", "lookahead", "averaging")


def _integer(key: str, value, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{key}: expected an integer >= {least}, got {value!r}")


def _number(key: str, value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{key}: expected {what}, got {value!r}")
    return value


def with_defaults(config: dict) -> dict:
    """The config with defaults filled in; every top-level value and table checked (a
    ValueError names the key). The options inside [game_args] and [optimizer_args] are
    checked by the game builder and the optimizer class they are for."""
    if not isinstance(config, dict):
        raise ValueError(f"config: expected a table of options, got {config!r}")
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key in ("game", "optimizer"):
        if not isinstance(cfg[key], str):
            raise ValueError(f"{key}: expected a name (a string), got {cfg[key]!r}")
    for key in ("steps", "log_every", "checkpoint_every"):
        _integer(key, cfg[key], 1)
    for key in ("seed", "diagnostics_every", "eval_every"):
        _integer(key, cfg[key], 0)
    if not isinstance(cfg["device"], str):
        raise ValueError(f"device: expected a device name such as \"cpu\" or \"cuda\", got {cfg['device']!r}")
    if not isinstance(cfg["tensorboard"], bool):
        raise ValueError(f"tensorboard: expected true or false, got {cfg['tensorboard']!r}")
    lr = _number("lr", cfg["lr"], "a finite step size > 0")
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite step size > 0, got {lr!r}")
    if _number("diverge_above", cfg["diverge_above"], "a number > 0 (inf: never)") <= 0:
        raise ValueError(f"diverge_above: expected a number > 0 (inf: never), got {cfg['diverge_above']!r}")
    for key in TABLES:
        if not isinstance(cfg[key], dict):
            raise ValueError(f"{key}: expected a table, got {cfg[key]!r}")
    if "lr" in cfg["optimizer_args"]:
        raise ValueError("optimizer_args.lr: give the step size as the top-level lr, and a "
                         "player's own as [players.NAME] lr")
    for name, opts in cfg["players"].items():
        if not isinstance(opts, dict):
            raise ValueError(f"players.{name}: expected a table of {PLAYER_OPTIONS}, got {opts!r}")
        check_table(f"players.{name}", opts, PLAYER_OPTIONS)
    check_table("lookahead", cfg["lookahead"], LOOKAHEAD_OPTIONS)
    check_table("averaging", cfg["averaging"], AVERAGING_OPTIONS)
    return cfg


def check_table(name: str, table: dict, valid) -> None:
    """ValueError naming `name.key` for a key of `table` not among `valid` (listed)."""
    for key in table:
        if key not in valid:
            raise ValueError(f"{name}.{key}: unknown option; expected one of {sorted(valid)}")


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
