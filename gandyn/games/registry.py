"""Games by name, for configs and the command line: `make_game("bilinear", dim=10)`."""
from __future__ import annotations

from typing import Callable

import torch

from gandyn import config as configs
from gandyn.games.base import Game
from gandyn.games.bilinear import Bilinear
from gandyn.games.dirac import DiracGAN
from gandyn.games.quadratic import Quadratic
from gandyn.options import check_types



def bilinear(dim: int = 10, dim_y: int | None = None, smin: float = 0.5, smax: float = 2.0,
             offsets: bool = True, dtype: str = "float64", seed: int = 0) -> Bilinear:
    """min_x max_y xᵀAy + bᵀx + cᵀy with singular values of A evenly spaced in [smin, smax]."""
    if dim <= 0 or (dim_y is not None and dim_y <= 0):
        raise ValueError(f"dim: expected positive sizes, got dim={dim}, dim_y={dim_y}")
    if not 0 <= smin <= smax:
        raise ValueError(f"smin, smax: expected 0 <= smin <= smax, got {smin}, {smax}")
    k = min(dim, dim_y or dim)
    s = torch.linspace(smax, smin, k, dtype=torch.float64)
    return Bilinear.random(dim, dim_y, singular_values=s, offsets=offsets, seed=seed,
                           dtype=configs.dtype(dtype))


def quadratic(dim: int = 10, dim_y: int | None = None, mu: float = 0.2, L: float = 1.0,
              coupling: float = 1.0, dtype: str = "float64", seed: int = 0) -> Quadratic:
    """Two-player quadratic game; symmetric part with eigenvalues in [mu, L] (mu < 0: non-monotone)."""
    if dim <= 0 or (dim_y is not None and dim_y <= 0):
        raise ValueError(f"dim: expected positive sizes, got dim={dim}, dim_y={dim_y}")
    if mu > L:
        raise ValueError(f"mu, L: expected mu <= L, got {mu}, {L}")
    return Quadratic.random(dim, dim_y, mu=mu, L=L, coupling=coupling, seed=seed, dtype=configs.dtype(dtype))


def gan(data: str = "ring", data_args: dict | None = None, model: str = "mlp", model_args: dict | None = None,
        g_args: dict | None = None, d_args: dict | None = None, loss: str = "non-saturating",
        penalty: str | None = None, penalty_weight: float = 1.0, penalty_every: int = 1,
        batch_size: int = 64, label_smoothing: float = 0.0, instance_noise: float = 0.0,
        instance_noise_anneal: int = 0, ema: float = 0.0, feature_matching: bool = False,
        replay_buffer: int = 0, replay_fraction: float = 0.5, eval_samples: int | None = None,
        fid_weights: str | None = None, precision: str = "float32", loss_scaling: dict | None = None,
        device: str = "cpu", sync_batchnorm: bool = False, seed: int = 0):
    """A GAN from its parts, by name: data of gandyn.data.DATASETS (with `data_args`), models
    of gandyn.nn.models.MODELS (`model_args` for both, `g_args` / `d_args` for one), a loss of
    gandyn.nn.losses, a penalty on D ("r1", "r2", "wgan-gp" with γ or λ = penalty_weight),
    and the evaluation of gandyn.games.gan_eval. `precision = "bfloat16"` or `"float16"` runs
    the losses under autocast (parameters and the optimizer stay float32); float16 with dynamic
    loss scaling, whose GradScaler-named options `loss_scaling` takes (init_scale, growth_factor,
    backoff_factor, growth_interval: gandyn/optim/loss_scaling.py). Under torchrun
    batch norm keeps per-rank statistics, or, with `sync_batchnorm = true`, those of the global
    batch (gandyn.nn.sync_batchnorm: the same run as one process)."""
    from gandyn.data import make_dataset
    from gandyn.games.gan import GANGame, _loss_scaler
    from gandyn.games.gan_eval import GANEvaluator
    from gandyn.nn.models import make_models

    for name, table in (("data_args", data_args), ("model_args", model_args), ("g_args", g_args),
                        ("d_args", d_args)):
        if table is not None and not isinstance(table, dict):
            raise ValueError(f"{name}: expected a table, got {table!r}")
    _loss_scaler(precision, loss_scaling)  # refuses bad precision options before anything is built
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise ValueError(f"device: {e}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} asked for, but torch sees no CUDA device")
    source = make_dataset(data, **(data_args or {}))
    G, D = make_models(model, tuple(source.shape), getattr(source, "num_classes", 0) if _conditional(model) else 0,
                       g_args=g_args, d_args=d_args, **(model_args or {}))
    if not isinstance(sync_batchnorm, bool):
        raise ValueError(f"sync_batchnorm: expected true or false, got {sync_batchnorm!r}")
    if sync_batchnorm:
        from gandyn.nn.sync_batchnorm import convert_sync_batchnorm
        G, D = convert_sync_batchnorm(G), convert_sync_batchnorm(D)
    game = GANGame(G.to(dev), D.to(dev), source, loss=loss, batch_size=batch_size, penalty=penalty,
                   penalty_weight=penalty_weight, penalty_every=penalty_every,
                   label_smoothing=label_smoothing, instance_noise=instance_noise,
                   instance_noise_anneal=instance_noise_anneal, ema=ema,
                   feature_matching=feature_matching, replay_buffer=replay_buffer,
                   replay_fraction=replay_fraction, precision=precision, loss_scaling=loss_scaling,
                   seed=seed)
    game.evaluator = GANEvaluator(source, num_samples=eval_samples, seed=seed, fid_weights=fid_weights,
                                  device=dev)
    return game


def _conditional(model: str) -> bool:
    from gandyn.nn.models import MODELS
    b = MODELS.get(model)
    return bool(getattr(b, "conditional", False)) or model.startswith(("cgan", "sngan-projection"))


GAMES: dict[str, Callable[..., Game]] = {"bilinear": bilinear, "quadratic": quadratic, "dirac": DiracGAN,
                                         "gan": gan}


def register_game(name: str, builder: Callable[..., Game]) -> None:
    """Make a game buildable from configs (`game = "name"`)."""
    GAMES[name] = builder


def check_game_args(name: str, kwargs: dict) -> None:
    """ValueError naming the key for a game name, argument name or argument type that the
    builder GAMES[name] does not take (nothing is built)."""
    if name not in GAMES:
        raise ValueError(f"game: expected one of {sorted(GAMES)}, got {name!r}")
    import inspect

    params = inspect.signature(GAMES[name]).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        raise ValueError(f"game_args for {name!r}: unknown keys {unknown}; expected some of {sorted(params)}")
    check_types("game_args", GAMES[name], kwargs)


def make_game(name: str, **kwargs) -> Game:
    check_game_args(name, kwargs)
    try:
        return GAMES[name](**kwargs)
    except TypeError as e:  # a keyword a nested builder refused
        raise ValueError(f"game_args for {name!r}: {e}") from None
