"""Competitive gradient descent (Schäfer & Anandkumar 2019), two players.

Each step solves the local bilinear approximation of the game exactly: with
f = L₀ (player a = 0, parameters x), g = L₁ (player b = 1, parameters y), step
sizes η_x, η_y (the players' lr),

    Δx = −η_x (I − η_xη_y D²_xy f D²_yx g)⁻¹ (∇_x f − η_y D²_xy f ∇_y g)
    Δy = −η_y (∇_y g + D²_yx g Δx)

(the second line is the exact relation between the two solutions, so only one
linear system is solved: that of the player with fewer parameters, roles
swapped when it is y). For a zero-sum game (g = −f; `zero_sum=True`) the matrix
is I + η_xη_y D²_xy f (D²_xy f)ᵀ, symmetric positive definite, and matrix-free
conjugate gradients on Hessian-vector products solve it directly. For a
general-sum game (`zero_sum=False`, the default: always correct) CG runs on the
normal equations MᵀM Δ = Mᵀ rhs, which costs twice the HVPs, and the cross
gradients ∇_y f, ∇_x g are computed too (one more gradient evaluation).

CG is warm-started from the previous step's solution (state "cg_warm", in the
variable Δ_a/√η_a of `competitive_step`), stops
at ‖r‖ ≤ max(cg_rtol·‖rhs‖, cg_atol), and `last_cg_iterations` says how many
iterations the last step took. HVP count per step: 1 (rhs) + 1 (Δ of the other
player) + k·(2 if zero_sum else 4) for k CG iterations, + the same per matvec of
the warm start's initial residual. CG's inner products run over all of a
player's parameters, so for a batch of games (Bilinear with A of shape
(B, m, n)) the solve couples the batch entries through its step lengths.

With base="sgd" (no momentum) the parameters move by exactly (Δx, Δy). With
another base the direction −Δ/η is handed to the base optimizer: a heuristic of
this library, NOT adaptive CGD — CGD(base="adam") grows on a 2×2 bilinear game
where ACGD (gandyn.optim.ACGD, Schäfer et al.'s per-coordinate preconditioning
inside the competitive step) converges. Every group of a player must share one lr.
"""
from __future__ import annotations

import torch

from gandyn.optim.base import GameOptimizer, check_bool, check_nonnegative, check_positive, grad_or_zeros
from gandyn.optim.conjugate_gradient import conjugate_gradient


class CGD(GameOptimizer):
    def __init__(self, players, lr: float = 1e-2, base: str = "sgd", *, zero_sum: bool = False,
                 cg_rtol: float = 1e-6, cg_atol: float = 1e-12, cg_max_iter: int = 100,
                 warm_start: bool = True, **options):
        self.zero_sum = check_bool("zero_sum", zero_sum)
        self.cg_rtol = check_nonnegative("cg_rtol", cg_rtol)
        self.cg_atol = check_nonnegative("cg_atol", cg_atol)
        if self.cg_rtol == 0 and self.cg_atol == 0:
            raise ValueError("cg_rtol, cg_atol: at least one tolerance must be positive")
        if isinstance(cg_max_iter, bool) or not isinstance(cg_max_iter, int) or cg_max_iter < 1:
            raise ValueError(f"cg_max_iter: expected a positive int, got {cg_max_iter!r}")
        self.cg_max_iter = cg_max_iter
        self.warm_start = check_bool("warm_start", warm_start)
        self.last_cg_iterations = 0
        super().__init__(players, lr, base, **options)
        if self.num_players != 2:
            raise ValueError(f"players: competitive gradient descent is defined for 2 players, "
                             f"got {self.num_players}")

    def _lr(self, i: int) -> float:
        lrs = {self.param_groups[k]["lr"] for k in self.groups_of(i)}
        if len(lrs) != 1:
            raise ValueError(f"lr: CGD needs one lr per player; player {i}'s groups have {sorted(lrs)}")
        return check_positive("lr", lrs.pop())

    def _step(self, closure):
        losses, v = self.field(closure, create_graph=True)
        eta = [[self._lr(i)] * len(self.player_values(i)) for i in (0, 1)]
        deltas = self.competitive_step(losses, v, eta)
        for i in (0, 1):
            at = 0
            for k in self.groups_of(i):
                n = len(self.param_groups[k]["params"])
                self.descend(k, torch._foreach_div(deltas[i][at:at + n], -eta[i][0]))
                at += n
        return losses

    def competitive_step(self, losses, v, eta) -> list[list]:
        """(Δ₀, Δ₁), the players' CGD steps, with the step sizes η_i given per tensor of each
        player (floats, or tensors of the parameters' shapes for a per-coordinate η as in ACGD).
        The system of player a is solved in the variable w = Δ_a/√η_a, where it is
        (I − √η_a B_ab η_b B_ba √η_a) w = −√η_a (∇_a L_a − B_ab η_b ∇_b L_b),
        symmetric positive definite in the zero-sum case for any positive η."""
        diff = self.differentiable
        sizes = [sum(p.numel() for k in self.groups_of(i) for p in self.values(k)) for i in (0, 1)]
        a, b = (0, 1) if sizes[0] <= sizes[1] else (1, 0)
        xa, xb = self.player_values(a), self.player_values(b)
        ga = [t for k in self.groups_of(a) for t in v[k]]
        gb = [t for k in self.groups_of(b) for t in v[k]]
        eta_a, eta_b = eta[a], eta[b]
        scalar = not isinstance(eta_a[0], torch.Tensor)
        sqrt_a = [e ** 0.5 for e in eta_a] if scalar else torch._foreach_sqrt(eta_a)
        if not self.zero_sum:  # cross gradients ∇_b L_a and ∇_a L_b
            self.grad_evals += 1
            with torch.enable_grad():
                cross_ab = grad_or_zeros([losses[a]], xb, [torch.ones_like(losses[a])], create_graph=True)
                cross_ba = grad_or_zeros([losses[b]], xa, [torch.ones_like(losses[b])], create_graph=True)

        def hvp(outputs, inputs, w):
            self.hvp_evals += 1
            return grad_or_zeros(outputs, inputs, w, create_graph=diff)

        # B_ab = D²_ab L_a (rows a, cols b), B_ba = D²_ba L_b.
        def B_ab(w):   # ∂_a ⟨∇_b L_a, w⟩
            return torch._foreach_neg(hvp(gb, xa, w)) if self.zero_sum else hvp(cross_ab, xa, w)

        def B_ba(u):   # ∂_b ⟨∇_a L_b, u⟩
            return torch._foreach_neg(hvp(ga, xb, u)) if self.zero_sum else hvp(cross_ba, xb, u)

        def B_ab_T(u):  # ∂_b ⟨∇_a L_a, u⟩
            return hvp(ga, xb, u)

        def B_ba_T(w):  # ∂_a ⟨∇_b L_b, w⟩
            return hvp(gb, xa, w)

        def M(u):
            su = torch._foreach_mul(u, sqrt_a)
            return torch._foreach_sub(u, torch._foreach_mul(B_ab(torch._foreach_mul(B_ba(su), eta_b)), sqrt_a))

        def MT(u):
            su = torch._foreach_mul(u, sqrt_a)
            return torch._foreach_sub(u, torch._foreach_mul(B_ba_T(torch._foreach_mul(B_ab_T(su), eta_b)), sqrt_a))

        ga_c = ga if diff else [t.detach() for t in ga]
        gb_c = gb if diff else [t.detach() for t in gb]
        rhs = torch._foreach_mul(torch._foreach_sub(ga_c, B_ab(torch._foreach_mul(gb_c, eta_b))), sqrt_a)
        rhs = torch._foreach_neg(rhs)
        warm = None
        ka = self.groups_of(a)
        if self.warm_start and self.get_state(ka[0], "cg_warm") is not None:
            warm = [t for k in ka for t in self.get_state(k, "cg_warm")]
        solve_kw = dict(rtol=self.cg_rtol, atol=self.cg_atol, max_iter=self.cg_max_iter)
        if self.zero_sum:
            w, iters = conjugate_gradient(M, rhs, warm, **solve_kw)
        else:
            w, iters = conjugate_gradient(lambda u: MT(M(u)), MT(rhs), warm, **solve_kw)
        self.last_cg_iterations = iters
        if not diff:
            w = [t.detach() for t in w]
        if self.warm_start:
            at = 0
            for k in ka:
                n = len(self.param_groups[k]["params"])
                self.set_state(k, "cg_warm", w[at:at + n])
                at += n
        delta_a = torch._foreach_mul(w, sqrt_a)
        delta_b = torch._foreach_neg(torch._foreach_mul(torch._foreach_add(gb_c, B_ba(delta_a)), eta_b))
        if not diff:
            delta_b = [t.detach() for t in delta_b]
        return [delta_a, delta_b] if a == 0 else [delta_b, delta_a]
