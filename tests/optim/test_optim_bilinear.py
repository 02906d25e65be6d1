"""Linear theory vs. the library on bilinear games f(x, y) = xᵀAy.

For each optimizer the tests derive here, independently of gandyn, its linear
update matrix M(η, A) in NumPy float64, restrict it to the invariant subspace
range(A) × range(Aᵀ) (the rest of the space is the equilibrium set, which every
method leaves fixed), and take the spectral radius ρ. The library then runs
from the dominant eigen-direction and its measured contraction per step must
equal ρ to 1e-3 relative, whether ρ < 1 (convergence) or ρ > 1 (divergence).

Measuring: on a real dominant eigenvalue the iterate keeps its direction and
‖z_{t+1}‖/‖z_t‖ = |λ|. On a complex pair λ, λ̄ the iterates span a 2-D invariant
plane where they rotate; the area of the parallelogram (z_t, z_{t+1}) is
multiplied by |det| = |λ|² each step, which removes the oscillation of ‖z_t‖.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gandyn.games import Bilinear
from gandyn.optim import (SGA, AltGD, Consensus, Extragradient, ExtragradientPast, HamiltonianGD,
                          LookaheadMinmax, Optimistic, SimGD)


# ------------------------------------------------------------------ theory
def field_jacobian(A: np.ndarray) -> np.ndarray:
    """v(x, y) = (∇_x f, ∇_y(−f)) = (Ay, −Aᵀx) = J z."""
    m, n = A.shape
    return np.block([[np.zeros((m, m)), A], [-A.T, np.zeros((n, n))]])


def update_matrix(method: str, A: np.ndarray, eta: float, c: float = 0.0) -> np.ndarray:
    """One step z' = M z (OGDA: state (z_t, z_{t−1})); c is consensus's γ or SGA's λ."""
    m, n = A.shape
    J = field_jacobian(A)
    I = np.eye(m + n)
    if method == "simgd":
        return I - eta * J
    if method == "altgd":  # x' = x − ηAy, then y' = y + ηAᵀx'
        return np.block([[np.eye(m), -eta * A], [eta * A.T, np.eye(n) - eta ** 2 * A.T @ A]])
    if method == "extragradient":  # z' = z − ηJ(z − ηJz)
        return I - eta * J @ (I - eta * J)
    if method == "optimistic":  # z_{t+1} = z_t − 2ηJz_t + ηJz_{t−1}
        return np.block([[I - 2 * eta * J, eta * J], [I, np.zeros_like(I)]])
    if method == "extragradient-past":  # state (z_t, z½_{t−1}): z½_t = z_t − ηJz½_{t−1}, z_{t+1} = z_t − ηJz½_t
        return np.block([[I - eta * J, eta ** 2 * J @ J], [I, -eta * J]])
    if method == "consensus":  # v + γ∇½‖v‖² = (J + γJᵀJ) z
        return I - eta * (J + c * J.T @ J)
    if method == "hgd":  # ∇½‖v‖² = JᵀJ z
        return I - eta * J.T @ J
    if method == "sga":  # v + λAᵀv with A = (J − Jᵀ)/2 the antisymmetric part
        Aa = (J - J.T) / 2
        return I - eta * (J + c * Aa.T @ J)
    raise KeyError(method)


def invariant_basis(A: np.ndarray, copies: int = 1) -> np.ndarray:
    """Orthonormal basis of range(A) × range(Aᵀ) (repeated for augmented states)."""
    U, s, Vt = np.linalg.svd(A)
    r = int((s > 1e-12 * s.max()).sum())
    m, n = A.shape
    P = np.zeros((m + n, 2 * r))
    P[:m, :r] = U[:, :r]
    P[m:, r:] = Vt[:r].T
    return np.kron(np.eye(copies), P)


def dominant_mode(M: np.ndarray, P: np.ndarray):
    """(ρ, λ, z0) for M restricted to span(P): z0 = P·Re(w) on the dominant eigenvector w."""
    Mr = P.T @ M @ P
    lam, W = np.linalg.eig(Mr)
    i = int(np.argmax(np.abs(lam)))
    w = W[:, i]
    w = w / w[np.argmax(np.abs(w))]  # make Re(w) and Im(w) both well-sized
    return float(np.abs(lam[i])), lam[i], P @ w.real


def measured_rate(traj: list[np.ndarray], complex_pair: bool, skip: int = 3) -> float:
    zs = traj[skip:]
    k = len(zs) - 2
    if not complex_pair:
        return (np.linalg.norm(zs[-1]) / np.linalg.norm(zs[0])) ** (1 / (len(zs) - 1))

    def area(a, b):
        return math.sqrt(max(a @ a * (b @ b) - (a @ b) ** 2, 0.0))

    return (area(zs[-2], zs[-1]) / area(zs[0], zs[1])) ** (1 / (2 * k))


def random_A(m, n, svals, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((m, m)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    k = min(m, n)
    return U[:, :k] @ np.diag(svals[:k]) @ V[:, :k].T


# ------------------------------------------------------------------ library
def make_game(A: np.ndarray, z0: np.ndarray) -> Bilinear:
    m = A.shape[0]
    return Bilinear(torch.tensor(A), x0=torch.tensor(z0[:m]), y0=torch.tensor(z0[m:]))


def make_optimizer(method: str, game: Bilinear, eta: float, c: float):
    if method == "simgd":
        return SimGD(game.players, lr=eta)
    if method == "altgd":
        return AltGD(game.players, lr=eta)
    if method == "extragradient":
        return Extragradient(game.players, lr=eta)
    if method == "optimistic":
        return Optimistic(game.players, lr=eta)
    if method == "extragradient-past":
        return ExtragradientPast(game.players, lr=eta)
    if method == "consensus":
        return Consensus(game.players, lr=eta, gamma=c)
    if method == "hgd":
        return HamiltonianGD(game.players, lr=eta)
    if method == "sga":
        # Fixed λ: the alignment rule's ε is absolute, so on iterates that grow to ~1e7 the
        # rounding error of ⟨v, Jᵀv⟩ (exactly 0 here) can flip its sign; tested on its own below.
        return SGA(game.players, lr=eta, lam=c, align=False)
    raise KeyError(method)


def trajectory(game: Bilinear, opt, steps: int) -> list[np.ndarray]:
    zs = [game.flat_params().numpy().copy()]
    for _ in range(steps):
        opt.step(game)
        zs.append(game.flat_params().numpy().copy())
    return zs


games = st.tuples(st.integers(1, 4), st.integers(1, 4),
                  st.lists(st.floats(0.2, 2.0), min_size=4, max_size=4),
                  st.integers(0, 2 ** 16))


@pytest.mark.parametrize("method", ["simgd", "altgd", "extragradient", "optimistic", "consensus", "sga"])
@settings(deadline=None, max_examples=12)
@given(shape=games, eta=st.floats(0.02, 1.5), c=st.floats(0.0, 2.0))
def test_contraction_equals_spectral_radius(method, shape, eta, c):
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    M = update_matrix(method, A, eta, c)
    P = invariant_basis(A, copies=2 if method == "optimistic" else 1)
    rho, lam, s0 = dominant_mode(M, P)
    if abs(rho - 1) < 1e-6:  # a rotation: nothing to contract (AltGD below its threshold)
        return
    complex_pair = abs(lam.imag) > 1e-9 * abs(lam)
    game = make_game(A, s0[: m + n])
    opt = make_optimizer(method, game, eta, c)
    if method == "optimistic":
        # the optimizer's memory is the past step, v(z_{t−1}) = J z_{t−1}
        past = field_jacobian(A) @ s0[m + n:]
        opt.state[game.x]["past_step"] = torch.tensor(past[:m])
        opt.state[game.y]["past_step"] = torch.tensor(past[m:])
    steps = 25
    zs = trajectory(game, opt, steps)
    assert measured_rate(zs, complex_pair) == pytest.approx(rho, rel=1e-3)


@settings(deadline=None, max_examples=10)
@given(shape=games, eta=st.floats(0.02, 1.0), c=st.floats(0.1, 2.0))
def test_sga_alignment_is_positive_on_bilinear(shape, eta, c):
    """J antisymmetric: ⟨v, ∇H⟩ = vᵀJᵀv = 0, so sign(0·… + ε) = + and SGA is consensus."""
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    game = Bilinear(torch.tensor(A), seed=seed)
    opt = SGA(game.players, lr=eta, lam=c, align=True)
    z0 = game.flat_params().numpy()
    opt.step(game)
    assert opt.last_lambda == c
    np.testing.assert_allclose(game.flat_params().numpy(), update_matrix("consensus", A, eta, c) @ z0,
                               rtol=1e-12, atol=1e-12)


@settings(deadline=None, max_examples=12)
@given(shape=games, frac=st.floats(0.05, 1.95))
def test_hamiltonian_gd_linear_rate(shape, frac):
    """HGD contracts every nonzero singular direction at |1 − ησ²|: the distance to the
    equilibrium set after T steps is ‖Σ_i (1 − ησ_i²)^T c_i u_i‖, in closed form."""
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    U, s, Vt = np.linalg.svd(A)
    U, Vt = U[:, :len(s)], Vt[:len(s)]  # bases of range(A) and range(Aᵀ)
    eta = frac / s.max() ** 2
    game = Bilinear(torch.tensor(A), seed=seed)
    z0 = game.flat_params().numpy()
    # coordinates of x on the left singular vectors, of y on the right ones
    cx, cy = U.T @ z0[:m], Vt @ z0[m:]
    opt = HamiltonianGD(game.players, lr=eta)
    T = 30
    for _ in range(T):
        opt.step(game)
    factor = (1 - eta * s ** 2) ** T
    expected = math.sqrt(np.sum((factor * cx) ** 2) + np.sum((factor * cy) ** 2))
    got = game.flat_params().numpy()
    on_range = math.sqrt(np.sum((U.T @ got[:m]) ** 2) + np.sum((Vt @ got[m:]) ** 2))
    assert on_range == pytest.approx(expected, rel=1e-8, abs=1e-12)
    # the null directions (the equilibrium set) are left where they are
    np.testing.assert_allclose(got[m:] - Vt.T @ (Vt @ got[m:]), z0[m:] - Vt.T @ cy, atol=1e-12)
    assert opt.hvp_evals == T and opt.grad_evals == T


@settings(deadline=None, max_examples=10)
@given(shape=games, eta=st.floats(0.02, 1.5))
def test_simgd_always_diverges(shape, eta):
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    # eigenvalues 1 ∓ iησ: ρ = √(1 + η²σ_max²) > 1
    sigma = np.linalg.svd(A, compute_uv=False).max()
    rho = math.sqrt(1 + (eta * sigma) ** 2)
    assert max(abs(np.linalg.eigvals(update_matrix("simgd", A, eta)))) == pytest.approx(rho, rel=1e-12)
    game = Bilinear(torch.tensor(A), seed=seed)
    d0 = float(game.distances())
    opt = SimGD(game.players, lr=eta)
    for _ in range(40):
        opt.step(game)
    # every mode grows by at least √(1 + η²σ_min²) per step
    sigma_min = np.linalg.svd(A, compute_uv=False).min()
    assert float(game.distances()) >= d0 * (1 + (eta * sigma_min) ** 2) ** 20 * (1 - 1e-9)


@settings(deadline=None, max_examples=10)
@given(shape=games, frac=st.floats(0.05, 0.95))
def test_altgd_bounded_below_threshold(shape, frac):
    """For ησ_max < 2 AltGD's matrix has all eigenvalues on the unit circle and is
    diagonalizable: ‖z_t‖ ≤ κ(V)‖z_0‖ forever (V the eigenvectors)."""
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    eta = frac * 2 / np.linalg.svd(A, compute_uv=False).max()
    M = update_matrix("altgd", A, eta)
    lam, V = np.linalg.eig(M)
    np.testing.assert_allclose(np.abs(lam), 1.0, rtol=1e-9)
    kappa = np.linalg.cond(V)
    game = Bilinear(torch.tensor(A), seed=seed)
    z0 = np.linalg.norm(game.flat_params().numpy())
    zs = trajectory(game, AltGD(game.players, lr=eta), 300)
    assert max(np.linalg.norm(z) for z in zs) <= kappa * z0 * (1 + 1e-9)


def _ogda_threshold() -> float:
    """Largest x = ησ with the OGDA characteristic roots μ² − (1 − 2ix)μ − ix inside the unit
    circle, by bisection (it is 1/√3)."""
    lo, hi = 0.1, 1.5
    for _ in range(80):
        mid = (lo + hi) / 2
        if max(abs(np.roots([1, -(1 - 2j * mid), -1j * mid]))) < 1:
            lo = mid
        else:
            hi = mid
    return lo


@pytest.mark.parametrize("method,threshold", [("extragradient", 1.0), ("optimistic", 1 / math.sqrt(3)),
                                              ("extragradient-past", 1 / math.sqrt(3))])
def test_convergence_thresholds(method, threshold):
    """EG converges iff ησ_max < 1 (|1 − iησ − η²σ²|² = 1 − η²σ² + η⁴σ⁴), OGDA iff ησ_max < 1/√3;
    EG-past is OGDA on the extrapolated sequence z½, so it shares OGDA's threshold."""
    if method != "extragradient":
        assert _ogda_threshold() == pytest.approx(threshold, rel=1e-12)
    sigma = 1.7
    A = sigma * np.linalg.qr(np.random.default_rng(0).standard_normal((3, 3)))[0]  # all σ equal
    for factor, converges in ((0.97, True), (1.03, False)):
        eta = factor * threshold / sigma
        rho = max(abs(np.linalg.eigvals(update_matrix(method, A, eta))))
        assert (rho < 1) == converges
        game = Bilinear(torch.tensor(A), seed=1)
        d0 = float(game.distances())
        opt = make_optimizer(method, game, eta, 0.0)
        for _ in range(400):
            opt.step(game)
        ratio = float(game.distances()) / d0
        assert (ratio < 0.5) == converges, (factor, ratio)


@settings(deadline=None, max_examples=8)
@given(shape=games, eta=st.floats(0.05, 0.6), k=st.integers(1, 6), alpha=st.floats(0.1, 0.9))
def test_lookahead_simgd_rate(shape, eta, k, alpha):
    """Every k steps lookahead applies (1 − α)I + αM^k to the slow weights: on the
    dominant eigenvector of that matrix the k-step contraction is its spectral radius."""
    m, n, svals, seed = shape
    A = random_A(m, n, svals, seed)
    M = update_matrix("simgd", A, eta)
    L = (1 - alpha) * np.eye(m + n) + alpha * np.linalg.matrix_power(M, k)
    rho, lam, z0 = dominant_mode(L, invariant_basis(A))
    if abs(rho - 1) < 1e-6:
        return
    game = make_game(A, z0)
    opt = LookaheadMinmax(SimGD(game.players, lr=eta), k=k, alpha=alpha)
    slow = trajectory(game, opt, 25 * k)[::k]
    assert measured_rate(slow, abs(lam.imag) > 1e-9 * abs(lam)) == pytest.approx(rho, rel=1e-3)
