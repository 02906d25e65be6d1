"""Every figure is drawn here, from run directories (never from live objects)."""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gandyn import config as configs  # noqa: E402
from gandyn.train import read_metrics, read_status  # noqa: E402


def run_label(run_dir) -> str:
    cfg = configs.load(Path(run_dir) / "config.toml")
    label = cfg.get("optimizer", Path(run_dir).name)
    base = cfg.get("optimizer_args", {}).get("base")
    if base and base != "sgd":
        label += f"/{base}"
    if cfg.get("lookahead"):
        label = f"lookahead({label})"
    game_args = cfg.get("game_args", {})
    if game_args.get("loss"):
        label += f", {game_args['loss']}"
    if game_args.get("regularizer"):
        label += f" + {game_args['regularizer']}(γ={game_args.get('gamma', 1.0)})"
    return f"{label}, lr={cfg.get('lr')}"


def figure_parser(doc: str | None, runs: str):
    """The arguments every experiments/fig_*.py script takes (`gandyn figures` passes them on):
    --figures DIR, --runs DIR, --fast (CI-sized), --format png|pdf."""
    import argparse

    p = argparse.ArgumentParser(description=doc)
    p.add_argument("--figures", default="figures", help="directory of the figures")
    p.add_argument("--runs", default=runs, help="directory of the runs the figure is drawn from")
    p.add_argument("--fast", action="store_true", help="CI-sized version (fewer steps, coarser grids)")
    p.add_argument("--format", default="png", choices=("png", "pdf"))
    return p


def save_figure(fig, out, fmt: str | None = None, dpi: int = 200) -> Path:
    """Write `fig` to `out` (its suffix replaced by `fmt` when given) at `dpi`, and close it."""
    out = Path(out)
    if fmt is not None:
        if fmt not in ("png", "pdf"):
            raise ValueError(f"fmt: expected 'png' or 'pdf', got {fmt!r}")
        out = out.with_suffix("." + fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


_save = save_figure


def plot_curves(run_dirs, out, *, metric: str = "distance", x: str = "step",
                title: str | None = None) -> Path:
    """`metric` (distance to equilibrium by default) of several runs on one log-scale figure.
    A diverged run ends in a cross at the step it diverged."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for d in run_dirs:
        rows = [r for r in read_metrics(d) if metric in r]
        if not rows:
            raise ValueError(f"run_dirs: {d} logged no {metric!r} (metrics has "
                             f"{sorted(read_metrics(d)[0])})")
        if any(x not in r for r in rows):
            raise ValueError(f"x: {d} logged no {x!r} in every row with {metric!r}; expected one of "
                             f"{sorted(k for k in rows[0] if isinstance(rows[0][k], (int, float)))}")
        xs, ys = [r[x] for r in rows], [r[metric] for r in rows]
        (line,) = ax.semilogy(xs, ys, label=run_label(d), lw=1.3)
        if read_status(d).get("status") == "diverged":
            ax.plot(xs[-1], ys[-1], "x", color=line.get_color(), ms=8)
    ax.set_xlabel({"step": "step", "grad_evals": "gradient evaluations"}.get(x, x))
    ax.set_ylabel({"distance": "distance to equilibrium", "grad_norm": "‖v‖"}.get(metric, metric))
    if title:
        ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, out)


def plot_trajectories(run_dirs, out, *, title: str | None = None) -> Path:
    """The first coordinate of player 0 against that of player 1, for each run."""
    n = len(run_dirs)
    cols = min(n, 4)
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(3.0 * cols, 3.0 * rows_), squeeze=False)
    for ax, d in zip(axes.flat, run_dirs):
        rows = [r for r in read_metrics(d) if "coord0" in r and "coord1" in r]
        if not rows:
            raise ValueError(f"run_dirs: {d} logged no coordinates (the game is too large)")
        xs, ys = [r["coord0"] for r in rows], [r["coord1"] for r in rows]
        ax.plot(xs, ys, lw=0.8)
        ax.plot(xs[0], ys[0], "o", color="tab:green", ms=4)
        ax.plot(xs[-1], ys[-1], "s", color="tab:red", ms=4)
        ax.set_title(run_label(d), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, out)


def plot_eigenvalues(path, jacobian: list[list[float]], update_map: list[list[float]] | None = None,
                     title: str = "") -> Path:
    """Eigenvalues of the game Jacobian J ([re, im] pairs; stable where Re λ > 0), and, when
    given, of the optimizer's update map with the unit circle (stable inside it)."""
    panels = 1 if update_map is None else 2
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    lam = np.asarray(jacobian, dtype=float).reshape(-1, 2)
    ax.axvline(0, color="0.6", lw=0.8)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.scatter(lam[:, 0], lam[:, 1], s=14, color="C0")
    # Keep a visible real axis when every real part is a rounding error (rotational games).
    span = 0.1 * max(float(np.abs(lam).max()) if lam.size else 0.0, 1e-12)
    ax.set_xlim(min(lam[:, 0].min(initial=0.0), -span) * 1.15, max(lam[:, 0].max(initial=0.0), span) * 1.15)
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
    return _save(fig, path)


def plot_samples_2d(samples, modes, out, *, sigma: float | None = None, title: str | None = None) -> Path:
    """A GAN's 2-D samples (small dots) over the mixture's modes (crosses; circles of 3σ,
    PacGAN's high-quality radius), equal axes around the modes."""
    x = np.asarray(samples, dtype=float)
    m = np.asarray(modes, dtype=float)
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:blue", linewidths=0, label="samples")
    ax.scatter(m[:, 0], m[:, 1], marker="x", s=30, color="tab:red", label="modes")
    if sigma:
        for c in m:
            ax.add_patch(plt.Circle(c, 3 * sigma, fill=False, color="tab:red", lw=0.6))
    span = np.ptp(m, axis=0).max() if len(m) > 1 else 1.0
    lo, hi = m.min(0) - 0.25 * span - 0.1, m.max(0) + 0.25 * span + 0.1
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    if title:
        ax.set_title(title)
    ax.legend(loc="upper right", fontsize=7, markerscale=3)
    return _save(fig, out)
