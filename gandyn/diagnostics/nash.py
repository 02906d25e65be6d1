"""Is this point a differential Nash equilibrium, and is it locally stable?

Differential Nash equilibrium (Ratliff, Burden & Sastry 2013), written in the
players' own losses — every player of this library minimizes its own L_i:

    ‖v‖ = 0  and  ∇²_{θ_iθ_i} L_i ≻ 0 for every player i.

This one condition covers both of Ratliff's conventions. In the zero-sum
convention a single f is minimized by G and maximized by D, and the test reads
∇²_θθ f ≻ 0, ∇²_φφ f ≺ 0; here L_G = f and L_D = −f (plus D's own
regularizers), so ∇²_φφ L_D = −∇²_φφ f ≻ 0 is the same test. In the
general-sum convention each player's own Hessian block must be positive
definite, which is the condition above verbatim.

Local stability is a different question: the gradient flow θ̇ = −v is locally
asymptotically stable at a stationary point iff every eigenvalue of the game
Jacobian J has a positive real part. A DNE need not be stable and a stable
point need not be a DNE (Mazumdar et al. 2019), so the report gives both, with
the numbers behind them rather than a bare boolean:

- per player: ‖v_i‖ and the extreme eigenvalues of its own Hessian block;
  its *margin* is λ_min(∇²_{θ_iθ_i} L_i) (> 0: positive definite by that much);
- the game: ‖v‖, min Re λ(J) (the stability margin) and max |λ(J)|.

Small games use dense eigensolvers (all eigenvalues); networks use Lanczos for
the Hessian blocks and Arnoldi for J (see gandyn.diagnostics.eigen), which
return the extreme eigenvalues only.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from gandyn.diagnostics.eigen import as_operator, hessian_eigvals, jacobian_eigvals
from gandyn.diagnostics.jacobian import JacobianOperator
from gandyn.games.base import Game


@dataclass
class PlayerReport:
    name: str
    num_params: int
    grad_norm: float
    hessian_min: float          # λ_min(∇²_{θ_iθ_i} L_i)
    hessian_max: float          # λ_max(∇²_{θ_iθ_i} L_i)
    positive_definite: bool     # hessian_min > pd_tol
    margin: float               # hessian_min: how far the block is from losing definiteness


@dataclass
class NashReport:
    grad_norm: float
    grad_tol: float
    pd_tol: float
    stationary: bool            # grad_norm <= grad_tol
    is_dne: bool                # stationary and every own Hessian block positive definite
    jacobian_min_real: float    # min Re λ(J): > 0 means locally asymptotically stable
    jacobian_max_abs: float     # max |λ(J)|
    locally_stable: bool        # stationary and jacobian_min_real > pd_tol
    exact: bool                 # eigenvalues from dense solvers (else Arnoldi/Lanczos)
    players: list[PlayerReport] = field(default_factory=list)
    jacobian_eigvals: list[list[float]] = field(default_factory=list)  # [re, im] pairs

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        lines = [f"‖v‖ = {self.grad_norm:.3e} ({'stationary' if self.stationary else 'not stationary'}, "
                 f"tol {self.grad_tol:g})"]
        for p in self.players:
            lines.append(f"  {p.name}: ‖v_i‖ = {p.grad_norm:.3e}, own Hessian eigenvalues in "
                         f"[{p.hessian_min:.4g}, {p.hessian_max:.4g}] "
                         f"({'positive definite' if p.positive_definite else 'NOT positive definite'})")
        lines.append(f"J: min Re λ = {self.jacobian_min_real:.4g}, max |λ| = {self.jacobian_max_abs:.4g}")
        lines.append(f"differential Nash equilibrium: {self.is_dne}; locally stable: {self.locally_stable}")
        return "\n".join(lines)


def nash_report(game: Game | JacobianOperator, *, grad_tol: float = 1e-6, pd_tol: float = 1e-10, k: int = 6,
                max_dense: int = 1024, mode: str = "auto", **solver) -> NashReport:
    """Differential-Nash and stability report at the game's current parameters.

    grad_tol: ‖v‖ at or below it counts as stationary. pd_tol: a Hessian block is
    positive definite when its smallest eigenvalue exceeds it, and the point is
    locally stable when min Re λ(J) does (round-off puts the purely imaginary
    eigenvalues of a rotation at ±1e-17, on either side of 0). k: how many
    eigenvalues of J the matrix-free path computes (smallest real part) for
    networks. `solver` goes to the eigensolvers (tol, ncv, maxiter, seed).
    """
    for name, value in (("grad_tol", grad_tol), ("pd_tol", pd_tol)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    op = as_operator(game, mode)
    v = op.field().double()
    names = list(op.game.player_names) or []
    names += [f"player{i}" for i in range(len(names), len(op.sizes))]
    exact = op.n <= max_dense
    players = []
    for i, m in enumerate(op.sizes):
        if m <= max_dense:
            lam = hessian_eigvals(op, i, which="SA", method="dense")
            lo, hi = float(lam[0]), float(lam[-1])
        else:
            lo = float(hessian_eigvals(op, i, 1, "SA", method="arnoldi", **solver)[0])
            hi = float(hessian_eigvals(op, i, 1, "LA", method="arnoldi", **solver)[0])
        players.append(PlayerReport(name=names[i], num_params=m, grad_norm=float(v[op.player_slice(i)].norm()),
                                    hessian_min=lo, hessian_max=hi, positive_definite=lo > pd_tol, margin=lo))
    if exact:
        lam = jacobian_eigvals(op, which="SR", method="dense")
        max_abs = float(lam.abs().max())
    else:
        lam = jacobian_eigvals(op, min(k, op.n - 2), "SR", method="arnoldi", **solver)
        max_abs = float(jacobian_eigvals(op, 1, "LM", method="arnoldi", **solver).abs()[0])
    grad_norm = float(v.norm())
    stationary = grad_norm <= grad_tol
    min_real = float(lam.real.min())
    return NashReport(grad_norm=grad_norm, grad_tol=float(grad_tol), pd_tol=float(pd_tol), stationary=stationary,
                      is_dne=stationary and all(p.positive_definite for p in players),
                      jacobian_min_real=min_real, jacobian_max_abs=max_abs,
                      locally_stable=stationary and min_real > pd_tol, exact=exact, players=players,
                      jacobian_eigvals=[[float(z.real), float(z.imag)] for z in lam])
