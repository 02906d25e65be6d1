"""The game Jacobian against closed forms (quadratic, bilinear) and finite differences (a small GAN
with the project's spectral normalization and gradient penalty in the graph)."""
import pytest
import torch
from torch import nn

from gandyn.diagnostics import JacobianOperator, game_jacobian, jacobian_eigvals
from gandyn.games import Bilinear, GANGame, Quadratic
from gandyn.nn import spectral_norm
from gandyn.nn.penalties import gradient_penalty


@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_quadratic_jacobian_products(mode):
    game = Quadratic.random(7, 5, mu=-0.3, seed=2)  # v(z) = Jz + d with J known
    op = JacobianOperator(game, mode=mode)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        u = torch.randn(12, generator=g, dtype=torch.float64)
        torch.testing.assert_close(op.matvec(u), game.J @ u, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(op.rmatvec(u), game.J.T @ u, rtol=1e-12, atol=1e-12)
    assert op.mode in ("forward", "reverse")
    torch.testing.assert_close(game_jacobian(game), game.J, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(op.field(), game.J @ game.flat_params() + game.d)


@pytest.mark.parametrize("m, n", [(4, 4), (5, 3)])
def test_bilinear_eigenvalues_are_plus_minus_i_singular_values(m, n):
    game = Bilinear.random(m, n, seed=m + n, offsets=True)
    Z = torch.zeros
    expected_J = torch.cat([torch.cat([Z(m, m, dtype=torch.float64), game.A], 1),
                            torch.cat([-game.A.T, Z(n, n, dtype=torch.float64)], 1)])
    torch.testing.assert_close(game_jacobian(game), expected_J, rtol=0, atol=1e-15)
    lam = jacobian_eigvals(game)
    sigma = torch.linalg.svdvals(game.A)
    expected = torch.sort(torch.cat([sigma, sigma, torch.zeros(abs(m - n), dtype=torch.float64)]),
                          descending=True).values
    torch.testing.assert_close(lam.abs(), expected, rtol=1e-10, atol=1e-10)  # |λ| = σ_j, each twice
    assert lam.real.abs().max() < 1e-10                                     # on the imaginary axis
    assert (lam.imag > 1e-8).sum() == min(m, n)                             # one +iσ_j per σ_j


def _small_gan(penalty_kind):
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2)).double()
    D = spectral_norm(nn.Sequential(nn.Linear(2, 8), nn.Softplus(), nn.Linear(8, 1)).double())
    D.eval()  # the power-iteration vectors stay fixed, so the field is one function of θ

    def regularizer(D, real, fake):  # a fresh ε generator: every evaluation sees the same interpolates
        # detach=False: the interpolates move with G, and J_DG must see that.
        return gradient_penalty(D, real, fake, kind=penalty_kind, weight=0.7,
                                generator=torch.Generator().manual_seed(1), detach=False)

    g = torch.Generator().manual_seed(2)
    real = torch.randn(16, 2, generator=g, dtype=torch.float64)
    z = torch.randn(16, 3, generator=g, dtype=torch.float64)
    return GANGame(G, D, lambda b: real, lambda b: z, loss="non-saturating", batch_size=16,
                   d_regularizer=regularizer)


def _check_against_finite_differences(game, mode, directions):
    theta = game.flat_params()
    g = torch.Generator().manual_seed(3)
    us = [torch.randn(theta.numel(), generator=g, dtype=torch.float64) * directions for _ in range(2)]
    ws = [torch.randn(theta.numel(), generator=g, dtype=torch.float64) for _ in range(2)]
    op = JacobianOperator(game, mode=mode)
    products = [(op.matvec(u), op.rmatvec(w)) for u, w in zip(us, ws)]
    del op  # its graph holds the parameters, which the finite differences move in place
    h = 1e-6
    for u, w, (ju, jtw) in zip(us, ws, products):
        game.set_flat_params(theta + h * u)
        vp = game.flat_vector_field().detach()
        game.set_flat_params(theta - h * u)
        vm = game.flat_vector_field().detach()
        game.set_flat_params(theta)
        fd = (vp - vm) / (2 * h)  # central difference: error O(h²) + O(eps/h)
        torch.testing.assert_close(ju, fd, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(jtw @ u, w @ fd, rtol=1e-6, atol=1e-7)  # ⟨Jᵀw, u⟩ = ⟨w, Ju⟩


def _d_directions(game):
    n_g = sum(p.numel() for p in game.players[0])
    mask = torch.ones(game.num_params(), dtype=torch.float64)
    mask[:n_g] = 0
    return mask


@pytest.mark.parametrize("mode", ["reverse", "auto"])
def test_jacobian_products_match_finite_differences_on_a_small_gan_r1(mode):
    # R1 is taken at real samples, which do not move with G: every direction is checked.
    _check_against_finite_differences(_small_gan("r1"), mode, directions=1.0)


@pytest.mark.parametrize("mode", ["reverse", "auto"])
def test_jacobian_products_match_finite_differences_on_a_small_gan_wgan_gp(mode):
    game = _small_gan("wgan-gp")
    _check_against_finite_differences(game, mode, directions=_d_directions(game))


def test_wgan_gp_cross_block_matches_finite_differences():
    # Directions in G's parameters: J_DG includes ∂(∇_φ penalty)/∂θ_G through the interpolates.
    game = _small_gan("wgan-gp")
    _check_against_finite_differences(game, "reverse", directions=1.0 - _d_directions(game))


@pytest.mark.parametrize("kind", ["r1", "wgan-gp"])
def test_forward_mode_runs_through_the_fused_ops(kind):
    # Forward-over-reverse through the SN and GP kernels' jvp formulas: equal to double backward.
    game = _small_gan(kind)
    forward, reverse = JacobianOperator(game, mode="forward"), JacobianOperator(game, mode="reverse")
    assert forward.forward_unavailable is None
    u = torch.randn(game.num_params(), generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    torch.testing.assert_close(forward.matvec(u), reverse.matvec(u), rtol=1e-10, atol=1e-12)


class _TanhWithoutJvp(torch.autograd.Function):
    @staticmethod
    def forward(x):
        return x.tanh()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (1 - y * y)


class _DiscriminatorWithoutJvp(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return _TanhWithoutJvp.apply(self.lin(x))


def test_forward_mode_unavailable_is_reported():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    D = _DiscriminatorWithoutJvp().double()
    real, z = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 3, dtype=torch.float64)
    game = GANGame(G, D, lambda b: real, lambda b: z, loss="non-saturating", batch_size=8)
    op = JacobianOperator(game, mode="auto")
    assert op.mode == "reverse" and "forward-mode AD failed" in op.forward_unavailable
    with pytest.raises(RuntimeError, match="mode='forward'"):
        JacobianOperator(game, mode="forward")


def test_bad_arguments():
    game = Quadratic.random(2)
    with pytest.raises(ValueError, match="mode"):
        JacobianOperator(game, mode="sideways")
    with pytest.raises(TypeError, match="game"):
        game_jacobian("not a game")
    op = JacobianOperator(game)
    with pytest.raises(ValueError, match=r"u: expected a flat vector of shape \(4,\)"):
        op.matvec(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="w: contains NaN"):
        op.rmatvec(torch.full((4,), float("nan"), dtype=torch.float64))
    with pytest.raises(ValueError, match="matrix_free=True"):
        game_jacobian(Quadratic.random(3), max_dense=5)


def test_forward_mode_through_batch_norm_in_training_mode():
    torch.manual_seed(0)
    G = nn.Sequential(nn.Linear(3, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).double()
    D = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1)).double()
    g = torch.Generator().manual_seed(2)
    real, z = torch.randn(8, 2, generator=g, dtype=torch.float64), torch.randn(8, 3, generator=g,
                                                                              dtype=torch.float64)
    game = GANGame(G, D, lambda b: real, lambda b: z, loss="saturating", batch_size=8)
    forward, reverse = JacobianOperator(game, mode="forward"), JacobianOperator(game, mode="reverse")
    stats = G[1].running_mean.clone()
    u = torch.randn(game.num_params(), generator=g, dtype=torch.float64)
    torch.testing.assert_close(forward.matvec(u), reverse.matvec(u), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(G[1].running_mean, stats)  # forward mode works on private copies
