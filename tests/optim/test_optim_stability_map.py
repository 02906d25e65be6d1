"""The vectorized stability map against a NumPy float64 simulation of each method's
linear recursion on the same games, and its step-size-grid game against Bilinear."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from gandyn.games import Bilinear
from gandyn.games.base import vector_field
from gandyn.optim.stability_map import METHODS, StepSizeGridBilinear, stability_map


def test_grid_game_field_matches_bilinear():
    ref = Bilinear.random(3, batch=(5,), seed=2)
    grid = StepSizeGridBilinear(ref.A, ref.x, ref.y, copies=2)
    vx, vy = [g[0] for g in ref.vector_field()]
    for j in range(2):
        field = vector_field(grid.losses(), grid.players)
        torch.testing.assert_close(field[0][j].t(), vx, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(field[1][j].t(), vy, rtol=1e-13, atol=1e-13)


def simulate(method: str, A: np.ndarray, z0: np.ndarray, eta: float, steps: int, gamma: float) -> np.ndarray:
    """‖z_T‖ per game for the linear recursion of `method` (batched over games)."""
    B, m, _ = A.shape
    J = np.zeros((B, 2 * m, 2 * m))
    J[:, :m, m:] = A
    J[:, m:, :m] = -A.transpose(0, 2, 1)

    def mv(M, z):
        return np.einsum("bij,bj->bi", M, z)

    z, past = z0.copy(), None
    JtJ = np.einsum("bki,bkj->bij", J, J)
    for _ in range(steps):
        if method == "simgd":
            z = z - eta * mv(J, z)
        elif method == "altgd":
            x = z[:, :m] - eta * np.einsum("bij,bj->bi", A, z[:, m:])
            y = z[:, m:] + eta * np.einsum("bji,bj->bi", A, x)
            z = np.concatenate([x, y], 1)
        elif method == "extragradient":
            z = z - eta * mv(J, z - eta * mv(J, z))
        elif method == "optimistic":
            v = mv(J, z)
            z = z - eta * (2 * v - (v if past is None else past))
            past = v
        elif method == "consensus":
            z = z - eta * (mv(J, z) + gamma * mv(JtJ, z))
        elif method == "hgd":
            z = z - eta * mv(JtJ, z)
    return np.linalg.norm(z, axis=1)


def test_fractions_match_numpy_simulation():
    lrs, num, steps, rtol, gamma = [0.1, 0.4, 0.8, 1.2], 64, 150, 1e-3, 0.7
    got = stability_map(lrs, num_games=num, steps=steps, rtol=rtol, gamma=gamma, seed=5, dtype=torch.float64)
    assert got.shape == (len(METHODS), len(lrs))
    proto = Bilinear.random(2, batch=(num,), seed=5)
    A = proto.A.numpy()
    z0 = torch.cat([proto.x, proto.y], -1).detach().numpy()
    d0 = np.linalg.norm(z0, axis=1)
    for i, method in enumerate(METHODS):
        for j, eta in enumerate(lrs):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # HGD can reach 0 exactly
                ratio = simulate(method, A, z0, eta, steps, gamma) / d0
                borderline = np.mean(np.abs(np.log(ratio / rtol)) < 1e-6)
            expected = np.mean(ratio <= rtol)
            assert abs(got[i, j] - expected) <= borderline, (method, eta, got[i, j], expected)
    # SimGD never converges on a bilinear game (ρ = √(1 + η²σ²) > 1)
    assert np.all(got[METHODS.index("simgd")] == 0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="methods"):
        stability_map([0.1], ["cgd"], num_games=2, steps=1)
    with pytest.raises(ValueError, match="lrs"):
        stability_map([0.0], num_games=2, steps=1)
    with pytest.raises(ValueError, match="lrs"):
        stability_map([], num_games=2, steps=1)
    with pytest.raises(ValueError, match="num_games"):
        stability_map([0.1], num_games=0, steps=1)
