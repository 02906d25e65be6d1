"""Closed-form rates of gandyn.optim.linear_rates against the published boundaries, and the
rates that stability_map.contraction_rates measures by running the optimizers against them."""
import math

import numpy as np
import pytest

from gandyn.optim.linear_rates import RATE_METHODS, linear_rate
from gandyn.optim.stability_map import contraction_rates


def test_published_boundaries_on_bilinear_games():
    """λ = iσ: SimGD never converges (|1 − iησ| = √(1 + η²σ²)); extragradient iff ησ < 1
    (|1 − iησ − η²σ²|² = 1 − η²σ² + η⁴σ⁴); optimism and extrapolation from the past iff
    ησ < 1/√3 (Gidel et al. 2019; Daskalakis et al. 2018); AltGD sits on the unit circle for ησ < 2."""
    s = np.array([0.3, 0.9])
    np.testing.assert_allclose(linear_rate("simgd", 1j * s), np.sqrt(1 + s**2), rtol=1e-14)
    np.testing.assert_allclose(linear_rate("extragradient", 1j * s), np.sqrt(1 - s**2 + s**4), rtol=1e-14)
    edge = 1 / math.sqrt(3)
    for m in ("optimistic", "extragradient-past"):
        assert linear_rate(m, 1j * edge) == pytest.approx(1.0, abs=1e-12)
        assert linear_rate(m, 1j * 0.99 * edge) < 1 < linear_rate(m, 1j * 1.01 * edge)
    np.testing.assert_allclose(linear_rate("altgd", 1j * np.array([0.5, 1.0, 1.9])), 1.0, rtol=1e-12)
    assert linear_rate("altgd", 2.1j) > 1


def test_potential_games_are_gradient_descent():
    """λ = a > 0 real (a minimization): SimGD's and AltGD's rate is |1 − ηa|; consensus with
    γ/η = 1 steps by 1 − ηa − (ηa)²."""
    a = np.array([0.2, 0.7, 1.5])
    np.testing.assert_allclose(linear_rate("simgd", a), abs(1 - a), rtol=1e-14)
    np.testing.assert_allclose(linear_rate("altgd", a), abs(1 - a), rtol=1e-12)
    np.testing.assert_allclose(linear_rate("consensus", a), abs(1 - a - a**2), rtol=1e-14)


@pytest.mark.parametrize("method", RATE_METHODS)
def test_measured_rates_match_the_closed_forms(method):
    r = np.linspace(0.1, 2.0, 12)
    phi = np.linspace(0.0, np.pi / 2, 7)
    measured = contraction_rates(method, r, phi)
    closed = linear_rate(method, r[None, :] * np.exp(1j * phi[:, None]))
    # Off the rounding-level boundary, and where the rate is representable over the window;
    # AltGD's non-normal, sometimes defective map converges to ρ like (n^k ρⁿ)^{1/n}.
    keep = (np.abs(closed - 1) > 1e-3) & (closed > 0.05)
    rtol = 3e-2 if method == "altgd" else 1e-3
    np.testing.assert_allclose(measured[keep], closed[keep], rtol=rtol)
    assert np.array_equal(measured[keep] < 1, closed[keep] < 1)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="method"):
        linear_rate("adam", 0.5)
    with pytest.raises(ValueError, match="method"):
        contraction_rates("sga", [0.5], [0.0])
    with pytest.raises(ValueError, match="scaled_steps"):
        contraction_rates("simgd", [-1.0], [0.0])
    with pytest.raises(ValueError, match="steps"):
        contraction_rates("simgd", [0.5], [0.0], steps=1)
