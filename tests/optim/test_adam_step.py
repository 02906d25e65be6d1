"""gandyn.optim.adam_step: Adam's out-of-place step (update maps, the unrolled GAN) against
torch.optim.Adam, and its derivative at exactly zero gradients against the closed form."""
from __future__ import annotations

import pytest
import torch

from gandyn.diagnostics.update_map import update_jacobian
from gandyn.games import Bilinear
from gandyn.optim import SimGD
from gandyn.optim.adam_step import adam_step, sqrt0


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_step_is_torch_adam(amsgrad):
    """Four steps of p − lr·s from adam_step equal torch.optim.Adam's iterates (float64), with
    gradient entries that are exactly 0 at first and then not (v = 0, then v > 0)."""
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(4)]
    grads[0][:2] = 0.0
    grads[1][0] = 0.0
    lr, betas, eps = 0.01, (0.5, 0.9), 1e-8
    ref = torch.randn(5, generator=gen, dtype=torch.float64).requires_grad_(True)
    p = ref.detach().clone()
    adam = torch.optim.Adam([ref], lr=lr, betas=betas, eps=eps, amsgrad=amsgrad)
    m, v = [torch.zeros_like(p)], [torch.zeros_like(p)]
    vmax = [torch.zeros_like(p)] if amsgrad else None
    for t, g in enumerate(grads, start=1):
        ref.grad = g.clone()
        adam.step()
        m, v, vmax, s = adam_step(m, v, vmax, [g], t, betas, eps)
        p = p - lr * s[0]
        torch.testing.assert_close(p, ref.detach(), rtol=1e-14, atol=1e-16)
    st = adam.state[ref]
    torch.testing.assert_close(m[0], st["exp_avg"], rtol=1e-15, atol=0)
    torch.testing.assert_close(v[0], st["exp_avg_sq"], rtol=1e-15, atol=0)


def test_sqrt0_is_sqrt_with_a_zero_derivative_at_zero():
    x = torch.tensor([0.0, 1e-300, 0.25, 4.0], dtype=torch.float64, requires_grad=True)
    y = sqrt0(x)
    assert torch.equal(y.detach(), x.detach().sqrt())
    g, = torch.autograd.grad(y.sum(), x, create_graph=True)
    h, = torch.autograd.grad(g.sum(), x)
    assert g[0].item() == 0.0 and h[0].item() == 0.0
    torch.testing.assert_close(g[1:], 0.5 / x.detach()[1:].sqrt(), rtol=1e-15, atol=0)
    torch.testing.assert_close(h[2:], -0.25 * x.detach()[2:] ** -1.5, rtol=1e-15, atol=0)


def test_update_map_through_adam_at_exactly_zero_gradients_is_the_closed_form():
    """SimGD-Adam's first step on xᵀAy is x' = x − lr·s(Ay), y' = y − lr·s(−Aᵀx) with
    s(d) = d/(|d| + ε) entrywise (m̂ = d, v̂ = d² at t = 1), so s'(d) = ε/(|d| + ε)², 1/ε at
    d = 0. Here one entry of Ay and one of Aᵀx are exactly 0 while their derivatives are not:
    √v's infinite derivative at v = 0 made these columns NaN before the guard."""
    A = torch.tensor([[1.0, -1.0, 0.0], [0.3, 0.8, -0.5], [2.0, 0.1, 0.7]], dtype=torch.float64)
    x0 = torch.tensor([0.4, 0.7, 0.5], dtype=torch.float64)   # (Aᵀx)₂ = −0.35 + 0.35 = 0
    y0 = torch.tensor([0.5, 0.5, -0.2], dtype=torch.float64)  # (Ay)₀ = 0.5 − 0.5 = 0
    game = Bilinear(A, x0=x0, y0=y0)
    dx, dy = A @ y0, -(A.T @ x0)
    assert dx[0].item() == 0.0 and dy[2].item() == 0.0
    lr, eps = 0.1, 1e-3
    J = update_jacobian(SimGD(game.players, lr=lr, base="adam", eps=eps), game)

    def slope(d):
        return eps / (d.abs() + eps) ** 2

    eye = torch.eye(3, dtype=torch.float64)
    expected = torch.cat([torch.cat([eye, -lr * slope(dx)[:, None] * A], 1),
                          torch.cat([lr * slope(dy)[:, None] * A.T, eye], 1)])
    assert torch.isfinite(J).all()
    torch.testing.assert_close(J, expected, rtol=1e-12, atol=1e-14)
    assert J[0, 3].item() == pytest.approx(-lr / eps * A[0, 0].item(), rel=1e-12)  # the 1/ε entry
