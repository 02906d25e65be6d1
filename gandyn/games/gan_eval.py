"""A GAN game's evaluation: sample-quality metrics for its data, and a picture of its samples.

    metrics = GANEvaluator(data, num_samples=2500)(game, run_dir, step)

By the data (the conventions researchers compare numbers with):
- 2-D mixtures (`modes`, `sigma`): PacGAN's protocol (Lin et al. 2018) on `num_samples`
  (default 2,500) samples — modes covered, high-quality fraction (within 3σ of the
  nearest mode), reverse KL of the mode histogram to uniform; a scatter over the modes.
- stacked digits (1,000 modes): each channel classified by the shipped digits classifier;
  modes covered out of 1,000 and the reverse KL (Metz et al. 2017; PacGAN).
- one-channel images (digits, MNIST-like): features of the shipped digits classifier —
  the digits FID (N−1 covariance, float64, against the real data's statistics), Inception
  Score (10 splits), precision/recall/density/coverage (k = 3) and KID.
- other images: FID, IS, precision/recall and KID on the standard FID InceptionV3
  (pytorch-fid's network) when its weights file is found (`fid_weights`, or torch hub's
  cache); without it only samples are written and the row says `"fid": null`.

Samples come from fixed latents (and labels) drawn once from `seed`, so the sample grid of
`samples/step_XXXXXXXX.png` shows the same z through training; with an EMA of G the EMA
generator is evaluated (and `"ema": true` is logged). Everything runs in eval mode and in
`game.preserved()` (called by the run loop), so evaluation never moves training.

Under torchrun every rank generates its slice of the samples (and of the real data) and
computes their features; the features are gathered in rank order, so the metrics are
those of one process. G's buffers are rank 0's (the model its checkpoints hold), and rank
0 alone writes the picture.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor

from gandyn import distributed


class GANEvaluator:
    def __init__(self, data, *, num_samples: int | None = None, seed: int = 0,
                 fid_weights: str | None = None, device: str | torch.device = "cpu"):
        self.data, self.device, self.seed = data, torch.device(device), seed
        shape = tuple(data.shape)
        if hasattr(data, "modes") and hasattr(data, "sigma"):
            self.kind = "mixture"
        elif len(shape) == 3 and getattr(data, "num_classes", 0) == 1000 and shape[0] == 3:
            self.kind = "stacked"
        elif len(shape) == 3 and shape[0] == 1:
            self.kind = "digits"
        elif len(shape) == 3:
            self.kind = "inception"
        else:
            raise ValueError(f"data: no evaluation for samples of shape {shape}")
        default = {"mixture": 2500, "stacked": 10_000}.get(self.kind, 2000)
        self.num_samples = default if num_samples is None else int(num_samples)
        if self.num_samples < 20:
            raise ValueError(f"eval_samples: expected at least 20 samples, got {self.num_samples}")
        self.fid_weights = fid_weights
        self._features = None
        self._real = None
        self._fixed = None

    # -------------------------------------------------------------- features
    def features(self):
        """The feature network: (images) -> (features float64, class probabilities or None)."""
        if self._features is None:
            if self.kind in ("digits", "stacked"):
                from gandyn.metrics.digits_classifier import DigitsFeatures
                self._features = DigitsFeatures(device=self.device)
            elif self.kind == "inception":
                from gandyn.metrics.inception import InceptionFeatures
                try:
                    net = InceptionFeatures(self.fid_weights, device=self.device)
                except FileNotFoundError as e:
                    warnings.warn(f"no FID/IS for this run: {e}", stacklevel=2)
                    self._features = False
                    return False
                self._features = lambda x: (net(x), None)
        return self._features

    def real_features(self) -> Tensor:
        if self._real is None:
            g = torch.Generator().manual_seed(self.seed + 2)
            n = min(self.num_samples, len(self.data)) if hasattr(self.data, "__len__") else self.num_samples
            x, _ = self.data.sample(n, g)
            self._real = self.all_features(x[slice(*distributed.bounds(n))].to(self.device), n)[0]
        return self._real

    def all_features(self, x: Tensor, n: int) -> tuple[Tensor, Tensor | None]:
        """Features (and class probabilities) of n samples, of which this rank holds its slice x."""
        feats, probs = self.features()(x)
        return (distributed.gather_rows(feats, n),
                None if probs is None else distributed.gather_rows(probs, n))

    def fixed_inputs(self, game) -> tuple[Tensor, Tensor | None]:
        if self._fixed is None:
            g = torch.Generator().manual_seed(self.seed + 1)
            self._fixed = (game.latents(self.num_samples, g), game.fake_labels(self.num_samples, g))
        return self._fixed

    @torch.no_grad()
    def samples(self, game, *, ema: bool | None = None) -> Tensor:
        """num_samples samples of G (of the EMA generator when the game keeps one); under
        torchrun this rank's slice of them."""
        ema = game.G_ema is not None if ema is None else ema
        z, y = self.fixed_inputs(game)
        part = slice(*distributed.bounds(len(z)))
        z, y = z[part], None if y is None else y[part]
        G = game.G_ema.module if ema else game.G
        was = G.training
        G.eval()
        try:
            with distributed.rank0_buffers(G):
                out = torch.cat([game.generate(zc, None if y is None else y[i:i + len(zc)], ema=ema)
                                 for i, zc in zip(range(0, len(z), 500), z.split(500))])
        finally:
            G.train(was)
        return out.float()

    # --------------------------------------------------------------- metrics
    def __call__(self, game, out_dir=None, step: int = 0, *, ema: bool | None = None) -> dict:
        fake = self.samples(game, ema=ema)  # this rank's slice of the num_samples under torchrun
        n = self.num_samples
        row = {"ema": bool(game.G_ema is not None if ema is None else ema)}
        if not distributed.all_true(bool(torch.isfinite(fake).all())):
            return {**row, "eval_error": "non-finite samples"}
        if self.kind == "mixture":
            from gandyn.metrics.modes import mixture_mode_metrics
            m = mixture_mode_metrics(distributed.gather_rows(fake, n).double().cpu(), self.data.modes.double(),
                                     self.data.sigma)
            row.update(modes_covered=m["modes_covered"], high_quality=m["high_quality"],
                       reverse_kl=m["reverse_kl"])
        elif self.kind == "stacked":
            from gandyn.metrics.modes import stacked_mode_metrics
            labels = distributed.gather_rows(self.features().channel_labels(fake.clamp(-1, 1)), n)
            m = stacked_mode_metrics(labels.cpu())
            row.update(modes_covered=m["modes_covered"], reverse_kl=m["reverse_kl"])
        elif self.features():
            row.update(self.image_metrics(fake.clamp(-1, 1)))
        else:
            row["fid"] = None
        if out_dir is not None:
            everyone = distributed.gather_rows(fake, n)  # the grid shows the first samples of all
            if distributed.is_main():
                self.write_samples(everyone, Path(out_dir) / "samples" / f"step_{step:08d}.png")
        return row

    def image_metrics(self, fake: Tensor) -> dict:
        from gandyn.metrics.frechet import frechet_distance
        from gandyn.metrics.inception_score import inception_score
        from gandyn.metrics.kid import kid
        from gandyn.metrics.precision_recall import precision_recall

        real = self.real_features()
        feats, probs = self.all_features(fake.to(self.device), self.num_samples)
        fid = frechet_distance(real.mean(0), real.T.cov(), feats.mean(0), feats.T.cov())
        row = {"fid": float(fid), "fid_features": "digits-classifier" if self.kind == "digits" else "inception"}
        if probs is not None and len(probs) >= 10:
            row["is_mean"], row["is_std"] = inception_score(probs, splits=10)
        row.update(precision_recall(real, feats, k=3))
        size = min(1000, len(real), len(feats))
        row["kid_mean"], row["kid_std"] = kid(real, feats, subsets=50, subset_size=size,
                                              generator=torch.Generator().manual_seed(self.seed + 3))
        return row

    def write_samples(self, fake: Tensor, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        if self.kind == "mixture":
            from gandyn.plots import plot_samples_2d
            plot_samples_2d(fake.cpu(), self.data.modes, tmp, sigma=self.data.sigma)
        else:
            from torchvision.utils import save_image
            save_image(fake[:64].cpu(), tmp, nrow=8, normalize=True, value_range=(-1, 1), padding=1)
        tmp.replace(path)
        return path
