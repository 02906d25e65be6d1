"""GAN losses on discriminator logits, as (generator loss, discriminator loss).

Every player minimizes its own loss. With d_r = D(x_real), d_f = D(G(z)):

- "saturating":     L_D = E softplus(−d_r) + E softplus(d_f),   L_G = −L_D
                    (the original minimax game: zero-sum, log(1 − D) for G)
- "non-saturating": L_D as above,  L_G = E softplus(−d_f)   (−log D(G(z)))
- "wasserstein":    L_D = E d_f − E d_r,   L_G = −E d_f
- "hinge":          L_D = E relu(1 − d_r) + E relu(1 + d_f),   L_G = −E d_f
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

LOSSES = ("saturating", "non-saturating", "wasserstein", "hinge")


def gan_losses(kind: str, d_real: Tensor, d_fake: Tensor) -> tuple[Tensor, Tensor]:
    """(L_G, L_D) for logits of real and fake samples."""
    if kind == "saturating":
        ld = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return -ld, ld
    if kind == "non-saturating":
        ld = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return F.softplus(-d_fake).mean(), ld
    if kind == "wasserstein":
        return -d_fake.mean(), d_fake.mean() - d_real.mean()
    if kind == "hinge":
        return -d_fake.mean(), F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    raise ValueError(f"kind: expected one of {LOSSES}, got {kind!r}")
