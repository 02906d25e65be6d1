"""GAN architectures: MLPs (and PacGAN's), DCGAN, SNGAN CNN and ResNet, conditional GANs (concatenation,
conditional batch norm, projection discriminator), their initialization, and a registry by name.

Contract (what the GAN game and the run loop rely on):
- generator G(z) (or G(z, y), y int64 labels of shape (B,)), z of shape (B, G.latent_dim) from N(0, I),
  returns (B, *G.out_shape): images in [-1, 1] (tanh) or, for vector data, points (linear output);
  attributes latent_dim, out_shape, num_classes (0: unconditional);
- discriminator D(x) (or D(x, y)) returns logits of shape (B,), no sigmoid; attribute num_classes.
"""
from gandyn.nn.models.conditional import (ConditionalBatchNorm2d, ConditionalDCGANDiscriminator,  # noqa: F401
                                          ConditionalDCGANGenerator, ConditionalMLPDiscriminator,
                                          ConditionalMLPGenerator, ConditionalSNGANResNetGenerator,
                                          SNGANProjectionDiscriminator)
from gandyn.nn.models.dcgan import DCGANDiscriminator, DCGANGenerator  # noqa: F401
from gandyn.nn.models.init import init_weights  # noqa: F401
from gandyn.nn.models.mlp import (Maxout, MLPDiscriminator, MLPGenerator, pacgan_discriminator,  # noqa: F401
                                  pacgan_generator)
from gandyn.nn.models.registry import MODELS, make_models, model_keywords  # noqa: F401
from gandyn.nn.models.sngan import (SNGANCNNDiscriminator, SNGANCNNGenerator, SNGANResNetDiscriminator,  # noqa: F401
                                    SNGANResNetFeatures, SNGANResNetGenerator)

__all__ = ["MLPGenerator", "MLPDiscriminator", "Maxout", "pacgan_generator", "pacgan_discriminator",
           "DCGANGenerator", "DCGANDiscriminator",
           "SNGANCNNGenerator", "SNGANCNNDiscriminator", "SNGANResNetGenerator", "SNGANResNetDiscriminator",
           "SNGANResNetFeatures",
           "ConditionalMLPGenerator", "ConditionalMLPDiscriminator", "ConditionalDCGANGenerator",
           "ConditionalDCGANDiscriminator", "ConditionalBatchNorm2d", "ConditionalSNGANResNetGenerator",
           "SNGANProjectionDiscriminator",
           "init_weights", "MODELS", "make_models", "model_keywords"]
