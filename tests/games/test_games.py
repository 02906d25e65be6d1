"""The games' vector fields, equilibria and errors against closed forms."""
import numpy as np
import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

from gandyn.games import Bilinear, GANGame, Quadratic, vector_field
from gandyn.games.registry import make_game
from gandyn.nn.losses import gan_losses


@given(m=st.integers(1, 6), n=st.integers(1, 6), seed=st.integers(0, 10_000))
def test_bilinear_field_is_closed_form(m, n, seed):
    g = Bilinear.random(m, n, seed=seed, offsets=True)
    (vx,), (vy,) = g.vector_field()
    A, b, c = g.A.numpy(), g.b.numpy(), g.c.numpy()
    x, y = g.x.detach().numpy(), g.y.detach().numpy()
    np.testing.assert_allclose(vx.numpy(), A @ y + b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(vy.numpy(), -(A.T @ x + c), rtol=1e-12, atol=1e-12)


@given(m=st.integers(1, 5), n=st.integers(1, 5), seed=st.integers(0, 10_000))
def test_bilinear_equilibrium_zeroes_the_field(m, n, seed):
    g = Bilinear.random(m, n, seed=seed, offsets=True)
    x, y = g.equilibrium()
    with torch.no_grad():
        g.x.copy_(x)
        g.y.copy_(y)
    assert g.distance_to_equilibrium() < 1e-10
    assert g.flat_vector_field().norm() < 1e-10


def test_bilinear_distance_to_a_set_of_equilibria():
    # A = diag(1, 0): the equilibria are {x1 = 0} x {y1 = 0}; the distance ignores x2, y2.
    A = torch.tensor([[1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
    g = Bilinear(A, x0=torch.tensor([3.0, 7.0]), y0=torch.tensor([-4.0, 11.0]))
    assert g.distance_to_equilibrium() == pytest.approx(5.0, rel=1e-12)


def test_bilinear_batch_is_a_stack_of_games():
    g = Bilinear.random(3, 4, batch=(5,), seed=1, offsets=True)
    (vx,), (vy,) = g.vector_field()
    for k in range(5):
        gk = Bilinear(g.A[k], g.b[k], g.c[k], x0=g.x[k].detach(), y0=g.y[k].detach())
        (vxk,), (vyk,) = gk.vector_field()
        torch.testing.assert_close(vx[k], vxk, rtol=1e-13, atol=1e-13)
        torch.testing.assert_close(vy[k], vyk, rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(g.distances().norm(), torch.tensor(g.distance_to_equilibrium(),
                                                                  dtype=torch.float64))


def test_bilinear_bad_input():
    with pytest.raises(ValueError, match="A: expected a tensor of shape"):
        Bilinear(torch.ones(3))
    with pytest.raises(ValueError, match="b: expected shape"):
        Bilinear(torch.ones(2, 3), b=torch.ones(3))
    with pytest.raises(ValueError, match="A: contains NaN"):
        Bilinear(torch.tensor([[float("nan")]]))
    with pytest.raises(ValueError, match="floating-point"):
        Bilinear(torch.ones(2, 2, dtype=torch.int64))


@given(m=st.integers(1, 5), n=st.integers(1, 5), mu=st.floats(-1, 1), seed=st.integers(0, 1000))
def test_quadratic_field_is_Jz_plus_d(m, n, mu, seed):
    g = Quadratic.random(m, n, mu=mu, L=2.0, seed=seed)
    z = torch.cat([g.x, g.y]).detach()
    v = g.flat_vector_field()
    torch.testing.assert_close(v, g.J @ z + g.d, rtol=1e-12, atol=1e-12)
    # J's antisymmetric part lives in the off-diagonal blocks only (players' Hessians are symmetric).
    A = (g.J - g.J.T) / 2
    assert A[:m, :m].abs().max() == 0 and A[m:, m:].abs().max() == 0
    torch.testing.assert_close((g.J + g.J.T) / 2, g.S)


def test_quadratic_equilibrium_and_monotonicity():
    g = Quadratic.random(3, 2, mu=0.3, L=1.0, seed=4)
    assert torch.linalg.eigvalsh(g.S).min() >= 0.3 - 1e-12
    z = g.equilibrium()
    with torch.no_grad():
        g.x.copy_(z[:3])
        g.y.copy_(z[3:])
    assert g.flat_vector_field().norm() < 1e-12
    assert g.distance_to_equilibrium() < 1e-12


def test_quadratic_bad_input():
    with pytest.raises(ValueError, match="S: expected a symmetric matrix"):
        Quadratic(torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64), torch.ones(1, 1))
    with pytest.raises(ValueError, match=r"S: expected shape \(\.\.\., 3, 3\)"):
        Quadratic(torch.eye(2, dtype=torch.float64), torch.ones(1, 2))


def test_vector_field_rejects_wrong_number_of_losses():
    g = Bilinear.random(2)
    with pytest.raises(ValueError, match="one loss per player"):
        vector_field(g.losses()[:1], g.players)


def test_three_player_field():
    # L_i = x_i * x_{i+1 mod 3}: v_i = x_{i+1}.
    xs = [torch.tensor([float(i + 1)], requires_grad=True) for i in range(3)]
    losses = [(xs[i] * xs[(i + 1) % 3]).sum() for i in range(3)]
    v = vector_field(losses, [[x] for x in xs])
    assert [float(vi[0]) for vi in v] == [2.0, 3.0, 1.0]


@pytest.mark.parametrize("kind", ["saturating", "non-saturating", "wasserstein", "hinge"])
def test_gan_losses_closed_forms(kind):
    dr, df = torch.tensor([0.3, -1.2], dtype=torch.float64), torch.tensor([0.7, 2.0], dtype=torch.float64)
    lg, ld = gan_losses(kind, dr, df)
    sig = torch.sigmoid
    expected_d = {
        "saturating": -(torch.log(sig(dr)).mean() + torch.log(1 - sig(df)).mean()),
        "non-saturating": -(torch.log(sig(dr)).mean() + torch.log(1 - sig(df)).mean()),
        "wasserstein": df.mean() - dr.mean(),
        "hinge": torch.clamp(1 - dr, min=0).mean() + torch.clamp(1 + df, min=0).mean(),
    }[kind]
    expected_g = {
        "saturating": -expected_d,  # zero-sum: the real term is a constant for G
        "non-saturating": -torch.log(sig(df)).mean(),
        "wasserstein": -df.mean(), "hinge": -df.mean(),
    }[kind]
    torch.testing.assert_close(ld, expected_d)
    torch.testing.assert_close(lg, expected_g)


def test_gan_game_holds_its_batch_and_regularizer_is_D_only():
    torch.manual_seed(0)
    G, D = nn.Linear(2, 2), nn.Linear(2, 1)
    calls = []

    def reg(D_, real, fake):
        calls.append(fake.requires_grad)
        return (D_.weight ** 2).sum()

    game = GANGame(G, D, lambda n: torch.randn(n, 2), lambda n: torch.randn(n, 2), batch_size=8,
                   d_regularizer=reg)
    l1, l2 = game.losses(), game.losses()
    assert [a.item() for a in l1] == [b.item() for b in l2]  # same minibatch until resample()
    assert calls == [True, True]  # G's samples keep their graph
    (vg, vd) = game.vector_field()
    # D's field contains the regularizer gradient 2W on top of the loss gradient.
    game2 = GANGame(G, D, lambda n: game.real, lambda n: game.z, batch_size=8)
    (_, vd2) = game2.vector_field()
    torch.testing.assert_close(vd[0] - vd2[0], 2 * D.weight.detach())
    with pytest.raises(ValueError, match="loss: expected one of"):
        GANGame(G, D, lambda n: None, lambda n: None, loss="bogus")


def test_registry_errors():
    with pytest.raises(ValueError, match="game: expected one of"):
        make_game("nope")
    with pytest.raises(ValueError, match="game_args for 'bilinear'"):
        make_game("bilinear", bogus=1)
    g = make_game("bilinear", dim=3, smin=1.0, smax=1.0)
    torch.testing.assert_close(torch.linalg.svdvals(g.A), torch.ones(3, dtype=torch.float64))
