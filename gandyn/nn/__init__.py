"""GAN building blocks."""
# gandyn.nn.spectral_norm(module): the function (the submodule stays importable by its full name).
from gandyn.nn.spectral_norm import spectral_norm  # noqa: F401
# gandyn.nn.gradient_penalty(D, real, fake, kind=...): WGAN-GP / R1 / R2 (gandyn.nn.penalties).
from gandyn.nn.penalties import gradient_penalty  # noqa: F401,E402
# gandyn.nn.gan_losses(kind, d_real, d_fake): (L_G, L_D) on D's logits (gandyn.nn.losses).
from gandyn.nn.losses import LOSSES, gan_losses  # noqa: F401,E402
