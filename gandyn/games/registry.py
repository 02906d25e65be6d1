"""Games by name, for configs and the command line: `make_game("bilinear", dim=10)`."""
from __future__ import annotations

from typing import Callable

import torch

from gandyn import config as configs
from gandyn.games.base import Game
from gandyn.games.bilinear import Bilinear
from gandyn.games.dirac import DiracGAN
from gandyn.games.quadratic import Quadratic



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


GAMES: dict[str, Callable[..., Game]] = {"bilinear": bilinear, "quadratic": quadratic, "dirac": DiracGAN}


def register_game(name: str, builder: Callable[..., Game]) -> None:
    """Make a game buildable from configs (`game = "name"`)."""
    GAMES[name] = builder


def make_game(name: str, **kwargs) -> Game:
    if name not in GAMES:
        raise ValueError(f"game: expected one of {sorted(GAMES)}, got {name!r}")
    try:
        return GAMES[name](**kwargs)
    except TypeError as e:  # an unknown keyword in [game_args]
        raise ValueError(f"game_args for {name!r}: {e}") from None
