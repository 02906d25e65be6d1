"""Figure 2: stability regions of the linear game methods (Gidel et al. 2019; Azizian et al. 2020).

For every (η|λ|, arg λ) of a grid, the 2-D linear game with Jacobian eigenvalues
|λ|e^{±i·arg λ} is run by each optimizer (gandyn.optim.stability_map.contraction_rates)
and its measured per-step contraction rate is drawn, with the closed-form boundary
ρ = 1 of gandyn.optim.linear_rates over it. Consensus uses γ = η.
Writes <runs>/rates.npz and <figures>/stability_regions.png.
"""
from pathlib import Path

import numpy as np

from gandyn.optim.linear_rates import linear_rate
from gandyn.optim.stability_map import RATE_MEASURED, contraction_rates
from gandyn.plots import figure_parser, plot_rate_maps

METHODS = ("simgd", "altgd", "extragradient", "optimistic", "extragradient-past", "consensus")
assert set(METHODS) <= set(RATE_MEASURED)


def rate_maps(num_steps: int, num_angles: int) -> dict[str, np.ndarray]:
    r = np.linspace(2.0 / num_steps, 2.0, num_steps)
    phi = np.linspace(0.0, np.pi / 2, num_angles)
    w = r[None, :] * np.exp(1j * phi[:, None])
    arrays = {"scaled_steps": r, "angles": phi}
    for m in METHODS:
        arrays[f"measured_{m}"] = contraction_rates(m, r, phi)
        arrays[f"closed_{m}"] = linear_rate(m, w)
    return arrays


if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_stability").parse_args()
    arrays = rate_maps(*((40, 19) if a.fast else (100, 46)))
    npz = Path(a.runs) / "rates.npz"
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez(npz, **arrays)
    print(plot_rate_maps(npz, Path(a.figures) / "stability_regions.png", fmt=a.format))
