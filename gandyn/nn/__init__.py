"""GAN building blocks."""
# gandyn.nn.spectral_norm(module): the function (the submodule stays importable by its full name).
from gandyn.nn.spectral_norm import spectral_norm  # noqa: F401
