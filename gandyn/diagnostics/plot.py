"""The eigenvalue figure of `gandyn diagnose`: spectra in the complex plane."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_eigenvalues(path, jacobian: list[list[float]], update_map: list[list[float]] | None = None,
                     title: str = "") -> Path:
    """Eigenvalues of the game Jacobian J ([re, im] pairs; stable where Re λ > 0), and, when
    given, of the optimizer's update map with the unit circle (stable inside it)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 1 if update_map is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    lam = np.asarray(jacobian, dtype=float).reshape(-1, 2)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.scatter(lam[:, 0], lam[:, 1], s=14, color="C0")
    ax.set_xlabel("Re λ")
    ax.set_ylabel("Im λ")
    ax.set_title("game Jacobian J (stable: Re λ > 0)", fontsize=9)
    if update_map is not None:
        ax = axes[0, 1]
        mu = np.asarray(update_map, dtype=float).reshape(-1, 2)
        t = np.linspace(0, 2 * np.pi, 400)
        ax.plot(np.cos(t), np.sin(t), color="0.5", lw=0.8, label="unit circle")
        ax.scatter(mu[:, 0], mu[:, 1], s=14, color="C1")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xlabel("Re μ")
        ax.set_ylabel("Im μ")
        ax.set_title("update map (converges: |μ| < 1)", fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
