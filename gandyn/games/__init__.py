"""Games: players' parameters and the closure of their losses (see games/base.py)."""
from gandyn.games.base import Game, flatten, unflatten, vector_field
from gandyn.games.bilinear import Bilinear
from gandyn.games.dirac import DiracGAN
from gandyn.games.gan import GANGame
from gandyn.games.quadratic import Quadratic

__all__ = ["Game", "Bilinear", "DiracGAN", "Quadratic", "GANGame", "vector_field", "flatten", "unflatten"]
