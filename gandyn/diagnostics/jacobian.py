"""The game Jacobian J = ∂v/∂θ of the vector field v = (∇_{θ_i} L_i)_i.

Row block i of J is ∂(∇_{θ_i} L_i)/∂θ: its diagonal block J_ii = ∇²_{θ_iθ_i} L_i
is player i's own (symmetric) Hessian; the off-diagonal blocks are the
interactions. J itself is not symmetric.

Two forms, both written only against the Game protocol:

- `game_jacobian(game)`: the dense (n, n) matrix, for small games (row r is a
  vector–Jacobian product with the r-th unit vector: n backward passes).
- `game_jacobian(game, matrix_free=True)`: a `JacobianOperator` with
  `matvec` (J u) and `rmatvec` (Jᵀ w), for networks.

J u is computed one of two ways (`mode`):

- "forward": forward-over-reverse with `torch.func` — `torch.func.jvp` of the
  field θ ↦ v(θ), itself computed by `torch.func.vjp` of the losses. The game is
  made functional by swapping its parameter tensors (attributes of the game,
  or parameters of its nn.Modules) for the transformed ones while `losses()`
  runs. One forward-mode pass through forward and backward graph.
- "reverse": double backward. (J u)_i = ∇_{θ_i}⟨∇_θ L_i, u⟩, a Hessian–vector
  product of each loss restricted to its player's rows, from gradients of every
  loss with respect to all parameters built with `create_graph=True`.
- "auto" (default): whichever of the two is faster on one timed product, when
  the game allows forward mode (every parameter can be located and every op in
  the losses has a forward-mode formula; else `forward_unavailable` says why).
  `mode` and `product_ms` on the operator say what was chosen and measured.

Jᵀ w is always reverse mode: Jᵀw = ∇_θ⟨v, w⟩ (one extra backward pass).
All products are taken at the parameters the game holds when the operator is
built; a stochastic game's minibatch is whatever it holds (call `resample()`
before, not during, an eigen-solve). Forward mode re-runs `losses()` for every
product, so randomness drawn inside `losses()` (rather than in `resample()`)
must come from a generator seeded afresh in each call, or the products are of
different functions. Modules' buffers (batch-norm statistics) are swapped for
copies during forward-mode products, so the game's own buffers stay as they were.

Under torchrun (gandyn.distributed) each rank's game holds its shard of the global batch;
J of the mean field is the mean of the ranks' Jacobians, so v, J u and Jᵀ w are averaged
over ranks (one all-reduce per product) and every rank runs the same solver on the same
operator. "auto" is then "reverse": a per-rank timing could pick different modes, and
forward mode cannot run SyncBatchNorm's collectives.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from gandyn import distributed
from gandyn.bench.timing import median_ms
from gandyn.games.base import Game, flatten, unflatten, vector_field

MODES = ("auto", "forward", "reverse")


@functools.cache
def _load_jvp_decompositions() -> None:
    """Load torch's forward-mode decompositions once, quietly. torch imports them at the
    first forward-mode product and registers each with `torch.jit.script`, which torch
    itself has deprecated: a FutureWarning about torch's own internals that every
    `gandyn diagnose` would print. The code that warns is torch's; only the message is
    silenced, for that one import."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
        from torch._decomp import decompositions_for_jvp  # noqa: F401


def _check_game(game) -> None:
    if not isinstance(game, Game):
        raise TypeError(f"game: expected a gandyn.games.Game, got {type(game).__name__}")
    if game.num_params() == 0:
        raise ValueError("game: has no parameters")


def _parameter_slots(game: Game) -> list[list[tuple[object, str, bool]]]:
    """For every parameter, where it lives: (owner, name, is_module_parameter) for each
    attribute of the game, or parameter of one of its modules, that holds it."""
    wanted = {id(p): k for k, p in enumerate(game.params())}
    slots: list[list[tuple[object, str, bool]]] = [[] for _ in wanted]
    for attr, value in vars(game).items():
        if isinstance(value, Tensor) and id(value) in wanted:
            slots[wanted[id(value)]].append((game, attr, False))
        elif isinstance(value, nn.Module):
            for module in value.modules():
                for name, p in module._parameters.items():
                    if p is not None and id(p) in wanted:
                        slots[wanted[id(p)]].append((module, name, True))
    return slots


@contextlib.contextmanager
def _swapped(slots, tensors: Sequence[Tensor]) -> Iterator[None]:
    """Temporarily replace every parameter by the given tensor (for torch.func transforms)."""
    saved = []
    try:
        for where, t in zip(slots, tensors):
            for owner, name, in_module in where:
                if in_module:  # bypass nn.Module.__setattr__, which only accepts Parameters
                    saved.append((owner._parameters, name, owner._parameters[name]))
                    owner._parameters[name] = t
                else:
                    saved.append((owner.__dict__, name, owner.__dict__[name]))
                    owner.__dict__[name] = t
        yield
    finally:
        for store, name, original in reversed(saved):
            store[name] = original


@contextlib.contextmanager
def _private_buffers(game: Game) -> Iterator[None]:
    """Give the game's modules copies of their buffers made inside the transform.

    torch.func refuses in-place updates of tensors captured from outside (batch norm's
    running statistics in training mode); copies made inside may be updated, and the
    game's own statistics are left untouched by the diagnostics.
    """
    saved = []
    try:
        for value in vars(game).values():
            if isinstance(value, nn.Module):
                for module in value.modules():
                    for name, b in module._buffers.items():
                        if b is not None:
                            saved.append((module._buffers, name, b))
                            module._buffers[name] = b.clone()
        yield
    finally:
        for store, name, original in reversed(saved):
            store[name] = original


class JacobianOperator:
    """Matrix-free J (and Jᵀ) of a game's vector field at its current parameters.

    Vectors are flat 1-D tensors (player after player, parameter after parameter,
    as `Game.params()`), or NumPy arrays for the SciPy LinearOperator view. The
    operator keeps the field's graph, so build a new one after the game moves.
    """

    def __init__(self, game: Game, *, mode: str = "auto"):
        _check_game(game)
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        self.game = game
        self.params = game.params()
        self.n = sum(p.numel() for p in self.params)
        self.sizes = [sum(p.numel() for p in ps) for ps in game.players]
        self.offsets = np.cumsum([0] + self.sizes).tolist()
        self.dtype = self.params[0].dtype
        self.device = self.params[0].device
        self.num_matvecs = 0
        self.num_rmatvecs = 0
        # The field with its graph, for Jᵀw (and for the value of v).
        losses = game.losses()
        self._losses = losses
        self._field = [g for gs in vector_field(losses, game.players, create_graph=True) for g in gs]
        self._full_grads: list[list[Tensor]] | None = None  # built on the first reverse J u
        self._dense: Tensor | None = None
        self.forward_unavailable: str | None = None  # why forward mode cannot be used, if so
        self.product_ms: dict[str, float] = {}  # per-product times measured by mode="auto"
        self._requested = mode
        self._mode: str | None = "reverse" if mode == "reverse" or (mode == "auto" and distributed.active()) \
            else None
        if mode == "forward":
            self._resolve_mode()  # fail here, not in the middle of an eigen-solve

    @property
    def mode(self) -> str:
        """"forward" or "reverse": how J u is computed ("auto" decides on first use)."""
        if self._mode is None:
            self._resolve_mode()
        return self._mode

    def _resolve_mode(self) -> None:
        self._slots = _parameter_slots(self.game)
        missing = [k for k, s in enumerate(self._slots) if not s]
        if missing:
            self.forward_unavailable = (f"parameters {missing} are neither attributes of the game nor "
                                        "module parameters, so the game cannot be made functional")
        else:
            try:  # one product tells whether every op has a forward-mode formula
                self._forward_matvec(torch.zeros(self.n, dtype=self.dtype, device=self.device))
            except (RuntimeError, NotImplementedError) as e:
                self.forward_unavailable = f"forward-mode AD failed: {str(e).splitlines()[0]}"
        if self._requested == "forward":
            if self.forward_unavailable is not None:
                raise RuntimeError(f"mode='forward': {self.forward_unavailable}")
            self._mode = "forward"
        elif self.forward_unavailable is not None:
            self._mode = "reverse"
        else:
            # Which is faster depends on the game (torch.func's overhead dominates small
            # games, forward mode wins on some networks): time one product of each.
            u = torch.randn(self.n, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64).to(self.dtype).to(self.device)
            for name, fn in (("forward", self._forward_matvec), ("reverse", self._reverse_matvec)):
                self.product_ms[name] = median_ms(lambda: fn(u), device=str(self.device), warmup=1, repeat=1)
            self._mode = min(self.product_ms, key=self.product_ms.get)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n, self.n)

    def field(self) -> Tensor:
        """v at the operator's point, flat and detached."""
        return self._mean(flatten([g.detach() for g in self._field]))

    @staticmethod
    def _mean(x: Tensor) -> Tensor:
        """The mean over ranks under torchrun (the global batch's product), else x."""
        return distributed.mean([x])[0]

    def player_slice(self, i: int) -> slice:
        return slice(self.offsets[i], self.offsets[i + 1])

    def _check_vector(self, u: Tensor, name: str) -> Tensor:
        if not isinstance(u, Tensor):
            u = torch.as_tensor(u)
        if u.shape != (self.n,):
            raise ValueError(f"{name}: expected a flat vector of shape ({self.n},), got {tuple(u.shape)}")
        if not torch.isfinite(u).all():
            raise ValueError(f"{name}: contains NaN or Inf")
        return u.to(dtype=self.dtype, device=self.device)

    # -- J u -------------------------------------------------------------------------------
    def matvec(self, u: Tensor) -> Tensor:
        """J u."""
        u = self._check_vector(u, "u")
        self.num_matvecs += 1
        return self._mean(self._forward_matvec(u) if self.mode == "forward" else self._reverse_matvec(u))

    def _functional_field(self, flat: Tensor) -> Tensor:
        def losses_fn(*ts):
            with _swapped(self._slots, ts), _private_buffers(self.game):
                return torch.stack([loss.reshape(()) for loss in self.game.losses()])

        # One forward pass for all losses; player i's field is the vjp with the i-th unit cotangent.
        losses, vjp_fn = torch.func.vjp(losses_fn, *unflatten(flat, self.params))
        parts, k = [], 0
        for i, ps in enumerate(self.game.players):
            grads = vjp_fn(torch.nn.functional.one_hot(torch.tensor(i), len(losses)).to(losses))
            parts += [g.reshape(-1) for g in grads[k:k + len(ps)]]
            k += len(ps)
        return torch.cat(parts)

    def _forward_matvec(self, u: Tensor) -> Tensor:
        theta = flatten([p.detach() for p in self.params])
        _load_jvp_decompositions()
        _, ju = torch.func.jvp(self._functional_field, (theta,), (u,))
        return ju.detach()

    def _reverse_matvec(self, u: Tensor) -> Tensor:
        if self._full_grads is None:
            # Gradients of every loss w.r.t. all parameters, kept differentiable.
            self._full_grads = [vector_field([loss], [self.params], create_graph=True)[0]
                                for loss in self._losses]
        us = unflatten(u, self.params)
        out = []
        k = 0
        for i, ps in enumerate(self.game.players):
            own = self.params[k:k + len(ps)]
            dot = sum((g * w).sum() for g, w in zip(self._full_grads[i], us))
            if isinstance(dot, Tensor) and dot.requires_grad:
                hv = torch.autograd.grad(dot, own, retain_graph=True, allow_unused=True)
                out += [torch.zeros_like(p) if h is None else h for p, h in zip(own, hv)]
            else:
                out += [torch.zeros_like(p) for p in own]
            k += len(ps)
        return flatten(out).detach()

    # -- Jᵀ w ------------------------------------------------------------------------------
    def rmatvec(self, w: Tensor) -> Tensor:
        """Jᵀ w = ∇_θ ⟨v, w⟩."""
        w = self._check_vector(w, "w")
        self.num_rmatvecs += 1
        ws = unflatten(w, self.params)
        dot = sum((g * x).sum() for g, x in zip(self._field, ws))
        if not (isinstance(dot, Tensor) and dot.requires_grad):
            return self._mean(torch.zeros_like(w))  # every rank takes part in every product
        grads = torch.autograd.grad(dot, self.params, retain_graph=True, allow_unused=True)
        return self._mean(flatten([torch.zeros_like(p) if g is None else g
                                   for p, g in zip(self.params, grads)]).detach())

    # -- views -----------------------------------------------------------------------------
    def dense(self) -> Tensor:
        """The (n, n) matrix, one Jᵀe_r per row r (n reverse products; computed once)."""
        if self._dense is None:
            eye = torch.eye(self.n, dtype=self.dtype, device=self.device)
            self._dense = torch.stack([self.rmatvec(eye[r]) for r in range(self.n)])
        return self._dense

    def to_scipy(self, block: int | None = None, symmetric: bool = False):
        """A scipy.sparse.linalg.LinearOperator in float64: J, or player `block`'s own
        Hessian block J_ii (symmetric; then `rmatvec` = `matvec`)."""
        from scipy.sparse.linalg import LinearOperator

        def to_np(t: Tensor) -> np.ndarray:
            return t.detach().to("cpu", torch.float64).numpy()

        def from_np(x: np.ndarray) -> Tensor:
            x = np.asarray(x).reshape(-1)
            if np.iscomplexobj(x):
                raise TypeError("complex vectors: apply the real and imaginary parts separately")
            return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(self.dtype)

        if block is None:
            def mv(x):
                x = np.asarray(x).reshape(-1)
                if np.iscomplexobj(x):  # J is real: J(a + ib) = Ja + iJb
                    return to_np(self.matvec(from_np(x.real))) + 1j * to_np(self.matvec(from_np(x.imag)))
                return to_np(self.matvec(from_np(x)))

            def rmv(x):
                x = np.asarray(x).reshape(-1)
                if np.iscomplexobj(x):
                    return to_np(self.rmatvec(from_np(x.real))) + 1j * to_np(self.rmatvec(from_np(x.imag)))
                return to_np(self.rmatvec(from_np(x)))
            return LinearOperator((self.n, self.n), matvec=mv, rmatvec=rmv, dtype=np.float64)

        if not 0 <= block < len(self.sizes):
            raise ValueError(f"block: expected a player index in [0, {len(self.sizes)}), got {block}")
        sl, m = self.player_slice(block), self.sizes[block]

        def block_mv(x):
            u = torch.zeros(self.n, dtype=self.dtype, device=self.device)
            u[sl] = from_np(x).to(self.device)
            return to_np(self.matvec(u)[sl])
        return LinearOperator((m, m), matvec=block_mv, rmatvec=block_mv, dtype=np.float64)


def game_jacobian(game: Game, *, matrix_free: bool = False, mode: str = "auto",
                  max_dense: int = 4096) -> Tensor | JacobianOperator:
    """J = ∂v/∂θ at the game's current parameters.

    Dense (n, n) tensor by default (refused above `max_dense` parameters: ask for
    `matrix_free=True`, which returns a `JacobianOperator`).
    """
    _check_game(game)
    n = game.num_params()
    if matrix_free:
        return JacobianOperator(game, mode=mode)
    if n > max_dense:
        raise ValueError(f"game: {n} parameters is too many for a dense Jacobian (max_dense={max_dense}); "
                         "use game_jacobian(game, matrix_free=True)")
    return JacobianOperator(game, mode="reverse").dense()
