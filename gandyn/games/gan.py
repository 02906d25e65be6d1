"""A GAN as a two-player game: generator G and discriminator D, any nn.Modules.

Player 0 is G, player 1 is D; both minimize their own loss (gandyn.nn.losses).

    game = GANGame(G, D, dataset, loss="non-saturating", batch_size=64,
                   d_regularizer=lambda D, real, fake: gradient_penalty(D, real, fake, kind="r1", weight=1.0))
    opt = Extragradient(game.players, lr=2e-4, base="adam")
    for step in range(10_000):
        opt.step(game)      # draws one minibatch, held for every field evaluation of the step

**D returns logits**: one real number per sample, shape (B,) or (B, 1), with no sigmoid
(the losses apply it inside softplus, which is exact where log(sigmoid) underflows). A
D whose last module is nn.Sigmoid (PyTorch's DCGAN example) is refused; so is an output
that is not one number per sample.

**The minibatch** (real samples, their labels, latents, fake labels, instance noise) is
drawn by `resample()` and held fixed until the next call, so that an optimizer that
evaluates the field several times in one step (extragradient, consensus, CGD) sees one
game. Every GameOptimizer calls `resample()` at the start of its step: a user's loop
need not. It draws from the game's own torch.Generator (`seed`), so evaluation code that
draws random numbers elsewhere does not move training, and a checkpoint restores it.

**Real data** `sample_real` may be: a gandyn data source (`.sample(n, generator)`, see
gandyn.data); a torch Dataset of `x` or `(x, y)` items (drawn with replacement, with
`get_batch(index)` when it has one); a DataLoader (iterated, restarted when exhausted;
its batch size must be `batch_size`; its shuffling uses its own RNG, so resume is exact
only for the sources above); or a callable `n -> x | (x, y)`. A conditional G
(`G.num_classes > 0`) needs labels: G(z, y) and D(x, y), fake labels uniform.

**Under torchrun** (gandyn.distributed) `batch_size` is the global batch: every rank draws
all of it (data, latents, labels, noise, WGAN-GP's ε) from the shared generator and keeps
its equal slice, so N ranks see exactly one process's minibatch; a batch the world size
does not divide is refused.

**Latents**: `sample_latent(n)`, or by default N(0, I) of G.latent_dim from the game's generator.

Options: `loss` (gandyn.nn.losses.LOSSES), `label_smoothing` (one-sided, Salimans et al.
2016), `instance_noise` σ₀ added to D's inputs, annealed linearly to 0 over
`instance_noise_anneal` steps (0: constant), `ema` decay of an exponential moving average
of G's weights and buffers for evaluation (`game.G_ema`; 0: none); `feature_matching`
(Salimans et al. 2016, Sec. 3.1: G's loss becomes ‖E f(x) − E f(G(z))‖², f = `D.features`, an
intermediate layer of D; D's loss is unchanged); `replay_buffer` N (Shrivastava et al. 2017:
D's fake batch takes a `replay_fraction` of its samples from a buffer of N past generated
samples, refreshed with each step's fakes at random positions; G's loss sees only current
fakes; 0: none); `penalty` ("r1", "r2", "wgan-gp": gandyn.nn.gradient_penalty
with γ or λ = `penalty_weight`, lazy every `penalty_every` steps, conditioned on the labels
of the samples it is taken at) or a custom `d_regularizer(D, real, fake)`; `precision`
("float32", "bfloat16", "float16": the losses under autocast, parameters and optimizer state
in float32; float16 with dynamic loss scaling, its GradScaler-named options in the dict
`loss_scaling`, see gandyn/optim/loss_scaling.py: every GameOptimizer's `step(game)` applies
it, skipping a step that overflows). `last_stats` holds the
mean D(x), mean D(G(z)) and the penalty of the last loss evaluation, for logging.
"""
from __future__ import annotations

import contextlib
import math
from typing import Callable

import torch
from torch import Tensor, nn

from gandyn import distributed
from gandyn.games.base import Game
from gandyn.nn.losses import LOSSES, gan_losses

Regularizer = Callable[[nn.Module, Tensor, Tensor], Tensor]


def _ends_in_sigmoid(D: nn.Module) -> bool:
    modules = list(D.modules())
    return len(modules) > 1 and isinstance(modules[-1], nn.Sigmoid)


class GANGame(Game):
    player_names = ("G", "D")

    def __init__(self, generator: nn.Module, discriminator: nn.Module, sample_real,
                 sample_latent: Callable[[int], Tensor] | None = None, *,
                 loss: str = "non-saturating", batch_size: int = 64,
                 d_regularizer: Regularizer | None = None, penalty: str | None = None,
                 penalty_weight: float = 1.0, penalty_every: int = 1, label_smoothing: float = 0.0,
                 instance_noise: float = 0.0, instance_noise_anneal: int = 0, ema: float = 0.0,
                 feature_matching: bool = False, replay_buffer: int = 0, replay_fraction: float = 0.5,
                 precision: str = "float32", loss_scaling: dict | None = None, seed: int | None = None):
        self.precision, self.loss_scaler = precision, _loss_scaler(precision, loss_scaling)
        if loss not in LOSSES:
            raise ValueError(f"loss: expected one of {LOSSES}, got {loss!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f"batch_size: expected a positive integer, got {batch_size!r}")
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing: expected a number in [0, 1), got {label_smoothing!r}")
        if label_smoothing and loss not in ("saturating", "non-saturating", "least-squares"):
            raise ValueError(f"label_smoothing: defined for the saturating, non-saturating and "
                             f"least-squares losses, not {loss!r}")
        if not (isinstance(instance_noise, (int, float)) and math.isfinite(instance_noise)
                and instance_noise >= 0):
            raise ValueError(f"instance_noise: expected a finite number >= 0, got {instance_noise!r}")
        if isinstance(instance_noise_anneal, bool) or not isinstance(instance_noise_anneal, int) \
                or instance_noise_anneal < 0:
            raise ValueError(f"instance_noise_anneal: expected an integer >= 0, got {instance_noise_anneal!r}")
        if not 0 <= ema < 1:
            raise ValueError(f"ema: expected a decay in [0, 1) (0: no EMA of G), got {ema!r}")
        if _ends_in_sigmoid(discriminator):
            raise ValueError("discriminator: its last module is nn.Sigmoid, but GANGame's losses take "
                             "logits (they apply the sigmoid inside softplus); remove the Sigmoid")
        if not isinstance(feature_matching, bool):
            raise ValueError(f"feature_matching: expected true or false, got {feature_matching!r}")
        if feature_matching and not callable(getattr(discriminator, "features", None)):
            raise ValueError(f"feature_matching: the discriminator ({type(discriminator).__name__}) has no "
                             "`features(x)` method giving the intermediate layer to match")
        self.feature_matching = feature_matching
        if isinstance(replay_buffer, bool) or not isinstance(replay_buffer, int) or replay_buffer < 0:
            raise ValueError(f"replay_buffer: expected an integer >= 0 (0: no buffer), got {replay_buffer!r}")
        if not (isinstance(replay_fraction, (int, float)) and 0 < replay_fraction < 1):
            raise ValueError(f"replay_fraction: expected a number in (0, 1), got {replay_fraction!r}")
        if replay_buffer and getattr(generator, "num_classes", 0):
            raise ValueError("replay_buffer: not for a conditional generator "
                             "(replayed samples keep no labels)")
        self.replay_capacity, self.replay_fraction = replay_buffer, float(replay_fraction)
        self.replay, self.replay_count, self._replay_idx = None, 0, None   # filled by after_step
        from gandyn.nn.penalties import KINDS
        if penalty is not None and penalty not in KINDS:
            raise ValueError(f"penalty: expected one of {KINDS} or None, got {penalty!r}")
        if penalty is not None and d_regularizer is not None:
            raise ValueError("penalty, d_regularizer: give one of them")
        if not (isinstance(penalty_weight, (int, float)) and math.isfinite(penalty_weight) and penalty_weight >= 0):
            raise ValueError(f"penalty_weight: expected a finite number >= 0, got {penalty_weight!r}")
        if isinstance(penalty_every, bool) or not isinstance(penalty_every, int) or penalty_every < 1:
            raise ValueError(f"penalty_every: expected an integer >= 1, got {penalty_every!r}")
        self.penalty, self.penalty_weight, self.penalty_every = penalty, float(penalty_weight), penalty_every
        self.G, self.D = generator, discriminator
        if precision == "float16":
            from torch.nn.modules.batchnorm import _BatchNorm
            for m in (*generator.modules(), *discriminator.modules()):
                if isinstance(m, _BatchNorm):
                    m.register_forward_pre_hook(_batch_norm_in_float32)
        self.loss, self.batch_size = loss, batch_size
        self.d_regularizer = d_regularizer
        self.label_smoothing = float(label_smoothing)
        self.instance_noise, self.instance_noise_anneal = float(instance_noise), instance_noise_anneal
        self.num_classes = int(getattr(generator, "num_classes", 0) or 0)
        self.players = [[p for p in generator.parameters() if p.requires_grad],
                        [p for p in discriminator.parameters() if p.requires_grad]]
        if not self.players[0] or not self.players[1]:
            raise ValueError("generator, discriminator: each needs parameters with requires_grad=True")
        ref = self.players[0][0]
        self.device, self.dtype = ref.device, ref.dtype
        # The game's own RNG, on the CPU (batches move to the device): seeded from `seed`, or
        # from torch's initial seed without drawing from (and so moving) torch's stream.
        self.generator = torch.Generator().manual_seed(torch.initial_seed() if seed is None else seed)
        # WGAN-GP's ε: drawn from a stream reset at every loss evaluation to the state drawn by
        # resample(), so that all evaluations of one step see the same interpolates.
        self._eps_generator = torch.Generator(self.device)
        self.steps_drawn = 0   # minibatches drawn: the step count of instance-noise annealing
        self._real = _RealSampler(sample_real, batch_size)
        # Under torchrun batch_size is the global batch: every rank draws all of it from the
        # shared generator and keeps its slice, so N ranks see one process's batch exactly.
        self._shard = distributed.shard(batch_size, "batch_size")
        self.sample_latent = sample_latent
        if sample_latent is None and not isinstance(getattr(generator, "latent_dim", None), int):
            raise ValueError("sample_latent: required when the generator has no integer `latent_dim`")
        self.last_stats: dict[str, Tensor] = {}
        self._fake_cache = None  # (key, G(z)) of the last evaluation, for player_losses
        self.evaluator = None   # a GANEvaluator (gandyn.games.gan_eval), set by the registry's builder
        self.G_ema = None
        if ema:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
            self.G_ema = AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(ema), use_buffers=True)
            self.G_ema.requires_grad_(False)
        self.resample()
        self._check_batch()

    # ----------------------------------------------------------- minibatch
    def latents(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        if self.sample_latent is not None:
            return self.sample_latent(n)
        return torch.randn(n, self.G.latent_dim, generator=generator or self.generator,
                           dtype=self.dtype).to(self.device)

    def fake_labels(self, n: int, generator: torch.Generator | None = None) -> Tensor | None:
        if not self.num_classes:
            return None
        return torch.randint(self.num_classes, (n,), generator=generator or self.generator).to(self.device)

    def noise_std(self) -> float:
        if not self.instance_noise:
            return 0.0
        if not self.instance_noise_anneal:
            return self.instance_noise
        return self.instance_noise * max(0.0, 1.0 - (self.steps_drawn - 1) / self.instance_noise_anneal)

    def resample(self) -> None:
        """Draw the next minibatch (called by every GameOptimizer at the start of its step)."""
        self._fake_cache = None
        with torch.no_grad():
            self.real, self.real_labels = self._real.sample(self.batch_size, self.generator)
            self.real = self.real.to(self.device)
            if self.real_labels is not None:
                self.real_labels = self.real_labels.to(self.device)
            self.z = self.latents(self.batch_size)
            self.y_fake = self.fake_labels(self.batch_size)
            self.steps_drawn += 1
            k = round(self.replay_fraction * self.batch_size)
            self._replay_idx = torch.randint(self.replay_count, (k,), generator=self.generator) \
                if self.replay_count >= k > 0 else None
            self._eps_seed = int(torch.randint(2 ** 62, (), generator=self.generator))
            std = self.noise_std()
            self.noise = None if std == 0 else [
                (std * torch.randn(self.real.shape, generator=self.generator, dtype=self.real.dtype)
                 ).to(self.device) for _ in range(2)]
            if self._shard is not None:
                self._keep_shard()

    def _keep_shard(self) -> None:
        s = self._shard
        self.real, self.z = self.real[s], self.z[s]
        self.real_labels = None if self.real_labels is None else self.real_labels[s]
        self.y_fake = None if self.y_fake is None else self.y_fake[s]
        self.noise = None if self.noise is None else [n[s] for n in self.noise]

    def _check_batch(self) -> None:
        if self.num_classes and self.real_labels is None:
            raise ValueError("sample_real: the generator is conditional (num_classes = "
                             f"{self.num_classes}) but the data gives no labels; give (x, y) batches")
        with torch.no_grad(), self.preserved():
            fake = self.generate(self.z, self.y_fake)
        if not isinstance(self.real, Tensor) or not self.real.is_floating_point():
            raise ValueError(f"sample_real: expected a floating-point tensor batch, got "
                             f"{type(self.real).__name__} {getattr(self.real, 'dtype', '')}")
        if self.real.shape != fake.shape:
            raise ValueError(f"sample_real: a real batch has shape {tuple(self.real.shape)}, the generator's "
                             f"batch {tuple(fake.shape)}; they must match (batch_size = {self.batch_size})")
        if self.real.dtype != fake.dtype:
            raise ValueError(f"sample_real: real samples are {self.real.dtype}, the generator's {fake.dtype}")

    # -------------------------------------------------------------- models
    def generate(self, z: Tensor, y: Tensor | None = None, *, ema: bool = False) -> Tensor:
        G = self.G_ema.module if ema and self.G_ema is not None else self.G
        if ema and self.G_ema is None:
            raise ValueError("ema: this game keeps no EMA of G (ema = 0)")
        return G(z) if y is None else G(z, y)

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.D(x) if y is None or not self.num_classes else self.D(x, y)
        if out.dim() == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.shape != (x.shape[0],):
            raise ValueError(f"discriminator: expected one logit per sample, shape ({x.shape[0]},) or "
                             f"({x.shape[0]}, 1), got {tuple(out.shape)}")
        return out

    def losses(self) -> list[Tensor]:
        """[L_G, L_D] at the current parameters, on the held minibatch; under autocast for
        precision bfloat16/float16, the losses themselves in the parameters' dtype."""
        return self._at_precision(self._losses)

    def player_losses(self, players) -> list[Tensor | None]:
        """G's loss alone ([L_G, None]) when only G's is asked for, with the work a
        re-evaluation would repeat left out: G(z) is reused from the last evaluation when a new
        forward would give the same tensor (AltGD's D-first step: G has not moved since D's
        field was taken), and D(real), the replay mix and the penalty, which L_G's gradient in
        G does not involve, are skipped. A skipped D(real) moves no state but D's spectral-norm
        vectors (one power iteration per D call, written like batch norm's running statistics):
        G's step then calls D once, as SNGAN's reference updater does (Miyato et al.'s chainer
        code: dis(gen(z)) alone). A D whose forward reads any other state, or draws random
        numbers (dropout), runs as in losses(). Its value may differ from losses()'s by terms
        constant in G (the saturating loss's real term); last_stats is left as the last full
        evaluation's. Other players asked for: losses()."""
        if list(players) != [0]:
            return self.losses()
        if _forward_state(self.D, reads_only=True, power_iteration_written=True) != ():
            return self._at_precision(lambda: self._losses(reuse=True))
        return [*self._at_precision(self._generator_loss), None]

    def vector_field(self, create_graph: bool = False) -> list[list[Tensor]]:
        """The field; in a float16 game taken as the optimizers take it, scaled and unscaled
        (an unscaled float16 backward flushes small gradients to zero), or, where the current
        scale overflows (the next step skips and lowers it), unscaled."""
        if self.loss_scaler is None:
            return super().vector_field(create_graph)
        from gandyn.games.base import vector_field
        from gandyn.optim import loss_scaling

        with loss_scaling.scaling(self.loss_scaler):
            field = vector_field(loss_scaling.scaled(self.losses()), self.players, create_graph=create_graph)
            try:
                flat = iter(loss_scaling.unscaled([g for f in field for g in f]))
            except loss_scaling.Overflow:
                return super().vector_field(create_graph)
        return [[next(flat) for _ in f] for f in field]

    def _at_precision(self, losses):
        """losses() under the game's precision: autocast for bfloat16/float16."""
        if self.precision == "float32":
            return losses()
        try:
            with torch.autocast(self.device.type, dtype=getattr(torch, self.precision)):
                out = losses()
        except RuntimeError as e:
            if "Half" not in str(e) and "BFloat16" not in str(e):
                raise
            raise ValueError(f"precision: {self.precision} autocast on {self.device.type} fails in an op "
                             f"of the models ({e}); use another precision (game_args.precision in a "
                             "config)") from None
        return [l.to(self.dtype) for l in out]

    def _generated(self, reuse: bool) -> Tensor:
        """G(z, y) of the held batch; with `reuse`, the last evaluation's tensor (and graph)
        when nothing a forward of G depends on has changed since: the batch, G's parameters
        and state buffers (by identity and version: in-place updates bump it), its mode, grad
        mode and autocast."""
        state = _forward_state(self.G)
        key = None if state is None else (state, self.z, self.y_fake, torch.is_grad_enabled(),
                                          torch.is_autocast_enabled(self.device.type))
        cached = self._fake_cache
        if reuse and key is not None and cached is not None and _same_key(cached[0], key):
            return cached[1]
        fake = self.generate(self.z, self.y_fake)
        self._fake_cache = None if key is None else (key, fake)
        return fake

    def _generator_loss(self) -> list[Tensor]:
        fake = self._generated(reuse=True)
        if self.noise is not None:
            fake = fake + self.noise[1]
        if self.feature_matching:
            return [self._feature_matching_loss(self.real if self.noise is None else self.real + self.noise[0], fake)]
        d_fake = self.discriminate(fake, self.y_fake)
        # D(real) enters L_D only (and the saturating L_G as a term constant in G): a constant stands in
        return [gan_losses(self.loss, d_fake.detach(), d_fake, label_smoothing=self.label_smoothing)[0]]

    def _replay_mixed(self, fake: Tensor) -> Tensor:
        """D's fake batch with the replayed samples: of the global batch of B, the first B − k
        rows are G's current fakes and the last k replayed from the buffer (constants, noised
        alike). Under torchrun a rank holds rows [start, stop) of that batch, its own fakes
        before the cut and the buffer's (the same on every rank) after it: N ranks with batch
        B/N mix exactly as one process with batch B."""
        k = len(self._replay_idx)
        start, stop = (0, len(fake)) if self._shard is None else (self._shard.start, self._shard.stop)
        cut = self.batch_size - k
        c = min(max(cut - start, 0), len(fake))  # this rank's current rows
        old = self.replay[self._replay_idx[start + c - cut:stop - cut].to(self.device)]
        if self.noise is not None:
            old = old + self.noise[1][c:]
        return torch.cat([fake[:c], old])

    def _feature_matching_loss(self, real: Tensor, fake: Tensor) -> Tensor:
        """‖mean f(fake) − mean f(real)‖² of D's features f (Salimans et al. 2016); the real
        features are a target for G: constants (G's gradient is unchanged by it). The means are
        the global batch's under torchrun (the loss is not linear in them: a mean of per-rank
        losses would be another loss), the fakes' differentiably, so that the mean over ranks
        of each rank's gradient is the global loss's."""
        w = distributed.world_size()
        target = distributed.mean([self.D.features(real).detach().mean(0)])[0]
        return (distributed.sum_differentiable(self.D.features(fake).mean(0)) / w - target).pow(2).sum()

    def _losses(self, reuse: bool = False) -> list[Tensor]:
        fake = self._generated(reuse)
        real = self.real
        if self.noise is not None:
            real, fake = real + self.noise[0], fake + self.noise[1]
        d_real = self.discriminate(real, self.real_labels)
        d_fake = self.discriminate(fake, self.y_fake)
        lg, ld = gan_losses(self.loss, d_real, d_fake, label_smoothing=self.label_smoothing)
        if self._replay_idx is not None:
            _, ld = gan_losses(self.loss, d_real, self.discriminate(self._replay_mixed(fake), self.y_fake),
                               label_smoothing=self.label_smoothing)
        if self.feature_matching:
            lg = self._feature_matching_loss(real, fake)
        stats = {"d_real": d_real.detach().mean(), "d_fake": d_fake.detach().mean()}
        if self.d_regularizer is not None or self.penalty is not None:
            # The regularizer gets G's samples with their graph: it is a term of D's
            # loss, which only D differentiates, so G's field is unchanged, while the
            # Jacobian block ∂v_D/∂θ_G sees how the penalty moves with G.
            penalty = self.d_regularizer(self.D, real, fake) if self.penalty is None else \
                self._penalty(real, fake)
            ld = ld + penalty
            stats["penalty"] = penalty.detach()
        self.last_stats = stats
        return [lg, ld]

    def _penalty(self, real: Tensor, fake: Tensor) -> Tensor:
        """gandyn.nn.gradient_penalty of kind `penalty` (R1 at the real samples with their
        labels, R2 at the fakes with theirs, WGAN-GP at interpolates with the real labels)."""
        from gandyn.nn.penalties import gradient_penalty

        labels = self.y_fake if self.penalty == "r2" else self.real_labels
        self._eps_generator.manual_seed(self._eps_seed)
        eps = None
        if self._shard is not None and self.penalty == "wgan-gp":  # this rank's slice of the global ε
            eps = torch.rand(self.batch_size, generator=self._eps_generator, device=real.device,
                             dtype=real.dtype)[self._shard]
        return gradient_penalty(lambda x: self.discriminate(x, labels), real, fake, kind=self.penalty,
                                weight=self.penalty_weight, step=self.steps_drawn - 1,
                                every=self.penalty_every, generator=self._eps_generator, detach=False,
                                eps=eps)

    def replicated(self) -> list[Tensor]:
        """What every rank must hold identically: parameters and buffers (spectral-norm u, v,
        a SyncBatchNorm's statistics), except the per-rank statistics of plain batch norm, and
        the replay buffer."""
        from torch.nn.modules.batchnorm import _BatchNorm

        from gandyn.nn.sync_batchnorm import SyncBatchNorm
        per_rank = {id(b) for m in (self.G, self.D) for mod in m.modules()
                    if isinstance(mod, _BatchNorm) and not isinstance(mod, SyncBatchNorm)
                    for b in mod.buffers(recurse=False)}
        bufs = [b for m in (self.G, self.D) for b in m.buffers() if id(b) not in per_rank]
        return self.params() + [b for b in bufs if b.is_floating_point()] + \
            ([] if self.replay is None else [self.replay])

    def after_step(self) -> None:
        self._fake_cache = None  # (holds G's forward graph)
        if self.G_ema is not None:
            self.G_ema.update_parameters(self.G)
        if self.replay_capacity:
            self._push_replay()

    @torch.no_grad()
    def _push_replay(self) -> None:
        """The step's fakes (at G's new parameters) into the buffer: appended while it fills,
        then written over uniformly drawn distinct entries (distinct: a write to a repeated
        index keeps whichever value the kernel writes last, which makes a run irreproducible)."""
        fake = self.generate(self.z, self.y_fake).detach()
        if self._shard is not None:  # one buffer of the global batch's fakes, the same on every rank
            fake = distributed.gather_rows(fake, self.batch_size)
        if self.replay is None:
            self.replay = fake.new_zeros((self.replay_capacity, *fake.shape[1:]))
        n = min(len(fake), self.replay_capacity - self.replay_count)
        self.replay[self.replay_count:self.replay_count + n] = fake[:n]
        self.replay_count += n
        if n < len(fake):
            pos = torch.randperm(self.replay_capacity, generator=self.generator)[:len(fake) - n]
            self.replay[pos.to(self.device)] = fake[n:n + len(pos)]

    def evaluate(self, out_dir=None, step: int = 0) -> dict:
        """The evaluator's sample-quality metrics (and sample picture); {} without one."""
        return {} if self.evaluator is None else self.evaluator(self, out_dir, step)

    @contextlib.contextmanager
    def preserved(self):
        """Everything an evaluation may move — G's and D's buffers (batch-norm statistics,
        spectral-norm vectors), the game's and torch's RNG states, the held minibatch —
        is put back on exit: logging never changes a trajectory."""
        bufs = [b.detach().clone() for m in (self.G, self.D) for b in m.buffers()]
        rng, torch_rng = self.generator.get_state(), torch.get_rng_state()
        held = (self.real, self.real_labels, self.z, self.y_fake, self.noise, self.steps_drawn, self.last_stats,
                self._eps_seed, self._replay_idx)
        try:
            yield
        finally:
            with torch.no_grad():
                for b, saved in zip((b for m in (self.G, self.D) for b in m.buffers()), bufs):
                    b.copy_(saved)
            self.generator.set_state(rng)
            torch.set_rng_state(torch_rng)
            (self.real, self.real_labels, self.z, self.y_fake, self.noise, self.steps_drawn,
             self.last_stats, self._eps_seed, self._replay_idx) = held
            self._fake_cache = None

    # ------------------------------------------------------------- state
    def state_dict(self) -> dict:
        state = {"G": self.G.state_dict(), "D": self.D.state_dict(), "rng": self.generator.get_state(),
                 "steps_drawn": self.steps_drawn, "eps_seed": self._eps_seed,
                 "batch": {"real": self.real, "real_labels": self.real_labels, "z": self.z,
                           "y_fake": self.y_fake, "noise": self.noise}}
        if self.replay_capacity:
            state["replay"] = {"samples": self.replay, "count": self.replay_count, "idx": self._replay_idx}
        if self.G_ema is not None:
            state["G_ema"] = self.G_ema.state_dict()
        if self.loss_scaler is not None:
            state["loss_scaler"] = self.loss_scaler.state_dict()
        return state

    def _on_device(self, x):
        """A tensor, a list of tensors or None, on the game's device."""
        if isinstance(x, list):
            return [t.to(self.device) for t in x]
        return None if x is None else x.to(self.device)

    def load_state_dict(self, state: dict) -> None:
        self._fake_cache = None
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        if "rng" in state:
            self.generator.set_state(state["rng"])
            self.steps_drawn, self._eps_seed = state["steps_drawn"], state["eps_seed"]
            # A checkpoint loads on the CPU (run_dir reads with map_location="cpu"): the held batch
            # and the buffer go back to the game's device (the replay indices stay with the CPU
            # generator that drew them)
            b = {k: self._on_device(v) for k, v in state["batch"].items()}
            self.real, self.real_labels, self.z, self.y_fake, self.noise = (
                b["real"], b["real_labels"], b["z"], b["y_fake"], b["noise"])
        if self.replay_capacity and "replay" in state:
            r = state["replay"]
            self.replay, self.replay_count, self._replay_idx = self._on_device(r["samples"]), r["count"], r["idx"]
        if self.G_ema is not None:
            if "G_ema" not in state:
                raise ValueError("state: the game keeps an EMA of G but the state has none")
            self.G_ema.load_state_dict(state["G_ema"])
        if self.loss_scaler is not None:
            if "loss_scaler" not in state:
                raise ValueError("state: the game scales its float16 losses but the state has no 'loss_scaler'")
            self.loss_scaler.load_state_dict(state["loss_scaler"])


PRECISIONS = ("float32", "bfloat16", "float16")


def _forward_state(module: nn.Module, reads_only: bool = False, power_iteration_written: bool = False):
    """What a training forward of `module` depends on besides its input: its mode and its
    parameters and buffers, each as (tensor, version), leaving out batch norm's running
    statistics in training mode (written, not read). None when the forward draws random
    numbers (dropout in training mode). `reads_only`: the buffers alone (spectral-norm
    vectors, ...), parameters left out: () for a forward that is a function of its
    parameters and input. `power_iteration_written`: spectral norm's u, v in training mode
    (gandyn's and torch's parametrization) counted as written too."""
    from torch.nn.modules.batchnorm import _BatchNorm
    from torch.nn.modules.dropout import _DropoutNd
    from torch.nn.utils.parametrizations import _SpectralNorm

    from gandyn.nn.spectral_norm import SpectralNorm

    written = set()
    for m in module.modules():
        if m.training and isinstance(m, _DropoutNd) and m.p > 0:
            return None
        if m.training and (isinstance(m, _BatchNorm) or
                           power_iteration_written and isinstance(m, (SpectralNorm, _SpectralNorm))):
            written |= {id(b) for b in m.buffers(recurse=False)}
    tensors = [*([] if reads_only else [module.training, *module.parameters()]),
               *(b for b in module.buffers() if id(b) not in written)]
    return tuple((t, t._version) if isinstance(t, Tensor) else t for t in tensors)


def _same_key(a, b) -> bool:
    """Keys of _generated: tensors compared by identity (never by value), the rest by equality."""
    if isinstance(a, tuple):
        return isinstance(b, tuple) and len(a) == len(b) and all(_same_key(x, y) for x, y in zip(a, b))
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return a is b
    return a == b


def _batch_norm_in_float32(module: nn.Module, args: tuple):
    """Under float16 autocast, batch norm takes its input in float32 (as NVIDIA Apex's O2 keeps
    batch norm in float32): its second derivative, which a gradient penalty on D and consensus,
    SGA and CGD take, overflows float16 at any loss scale. The next conv or linear casts back."""
    x = args[0] if args else None
    if isinstance(x, Tensor) and x.dtype == torch.float16 and torch.is_autocast_enabled(x.device.type):
        return (x.float(), *args[1:])
    return None


def _loss_scaler(precision: str, loss_scaling: dict | None):
    """The LossScaler of a float16 game (gandyn/optim/loss_scaling.py), with the options of
    `loss_scaling`; None for the other precisions, which take no such options."""
    from gandyn.optim.loss_scaling import LossScaler
    from gandyn.options import check_kwargs

    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    if loss_scaling is not None and not isinstance(loss_scaling, dict):
        raise ValueError(f"loss_scaling: expected a table of LossScaler options, got {loss_scaling!r}")
    if precision != "float16":
        if loss_scaling:
            raise ValueError(f"loss_scaling: loss scaling is for precision = \"float16\", "
                             f"this game's precision is {precision!r}")
        return None
    check_kwargs("loss_scaling", LossScaler.__init__, loss_scaling or {})
    return LossScaler(**(loss_scaling or {}))


class _RealSampler:
    """Minibatches of real data from a data source, Dataset, DataLoader or callable."""

    def __init__(self, source, batch_size: int):
        from torch.utils.data import DataLoader, Dataset

        self.source, self.batch_size = source, batch_size
        if hasattr(source, "sample") and callable(source.sample):
            self.kind = "source"
        elif isinstance(source, DataLoader):
            if source.batch_size != batch_size:
                raise ValueError(f"sample_real: the DataLoader's batch_size is {source.batch_size}, "
                                 f"the game's {batch_size}; they must be equal")
            self.kind, self._it = "loader", None
        elif isinstance(source, Dataset) or (hasattr(source, "__getitem__") and hasattr(source, "__len__")):
            if len(source) == 0:
                raise ValueError("sample_real: the dataset is empty")
            self.kind = "dataset"
        elif callable(source):
            self.kind = "callable"
        else:
            raise ValueError("sample_real: expected a data source with .sample(n, generator), a torch "
                             f"Dataset or DataLoader, or a callable n -> batch; got {type(source).__name__}")

    @staticmethod
    def _split(batch):
        if isinstance(batch, (tuple, list)):
            if len(batch) == 1:  # TensorDataset(x)
                return batch[0], None
            if len(batch) != 2:
                raise ValueError(f"sample_real: expected batches x or (x, y), got a sequence of {len(batch)}")
            return batch[0], batch[1]
        return batch, None

    def sample(self, n: int, generator: torch.Generator):
        if self.kind == "source":
            return self._split(self.source.sample(n, generator))
        if self.kind == "callable":
            return self._split(self.source(n))
        if self.kind == "dataset":
            idx = torch.randint(len(self.source), (n,), generator=generator)
            if hasattr(self.source, "get_batch"):
                return self._split(self.source.get_batch(idx))
            from torch.utils.data import default_collate
            return self._split(default_collate([self.source[int(i)] for i in idx]))
        if n != self.batch_size:
            raise ValueError(f"n: a DataLoader gives batches of {self.batch_size}, asked for {n}")
        for _ in range(2):
            if self._it is None:
                self._it = iter(self.source)
            try:
                batch = next(self._it)
            except StopIteration:
                self._it = None
                continue
            x, y = self._split(batch)
            if x.shape[0] != n:  # a last partial batch (drop_last=False): start the next epoch
                self._it = None
                continue
            return x, y
        raise ValueError("sample_real: the DataLoader gives no full batch")
