"""GAN losses on discriminator logits, as (generator loss, discriminator loss).

Every player minimizes its own loss. With d_r = D(x_real), d_f = D(G(z)):

- "saturating":     L_D = E softplus(−d_r) + E softplus(d_f),   L_G = −L_D
                    (the original minimax game: zero-sum, log(1 − D) for G)
- "non-saturating": L_D as above,  L_G = E softplus(−d_f)   (−log D(G(z)))
- "wasserstein":    L_D = E d_f − E d_r,   L_G = −E d_f
- "hinge":          L_D = E relu(1 − d_r) + E relu(1 + d_f),   L_G = −E d_f
- "least-squares":  L_D = ½E(d_r − 1)² + ½E d_f²,   L_G = ½E(d_f − 1)²
                    (LSGAN, Mao et al. 2017, targets a = 0, b = c = 1)

One-sided label smoothing (Salimans et al. 2016) with s = label_smoothing: the real
samples' target becomes 1 − s (fakes keep 0), i.e. D's real term is the cross-entropy
E[(1 − s)·softplus(−d_r) + s·softplus(d_r)], or ½E(d_r − (1 − s))² for least squares.
The optimal D on real data then saturates at D(x) = 1 − s instead of 1. The
saturating loss stays zero-sum (L_G = −L_D). Wasserstein and hinge have no labels.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

LOSSES = ("saturating", "non-saturating", "wasserstein", "hinge", "least-squares")


def gan_losses(kind: str, d_real: Tensor, d_fake: Tensor, *, label_smoothing: float = 0.0
               ) -> tuple[Tensor, Tensor]:
    """(L_G, L_D) for logits of real and fake samples."""
    s = float(label_smoothing)
    if not 0 <= s < 1:
        raise ValueError(f"label_smoothing: expected a number in [0, 1), got {label_smoothing!r}")
    if s and kind in ("wasserstein", "hinge"):
        raise ValueError(f"label_smoothing: the {kind} loss has no labels to smooth")
    if kind in ("saturating", "non-saturating"):
        real_term = F.softplus(-d_real).mean() if s == 0 else (
            (1 - s) * F.softplus(-d_real) + s * F.softplus(d_real)).mean()
        ld = real_term + F.softplus(d_fake).mean()
        if kind == "saturating":
            return -ld, ld
        return F.softplus(-d_fake).mean(), ld
    if kind == "wasserstein":
        return -d_fake.mean(), d_fake.mean() - d_real.mean()
    if kind == "hinge":
        return -d_fake.mean(), F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    if kind == "least-squares":
        ld = 0.5 * (d_real - (1 - s)).pow(2).mean() + 0.5 * d_fake.pow(2).mean()
        return 0.5 * (d_fake - 1).pow(2).mean(), ld
    raise ValueError(f"kind: expected one of {LOSSES}, got {kind!r}")
