"""gandyn: GAN training dynamics as a differentiable game."""
from gandyn import _ext  # noqa: F401  (loads gandyn._C or warns once)

__version__ = "0.1.0"
