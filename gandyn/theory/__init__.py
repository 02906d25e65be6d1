"""The GAN theory lab's reusable pieces (experiments/fig_theory_*.py, tests/theory/):
1-D games with exact densities, D trained against a frozen G, divergences by quadrature,
quantile functions of mixtures."""
from gandyn.theory.divergences import jensen_shannon, optimal_discriminator
from gandyn.theory.frozen_generator import discriminator_value, regress_discriminator, train_discriminator
from gandyn.theory.one_dim import (AffineGenerator, gaussian_game, mixture_pdf, one_dim_discriminator,
                                   standard_normal, uniform_latent)

__all__ = ["AffineGenerator", "discriminator_value", "gaussian_game", "jensen_shannon", "mixture_pdf",
           "one_dim_discriminator", "optimal_discriminator", "regress_discriminator", "standard_normal",
           "train_discriminator",
           "uniform_latent"]
from gandyn.theory.generator_fit import empirical_w1, fit_generator  # noqa: E402
from gandyn.theory.quantile import mixture_cdf, mixture_quantile  # noqa: E402

__all__ += ["empirical_w1", "fit_generator", "mixture_cdf", "mixture_quantile"]
