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
    [game_args]                  # keyword arguments of the game's builder
    dim = 10
    [optimizer_args]             # keyword arguments of the optimizer (base="adam", gamma=...)
    [lookahead]                  # optional: wrap the optimizer in LookaheadMinmax(k, alpha)
    k = 5
    alpha = 0.5
"""
from __future__ import annotations

import math
import tomllib

import torch

DEFAULTS = {
    "game": "bilinear", "optimizer": "simgd", "lr": 0.1, "steps": 1000, "seed": 0,
    "log_every": 10, "checkpoint_every": 500, "diagnostics_every": 0, "diverge_above": 1e10,
    "game_args": {}, "optimizer_args": {}, "lookahead": {},
}


def with_defaults(config: dict) -> dict:
    unknown = set(config) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"config: unknown keys {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **config}
    for key in ("steps", "log_every", "checkpoint_every"):
        if not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise ValueError(f"{key}: expected a positive integer, got {cfg[key]!r}")
    if not isinstance(cfg["diagnostics_every"], int) or cfg["diagnostics_every"] < 0:
        raise ValueError(f"diagnostics_every: expected an integer >= 0, got {cfg['diagnostics_every']!r}")
    lr = cfg["lr"]
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr: expected a finite step size > 0, got {lr!r}")
    for key in ("game_args", "optimizer_args", "lookahead"):
        if not isinstance(cfg[key], dict):
            raise ValueError(f"{key}: expected a table, got {cfg[key]!r}")
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


def dumps(config: dict) -> str:
    """TOML text of a config: scalars first, then one [table] per dict value."""
    lines = [f"{k} = {_value(v)}" for k, v in config.items() if not isinstance(v, dict)]
    for k, v in config.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def load(path) -> dict:
    with open(path, "rb") as f:
        return tomllib.load(f)
