"""Matrix-free Arnoldi (J) and Lanczos (own Hessian blocks) against dense float64 eigensolvers."""
import pytest
import torch

from gandyn.diagnostics import JacobianOperator, hessian_eigvals, jacobian_eigvals
from gandyn.games import Quadratic


@pytest.fixture(scope="module")
def game():
    # 300 parameters; weak coupling keeps the extreme real parts well separated (Arnoldi converges fast).
    return Quadratic.random(160, 140, mu=-0.5, L=1.0, coupling=0.5, seed=3)


@pytest.mark.parametrize("which", ["LM", "SR", "LR"])
def test_arnoldi_matches_dense_eigvals(game, which):
    k = 8
    op = JacobianOperator(game, mode="reverse")
    got = jacobian_eigvals(op, k, which, method="arnoldi", ncv=40)
    everything = torch.linalg.eigvals(game.J)  # the independent dense reference
    key = {"LM": lambda z: z.abs(), "SR": lambda z: -z.real, "LR": lambda z: z.real}[which]
    expected = everything[torch.argsort(key(everything), descending=True)][:k]
    # The k-th value may be either member of a conjugate pair: compare the sorting key and the
    # eigenvalues themselves up to conjugation.
    torch.testing.assert_close(key(got), key(expected), rtol=1e-5, atol=0)
    for z in got:
        dist = torch.minimum((everything - z).abs(), (everything - z.conj()).abs()).min()
        assert dist <= 1e-5 * z.abs(), (z, dist)
    # ordered best first
    assert torch.all(key(got)[:-1] >= key(got)[1:] - 1e-12)


@pytest.mark.parametrize("player", [0, 1])
@pytest.mark.parametrize("which", ["SA", "LA", "LM"])
def test_lanczos_matches_dense_eigvalsh(game, player, which):
    k = 5
    m = 160
    block = game.J[:m, :m] if player == 0 else game.J[m:, m:]  # player i's own Hessian block
    everything = torch.linalg.eigvalsh(block)
    expected = {"SA": everything[:k], "LA": everything.flip(0)[:k],
                "LM": everything[torch.argsort(everything.abs(), descending=True)][:k]}[which]
    got = hessian_eigvals(game, player, k, which, method="arnoldi")
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(hessian_eigvals(game, player, k, which, method="dense"), expected)


def test_dense_eigvals_of_a_matrix_are_ordered():
    J = torch.tensor([[0.0, -2.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, -1.0]], dtype=torch.float64)
    torch.testing.assert_close(jacobian_eigvals(J), torch.tensor([2j, -2j, -1], dtype=torch.complex128))
    torch.testing.assert_close(jacobian_eigvals(J, 1, "SR"), torch.tensor([-1], dtype=torch.complex128))
    torch.testing.assert_close(jacobian_eigvals(J, 2, "LR"), torch.tensor([2j, -2j], dtype=torch.complex128))


def test_bad_arguments(game):
    with pytest.raises(ValueError, match="which"):
        jacobian_eigvals(game, 3, "SM")
    with pytest.raises(ValueError, match=r"k: expected an integer in \[1, 300\]"):
        jacobian_eigvals(game, 0)
    with pytest.raises(ValueError, match="k: Arnoldi needs k < n - 1"):
        jacobian_eigvals(game, 299, method="arnoldi")
    with pytest.raises(ValueError, match="give k"):
        jacobian_eigvals(game, method="arnoldi")
    with pytest.raises(ValueError, match="square"):
        jacobian_eigvals(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="player"):
        hessian_eigvals(game, 2)
    with pytest.raises(ValueError, match="which"):
        hessian_eigvals(game, 0, 2, "SR")
