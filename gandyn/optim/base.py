"""GameOptimizer: the shared base of every game optimizer.

A game optimizer steps all players of a game at once. It follows torch.optim
conventions: it subclasses `torch.optim.Optimizer`, holds param groups (one or
more per player; every group carries its `player` index and may have its own
`lr`), keeps per-parameter state in `self.state`, and `state_dict()` /
`load_state_dict()` round-trip exactly. `step(closure)` takes the game's loss
closure (`closure()` returns one scalar loss per player, in player order, at the
current parameters) and returns the losses at the start of the step, detached.

Every method computes, per param group, a *direction* d (the field, or a
corrected field) and hands it to the per-player *base* optimizer, which turns
it into a step s; the parameters then move by −lr·s:

  base="sgd":  s = d, or with momentum μ the heavy-ball buffer b ← μ b + d, s = b
               (nesterov=True: s = d + μ b, as torch.optim.SGD)
  base="adam": s = m̂ / (√v̂ + eps) with the usual bias-corrected moments
               (amsgrad=True: v̂ from the running maximum of v, as torch.optim.Adam)

`weight_decay` λ adds coupled L2 decay, d ← d + λθ, before the base (torch.optim.SGD's
and Adam's weight_decay; not AdamW's decoupled decay).

so Extra-Adam (Gidel et al. 2019) and Optimistic Adam (Daskalakis et al. 2018)
are Extragradient / Optimistic with base="adam".

A group's `constraint` (a box, a ball or a callable; gandyn/optim/constraints.py)
makes every method projected: θ_k ← P(θ_k) after each extrapolation and after the
update of each step.

Counters (cumulative ints, saved in the state_dict): `grad_evals` (evaluations
of the vector field: one closure call + one backward per player), `hvp_evals`
(Hessian/Jacobian-vector products: one extra backward through the field's
graph each), `loss_evals` (closure calls whose losses are not differentiated).

Differentiable mode (used by gandyn.diagnostics.update_map): when `self._diff`
is set, every update is out-of-place, parameters are *rebound* to new tensors
(`self._diff.rebind`) instead of written in place, state entries are replaced
instead of mutated, and the field is built with create_graph=True, so that one
`step` is an autograd-differentiable function of the parameters and of the
state tensors named by `memory_keys()`.
"""
from __future__ import annotations

import math
from copy import deepcopy
from typing import Callable, Sequence

import torch
from torch import Tensor
from torch.optim import Optimizer

from gandyn import distributed
from gandyn import options as _options
from gandyn.games.base import Game, vector_field
from gandyn.optim import loss_scaling
from gandyn.optim.adam_step import adam_step
from gandyn.optim.constraints import check_constraint, project

BASES = ("sgd", "adam")
_BASE_MEMORY = {"sgd": ("momentum_buffer",), "adam": ("exp_avg", "exp_avg_sq")}


def check_positive(name: str, value) -> float:
    """A finite, strictly positive real number, or ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a positive finite number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: expected a positive finite number, got {value}")
    return float(value)


def check_nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a non-negative finite number, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a non-negative finite number, got {value}")
    return float(value)


def check_bool(name: str, value) -> bool:
    """True or False (not a truthy string such as "no"), or ValueError naming `name`."""
    if not isinstance(value, bool):
        raise ValueError(f"{name}: expected true or false, got {value!r}")
    return value


def _check_unit_interval(name: str, value) -> float:
    value = check_nonnegative(name, value)
    if value >= 1:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value}")
    return value


def _dense(t: Tensor) -> bool:
    """Whether t's elements fill its storage span exactly once (contiguous up to a
    permutation of its dimensions): the layouts a kernel walking storage can take."""
    if t.numel() == 0:
        return True
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def dot(a: Sequence[Tensor], b: Sequence[Tensor]) -> Tensor:
    """⟨a, b⟩ summed over a list of tensors (0-dim tensor, differentiable)."""
    return sum((torch.sum(x * y) for x, y in zip(a, b)), torch.zeros((), dtype=a[0].dtype,
                                                                      device=a[0].device))


def grad_or_zeros(outputs: Sequence[Tensor], inputs: Sequence[Tensor],
                  grad_outputs: Sequence[Tensor], *, create_graph: bool) -> list[Tensor]:
    """Σ_j ∂⟨outputs_j, grad_outputs_j⟩/∂inputs, zeros where nothing depends on an input
    (a linear field has a constant Jacobian, whose products carry no graph)."""
    pairs = [(o, g) for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    if not pairs:
        return [torch.zeros_like(x) for x in inputs]
    with torch.enable_grad():  # (mean_grads builds its graph too: the step runs under no_grad)
        # float16 games: the product's backward runs scaled too, Jᵀ(S·u)/S (gandyn/optim/loss_scaling.py)
        gs = torch.autograd.grad([o for o, _ in pairs], list(inputs), loss_scaling.scaled([g for _, g in pairs]),
                                 retain_graph=True, create_graph=create_graph, allow_unused=True)
        # Under torchrun: the product of the mean field (every rank's, averaged; see gandyn.distributed).
        return loss_scaling.unscaled(distributed.mean_grads(
            [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, gs)]))


def _as_groups(players) -> list[dict]:
    if isinstance(players, Tensor) or not isinstance(players, (list, tuple)) or not players:
        raise ValueError("players: expected game.players (a list with one list of tensors per player) "
                         "or a list of param-group dicts each with 'player' and 'params'")
    if all(isinstance(p, dict) for p in players):
        groups = []
        for k, g in enumerate(players):
            if "player" not in g or "params" not in g:
                raise ValueError(f"players[{k}]: a param group needs the keys 'player' and 'params', "
                                 f"got {sorted(g)}")
            g = dict(g)
            g["params"] = [g["params"]] if isinstance(g["params"], Tensor) else list(g["params"])
            groups.append(g)
        return groups
    if any(isinstance(p, dict) for p in players):
        raise ValueError("players: mixes param-group dicts and parameter lists")
    groups = []
    for i, ps in enumerate(players):
        if isinstance(ps, Tensor):
            raise ValueError(f"players[{i}]: expected a list of tensors (one player's parameters), "
                             "got a tensor; pass game.players")
        groups.append({"params": list(ps), "player": i})
    return groups


class GameOptimizer(Optimizer):
    """Base of the game optimizers; subclasses implement `_step(closure) -> losses`."""

    #: method state keys that carry the dynamics from one step to the next
    method_memory: tuple[str, ...] = ()
    #: method hyperparameters (group keys) that must be non-negative
    nonnegative_options: tuple[str, ...] = ()

    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, momentum: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 nesterov: bool = False, amsgrad: bool = False, constraint=None, **options):
        type(self).check_options(type(self).__name__, {
            "lr": lr, "base": base, "momentum": momentum, "betas": betas, "eps": eps,
            "weight_decay": weight_decay, "nesterov": nesterov, "amsgrad": amsgrad,
            "constraint": constraint, **options})
        check_positive("lr", lr)
        defaults = dict(lr=lr, base=base, momentum=momentum, betas=tuple(betas), eps=eps,
                        weight_decay=weight_decay, nesterov=nesterov, amsgrad=amsgrad,
                        constraint=constraint, **options)
        self._diff = None
        self._spares: dict[int, list[Tensor]] = {}  # per group: buffers base_step writes Adam's step into
        super().__init__(_as_groups(players), defaults)
        found = sorted({g["player"] for g in self.param_groups})
        if found != list(range(len(found))):
            raise ValueError(f"players: player indices must be 0..n-1 with at least one group each, "
                             f"got {found}")
        self.num_players = len(found)
        self.grad_evals = 0
        self.hvp_evals = 0
        self.loss_evals = 0
        self.step_skipped = False  # whether the last step was skipped for an overflow (float16)
        self._first_losses = None  # the losses of the running step's first closure call

    # ---------------------------------------------------------------- options
    @classmethod
    def option_names(cls) -> list[str]:
        """Every option the constructor takes: the base's and each subclass's own. A
        subclass takes its options as keyword parameters of its __init__ (and passes the
        per-group ones on to this base as **options), so its signature is the list."""
        names: set[str] = set()
        for c in cls.__mro__:
            if issubclass(c, GameOptimizer) and "__init__" in vars(c):
                names |= set(_options.parameters(c.__init__)) - {"players"}
        return sorted(names)

    @classmethod
    def check_options(cls, where: str, options: dict) -> None:
        """Refuse (ValueError naming `where.key`) an option no constructor of the class
        takes, listing the valid ones, and a value whose type is not its annotation's."""
        valid = cls.option_names()
        for key in options:
            if key not in valid:
                raise ValueError(f"{where}.{key}: unknown option of {cls.__name__}; expected one of {valid}")
        for c in cls.__mro__:
            if issubclass(c, GameOptimizer) and "__init__" in vars(c):
                own = set(_options.parameters(c.__init__))
                _options.check_kwargs(where, c.__init__, {k: v for k, v in options.items() if k in own},
                                      extra=tuple(valid))

    # ----------------------------------------------------------------- groups
    def add_param_group(self, param_group: dict) -> None:
        valid = sorted({"params", "player", *self.defaults})
        for key in param_group:
            if key not in valid:
                raise ValueError(f"param group option {key!r}: unknown to {type(self).__name__}; "
                                 f"expected some of {valid}")
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1], len(self.param_groups) - 1)

    def _check_group(self, g: dict, k: int) -> None:
        where = f"param_groups[{k}]"
        if isinstance(g["player"], bool) or not isinstance(g["player"], int) or g["player"] < 0:
            raise ValueError(f"{where}['player']: expected a non-negative int, got {g['player']!r}")
        check_positive("lr", g["lr"])
        if g["base"] not in BASES:
            raise ValueError(f"base: expected one of {BASES}, got {g['base']!r}")
        _check_unit_interval("momentum", g["momentum"])
        if len(g["betas"]) != 2:
            raise ValueError(f"betas: expected two numbers, got {g['betas']!r}")
        _check_unit_interval("betas[0]", g["betas"][0])
        _check_unit_interval("betas[1]", g["betas"][1])
        check_positive("eps", g["eps"])
        for key, default in (("weight_decay", 0.0), ("nesterov", False), ("amsgrad", False)):
            g.setdefault(key, default)  # groups saved before these options existed
        check_nonnegative("weight_decay", g["weight_decay"])
        for key in ("nesterov", "amsgrad"):
            if not isinstance(g[key], bool):
                raise ValueError(f"{key}: expected true or false, got {g[key]!r}")
        if g["nesterov"] and (g["base"] != "sgd" or g["momentum"] == 0):
            raise ValueError("nesterov: Nesterov momentum needs base='sgd' and a momentum > 0")
        if g["amsgrad"] and g["base"] != "adam":
            raise ValueError("amsgrad: AMSGrad is an option of base='adam'")
        check_constraint(g["constraint"], f"{where}['constraint']")
        for name in self.nonnegative_options:
            check_nonnegative(name, g[name])
        for j, p in enumerate(g["params"]):
            if not p.is_floating_point():
                raise ValueError(f"{where}['params'][{j}]: expected a floating-point tensor, got {p.dtype}")
            if not p.is_leaf or not p.requires_grad:
                raise ValueError(f"{where}['params'][{j}]: expected a leaf tensor with requires_grad=True")

    def groups_of(self, player: int) -> list[int]:
        return [k for k, g in enumerate(self.param_groups) if g["player"] == player]

    def memory_keys(self) -> tuple[str, ...]:
        """State keys that carry dynamics between steps (the augmented state of the update
        map): the method's own memory, then the base optimizers' buffers."""
        base = []
        for g in self.param_groups:
            for key in _BASE_MEMORY[g["base"]] + (("max_exp_avg_sq",) if g["amsgrad"] else ()):
                if key not in base:
                    base.append(key)
        return tuple(self.method_memory) + tuple(base)

    # ----------------------------------------------------------- evaluation
    @property
    def differentiable(self) -> bool:
        return self._diff is not None

    def values(self, k: int) -> list[Tensor]:
        """Current values of group k's parameters (the leaves, or their rebound copies)."""
        ps = self.param_groups[k]["params"]
        return list(ps) if self._diff is None else [self._diff.values[p] for p in ps]

    def player_values(self, i: int) -> list[Tensor]:
        return [v for k in self.groups_of(i) for v in self.values(k)]

    def _call(self, closure, players: Sequence[int] | None = None) -> list[Tensor]:
        """The closure's losses; with `players`, a Game may leave the others' out (None) and
        skip work they alone need (Game.player_losses)."""
        with torch.enable_grad():
            losses = list(closure() if players is None or not isinstance(closure, Game)
                          else closure.player_losses(players))
        if len(losses) != self.num_players:
            raise ValueError(f"closure: expected one loss per player ({self.num_players}), "
                             f"got {len(losses)}")
        if self._first_losses is None and loss_scaling.current_scale() is not None:
            self._first_losses = losses  # what a skipped step returns (float16 loss scaling)
        return losses

    def losses_only(self, closure) -> list[Tensor]:
        """The losses at the current point, without differentiating them."""
        self.loss_evals += 1
        return self._call(closure)

    def field(self, closure, *, create_graph: bool = False, players: Sequence[int] | None = None,
              partial: bool = False):
        """(losses, v): v[k] is the field on group k (None for groups of players not asked for).
        `partial`: only the losses of `players` are needed (the others may come back None)."""
        if self.differentiable:
            # Fresh aliases: ∂L_i/∂θ_i must be the partial derivative at this point. A value
            # computed earlier in the step from θ_j (AltGD's x' = x − ηAy) must not route
            # the derivative with respect to θ_j through itself.
            for k in range(len(self.param_groups)):
                self._diff.rebind(self.param_groups[k]["params"], [t.view_as(t) for t in self.values(k)])
        losses = self._call(closure, players if partial else None)
        players = range(self.num_players) if players is None else players
        vals = [self.player_values(i) for i in players]
        with torch.enable_grad():
            # float16 games: the field of S·L, unscaled (gandyn/optim/loss_scaling.py)
            fs = vector_field(loss_scaling.scaled([losses[i] for i in players]), vals,
                              create_graph=create_graph or self.differentiable)
            self.grad_evals += 1  # (counted before an overflow skips the step: the work was done)
            if distributed.active() or loss_scaling.current_scale() is not None:
                # under torchrun the mean over ranks of their shards' fields; float16: unscaled
                flat = loss_scaling.unscaled(distributed.mean_grads([g for f in fs for g in f]))
                fs = [flat[sum(map(len, fs[:j])):sum(map(len, fs[:j + 1]))] for j in range(len(fs))]
        v: list = [None] * len(self.param_groups)
        for i, f in zip(players, fs):
            at = 0
            for k in self.groups_of(i):
                n = len(self.param_groups[k]["params"])
                v[k] = f[at:at + n]
                at += n
        return losses, v

    def field_and_hamiltonian_grad(self, closure):
        """(losses, v, ∇H) per group, with ∇H = ∇(½‖v‖²) = Jᵀv for J the Jacobian of the whole
        field: one field evaluation with create_graph and one vector–Jacobian product (one
        HVP). Outside differentiable mode v and ∇H are detached. For a batch of games
        ½‖v‖² is a sum of per-game terms, so the batch entries stay independent."""
        losses, v = self.field(closure, create_graph=True)
        ks = range(len(self.param_groups))
        flat_v = [t for k in ks for t in v[k]]
        values = [p for k in ks for p in self.values(k)]
        outs = flat_v if self.differentiable else [t.detach() for t in flat_v]
        self.hvp_evals += 1
        jtv = grad_or_zeros(flat_v, values, outs, create_graph=self.differentiable)
        vs, hs, at = [], [], 0
        for g in self.param_groups:
            n = len(g["params"])
            vs.append(outs[at:at + n])
            hs.append(jtv[at:at + n])
            at += n
        return losses, vs, hs

    # ------------------------------------------------------------ arithmetic
    def add_to_params(self, k: int, tensors: Sequence[Tensor], alpha: float) -> None:
        """θ_k ← θ_k + alpha · tensors."""
        if self._diff is None:
            torch._foreach_add_(self.param_groups[k]["params"], list(tensors), alpha=alpha)
        else:
            new = torch._foreach_add(self.values(k), list(tensors), alpha=alpha)
            self._diff.rebind(self.param_groups[k]["params"], new)

    def project(self, groups: Sequence[int] | None = None) -> None:
        """θ_k ← P_Θk(θ_k) for the constrained groups among `groups` (all by default): see
        gandyn/optim/constraints.py. Every method calls it after each extrapolation, and
        `step` after the update."""
        for k in range(len(self.param_groups)) if groups is None else groups:
            spec = self.param_groups[k]["constraint"]
            if spec is None:
                continue
            new = project(spec, self.values(k))
            if self._diff is None:
                torch._foreach_copy_(self.param_groups[k]["params"], new)
            else:
                self._diff.rebind(self.param_groups[k]["params"], new)

    def snapshot(self) -> list[list[Tensor]]:
        """The current parameters, to `restore` later in the step. The copies live in a
        scratch buffer reused across steps (not optimizer state): a fresh multi-MB
        allocation per step costs page faults comparable to the copy itself."""
        if self._diff is not None:
            return [self.values(k) for k in range(len(self.param_groups))]
        params = [[p.detach() for p in g["params"]] for g in self.param_groups]
        buf = getattr(self, "_scratch", None)
        def layout(groups):
            return [[(t.shape, t.dtype, t.device) for t in ts] for ts in groups]

        if buf is None or layout(buf) != layout(params):
            self._scratch = buf = [[p.clone() for p in ps] for ps in params]
        else:
            for b, ps in zip(buf, params):
                torch._foreach_copy_(b, ps)
        return buf

    def restore(self, snap: list[list[Tensor]]) -> None:
        for k, g in enumerate(self.param_groups):
            if self._diff is None:
                torch._foreach_copy_(g["params"], snap[k])
            else:
                self._diff.rebind(g["params"], snap[k])

    def get_state(self, k: int, key: str) -> list[Tensor] | None:
        ps = self.param_groups[k]["params"]
        if not ps or key not in self.state[ps[0]]:
            return None
        return [self.state[p][key] for p in ps]

    def set_state(self, k: int, key: str, values: Sequence[Tensor]) -> None:
        """Store copies (never references to tensors that change later), or, in
        differentiable mode, the graph-carrying tensors themselves."""
        ps = self.param_groups[k]["params"]
        old = self.get_state(k, key)
        if self._diff is not None:
            for p, v in zip(ps, values):
                self.state[p][key] = v
        elif old is not None and all(o.shape == v.shape for o, v in zip(old, values)):
            torch._foreach_copy_(old, list(values))
        else:
            for p, v in zip(ps, values):
                self.state[p][key] = v.detach().clone()

    def remember(self, k: int, key: str, step: list[Tensor]) -> None:
        """Store a step of base_step as state `key` of group k. A step that base_step wrote
        into the group's spare buffers is swapped in rather than copied (the old state
        becomes the spare): no pass over the parameters."""
        spares = self._spares
        old = self.get_state(k, key)
        if self._diff is None and old is not None and step is spares.get(k):
            for p, x in zip(self.param_groups[k]["params"], step):
                self.state[p][key] = x
            spares[k] = old
        else:
            self.set_state(k, key, step)

    def _spare(self, k: int) -> list[Tensor]:
        """Group k's spare buffers (contents undefined), for base_step to write a step into."""
        spares = self._spares
        ps = self.param_groups[k]["params"]
        if k not in spares or any(x.shape != p.shape for x, p in zip(spares[k], ps)):
            spares[k] = [torch.empty_like(p) for p in ps]  # the layout of p, m and v
        return spares[k]

    def base_step(self, k: int, d: Sequence[Tensor]) -> list[Tensor]:
        """The base optimizer's step s for direction d on group k (advances its state).
        With Adam outside differentiable mode s lives in the group's spare buffers: it is
        valid until the next base_step of group k, unless `remember` takes it."""
        g = self.param_groups[k]
        d = self._decayed(k, d)
        inplace = self._diff is None
        if g["base"] == "sgd":
            mu = g["momentum"]
            if mu == 0:
                return d
            buf = self.get_state(k, "momentum_buffer")
            if buf is None:
                self.set_state(k, "momentum_buffer", d)
            elif inplace:
                torch._foreach_mul_(buf, mu)
                torch._foreach_add_(buf, d)
            else:
                self.set_state(k, "momentum_buffer", torch._foreach_add(torch._foreach_mul(buf, mu), d))
            buf = self.get_state(k, "momentum_buffer")
            # Nesterov as torch.optim.SGD: d + μ·b with the buffer just updated
            return torch._foreach_add(d, buf, alpha=mu) if g["nesterov"] else buf
        # Adam
        if inplace:
            # torch's fused Adam kernel subtracts lr·s from its "params": on zeros with lr = −1
            # it leaves s itself, in one pass where the foreach arithmetic below takes seven.
            s = self._spare(k)
            torch._foreach_zero_(s)
            self._fused_adam(k, s, d, lr=-1.0)
            return s
        m, v, t = self._adam_state(k)
        vmax = self.get_state(k, "max_exp_avg_sq") if g["amsgrad"] else None
        m, v, vmax, s = adam_step(m, v, vmax, d, t, g["betas"], g["eps"])  # √ guarded at v = 0
        self.set_state(k, "exp_avg", m)
        self.set_state(k, "exp_avg_sq", v)
        if vmax is not None:
            self.set_state(k, "max_exp_avg_sq", vmax)
        return s

    def _fused_adam(self, k: int, params: list[Tensor], d: list[Tensor], lr: float) -> None:
        """params ← params − lr · s with s group k's Adam step for direction d (advances its state).

        torch's fused kernel walks the storage of its tensors in step, pairing elements by
        storage offset: it is right only where params, d, m and v are dense with identical
        strides. A field from a double backward through a convolution (every gradient
        penalty on a conv D), consensus's and SGA's extra terms, a channels_last model or a
        sliced parameter break that, so each tensor pair is checked: a direction of another
        layout is copied into the parameter's layout (one pass, for that tensor only), and a
        parameter whose own layout the kernel cannot walk (not dense, or moments of another
        layout, e.g. loaded from a state dict) takes the foreach arithmetic instead."""
        g = self.param_groups[k]
        m, v, t = self._adam_state(k)
        fused, rest = [], []
        for i, (p, mi, vi) in enumerate(zip(params, m, v)):
            (fused if _dense(p) and p.stride() == mi.stride() == vi.stride() else rest).append(i)
        b1, b2 = g["betas"]
        if fused:
            ds = [d[i] if d[i].stride() == params[i].stride() and _dense(d[i])
                  else torch.empty_like(params[i]).copy_(d[i]) for i in fused]
            steps = [torch.tensor(float(t), dtype=torch.float32, device=params[i].device) for i in fused]
            vmax = [self.get_state(k, "max_exp_avg_sq")[i] for i in fused] if g["amsgrad"] else []
            torch._fused_adam_([params[i] for i in fused], ds, [m[i] for i in fused],
                               [v[i] for i in fused], vmax, steps, lr=lr, beta1=b1, beta2=b2,
                               weight_decay=0.0, eps=g["eps"], amsgrad=g["amsgrad"], maximize=False)
        if rest:  # elementwise by logical index: right for any layout
            ps, ds, ms, vs = ([x[i] for i in rest] for x in (params, d, m, v))
            torch._foreach_lerp_(ms, ds, 1 - b1)
            torch._foreach_mul_(vs, b2)
            torch._foreach_addcmul_(vs, ds, ds, value=1 - b2)
            if g["amsgrad"]:
                vmax = [self.get_state(k, "max_exp_avg_sq")[i] for i in rest]
                torch._foreach_maximum_(vmax, vs)
                vs = vmax
            bc1, bc2 = 1 - b1 ** t, math.sqrt(1 - b2 ** t)
            denom = torch._foreach_add(torch._foreach_sqrt(vs), g["eps"] * bc2)
            torch._foreach_add_(ps, torch._foreach_div(ms, denom), alpha=-lr * bc2 / bc1)

    def _adam_state(self, k: int) -> tuple[list[Tensor], list[Tensor], int]:
        """Group k's Adam moments, and its step count advanced by one."""
        ps = self.param_groups[k]["params"]
        if self.get_state(k, "exp_avg") is None:
            for p in ps:
                self.state[p]["step"] = 0
                self.state[p]["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.state[p]["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                if self.param_groups[k]["amsgrad"]:
                    self.state[p]["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        t = self.state[ps[0]]["step"] + 1
        for p in ps:
            self.state[p]["step"] = t
        return self.get_state(k, "exp_avg"), self.get_state(k, "exp_avg_sq"), t

    def _decayed(self, k: int, d: Sequence[Tensor]) -> list[Tensor]:
        """d + weight_decay·θ_k: coupled L2 weight decay as torch.optim.SGD/Adam, at the point
        the step starts from (θ_t for both half-steps of extragradient)."""
        wd = self.param_groups[k]["weight_decay"]
        return list(d) if wd == 0 else torch._foreach_add(list(d), self.values(k), alpha=wd)

    def descend(self, k: int, d: Sequence[Tensor]) -> None:
        """θ_k ← θ_k − lr · base(d)."""
        g = self.param_groups[k]
        if g["base"] == "adam" and self._diff is None:
            self._fused_adam(k, g["params"], self._decayed(k, d), lr=g["lr"])  # θ − lr·s in one pass
            return
        self.add_to_params(k, self.base_step(k, d), -g["lr"])

    # ------------------------------------------------------------------ step
    def _step(self, closure) -> list[Tensor]:
        raise NotImplementedError

    def step(self, closure: Callable[[], Sequence[Tensor]]) -> list[Tensor]:  # type: ignore[override]
        """One step; `closure()` returns the players' losses at the current parameters.
        Returns the losses at the start of the step (detached).

        When the closure is a Game, its `resample()` draws the step's minibatch first (held
        for every evaluation of the step) and its `after_step()` runs last (a GAN's EMA of
        G), unless a wrapper (LookaheadMinmax) runs that itself, or the step is being
        differentiated (gandyn.diagnostics.update_map: one fixed game)."""
        if closure is None or not callable(closure):
            raise ValueError(f"closure: expected a callable returning the players' losses "
                             f"(e.g. the game itself), got {closure!r}")
        game = closure if isinstance(closure, Game) and self._diff is None else None
        if game is not None:
            game.resample()
        # float16 games carry a loss scaler (gandyn/optim/loss_scaling.py); an overflow in any
        # evaluation of the step skips all of it, from the state held here
        scaler = getattr(closure, "loss_scaler", None) if self._diff is None else None
        held = self._hold() if scaler is not None else None
        self._first_losses, self.step_skipped = None, False
        try:
            if self._diff is None:
                with torch.no_grad(), loss_scaling.scaling(scaler):
                    losses = self._step(closure)
                    self.project()
            else:
                losses = self._step(closure)
                self.project()
        except loss_scaling.Overflow:
            self._put_back(held)
            losses, self.step_skipped = self._first_losses, True
        except RuntimeError as e:
            if "does not support" in str(e) and "order" in str(e):
                raise ValueError(
                    f"{type(self).__name__}: {e}. This optimizer differentiates the vector field, and "
                    "with a gradient penalty the field already holds a second derivative of D, so it "
                    "needs a third one, which an op of D does not have (batch norm: only two). Use a D "
                    "without batch norm (spectral norm, layer norm), no penalty, or an optimizer that "
                    "does not differentiate the field (simgd, altgd, extragradient, optimistic)") from None
            raise
        finally:
            self._first_losses = None  # (holds the graph of the step's first evaluation)
        if scaler is not None:
            scaler.update(self.step_skipped)
        if game is not None and not getattr(self, "_wrapped", False) and not self.step_skipped:
            game.after_step()
        return distributed.mean([l.detach() for l in losses])  # under torchrun: the global batch's

    def _hold(self) -> dict:
        """Copies of the parameters and of every optimizer state entry (moments, past steps,
        step counts), for `_put_back` to undo a skipped step: {id(p): {key: copy}}, with the
        parameter under the key None. The tensors go into buffers reused from step to step."""
        old = getattr(self, "_held", {})
        held = {}
        for g in self.param_groups:
            for p in g["params"]:
                bufs, copies = old.get(id(p), {}), {}
                for key, value in [(None, p.detach()), *self.state.get(p, {}).items()]:
                    buf = bufs.get(key)
                    if not isinstance(value, Tensor):
                        copies[key] = deepcopy(value)
                    elif isinstance(buf, Tensor) and (buf.shape, buf.dtype, buf.device) == \
                            (value.shape, value.dtype, value.device):
                        copies[key] = buf.copy_(value)
                    else:
                        copies[key] = value.detach().clone()
                held[id(p)] = copies
        self._held = held
        return held

    def _put_back(self, held: dict) -> None:
        """Parameters and optimizer state as `_hold` copied them (entries the step created removed)."""
        for g in self.param_groups:
            for p in g["params"]:
                copies = held[id(p)]
                p.detach().copy_(copies[None])
                saved = {k: v for k, v in copies.items() if k is not None}
                state = self.state.get(p)
                if state is None or not saved:
                    self.state.pop(p, None)
                    continue
                for key in [k for k in state if k not in saved]:
                    del state[key]
                for key, value in saved.items():
                    now = state.get(key)
                    if isinstance(value, Tensor) and isinstance(now, Tensor) and now.shape == value.shape:
                        now.copy_(value)
                    else:
                        state[key] = value.clone() if isinstance(value, Tensor) else deepcopy(value)

    # ----------------------------------------------------------- state dict
    def state_dict(self) -> dict:
        """A deep copy (torch's own shares the state tensors, which steps mutate)."""
        sd = deepcopy(super().state_dict())
        sd["counters"] = {"grad_evals": self.grad_evals, "hvp_evals": self.hvp_evals,
                          "loss_evals": self.loss_evals}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = deepcopy(state_dict)
        counters = state_dict.pop("counters", None)
        if counters is None:
            raise ValueError("state_dict: missing 'counters' (not saved by a GameOptimizer?)")
        super().load_state_dict(state_dict)
        for k, g in enumerate(self.param_groups):
            self._check_group(g, k)
        self.grad_evals = int(counters["grad_evals"])
        self.hvp_evals = int(counters["hvp_evals"])
        self.loss_evals = int(counters["loss_evals"])
