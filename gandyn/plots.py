"""Every figure is drawn here, from run directories (never from live objects)."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from gandyn import config as configs  # noqa: E402
from gandyn.train import read_metrics, read_status  # noqa: E402


# One look per optimizer in every figure: (legend name, color, line style, marker).
# Colors and line styles both differ between methods whose curves tend to coincide
# (extragradient / from the past / optimistic / CGD), and markers are drawn sparsely at
# staggered positions along each line, so a curve hidden under another stays visible.
STYLES: dict[str, tuple[str, str, str, str]] = {
    "simgd": ("SimGD", "#d62728", "-", "o"),
    "altgd": ("AltGD", "#ff7f0e", "--", "s"),
    "altgd-5": ("AltGD, 5 D steps", "#8c564b", "-.", "v"),
    "averaged": ("averaged SGD", "#bcbd22", ":", "P"),
    "extragradient": ("extragradient", "#1f77b4", "-", "^"),
    "extragradient-past": ("extrapolation from the past", "#17becf", "--", "D"),
    "optimistic": ("optimistic GD", "#2ca02c", "-.", "X"),
    "consensus": ("consensus", "#9467bd", "-", "*"),
    "sga": ("SGA", "#e377c2", "--", "h"),
    "cgd": ("CGD", "#555555", ":", "<"),
    "lookahead": ("lookahead-minmax (SimGD)", "#000000", "-.", ">"),
    "extra-adam": ("Extra-Adam", "#393b79", ":", "d"),
    "adam": ("Adam", "#e7ba52", "-", "p"),
    # Adam-based game optimizers of the GAN figures (SimGD-Adam is "adam", Extra-Adam above).
    "altgd-adam": ("AltGD-Adam", "#8c6d31", ":", "s"),
    "optimistic-adam": ("Optimistic Adam", "#ad494a", "--", "X"),
    "consensus-adam": ("Consensus-Adam", "#637939", "-.", "*"),
    "unrolled": ("unrolled GAN", "#7b4173", "--", "8"),
}


def style(name: str, *, marks: bool = True) -> dict:
    """Keyword arguments of `ax.plot` for optimizer `name` (a key of STYLES): its label,
    color, line style and, with `marks`, ~10 markers staggered along the line."""
    if name not in STYLES:
        raise ValueError(f"name: expected an optimizer of the style table {sorted(STYLES)}, got {name!r}")
    label, color, ls, marker = STYLES[name]
    kw = {"label": label, "color": color, "ls": ls, "lw": 1.4}
    if marks:
        offset = 0.1 * list(STYLES).index(name) / len(STYLES)
        kw.update(marker=marker, ms=5, markevery=(offset, 0.1), mfc="none" if marker not in "x" else color)
    return kw


def style_key(cfg: dict) -> str | None:
    """The STYLES key of a run's config (optimizer, base, lookahead, D steps), None if none fits."""
    name = cfg.get("optimizer", "simgd")
    args = cfg.get("optimizer_args", {})
    if cfg.get("lookahead"):
        return "lookahead"
    if args.get("base") == "adam":
        return {"extragradient": "extra-adam", "simgd": "adam", "altgd": "altgd-adam",
                "optimistic": "optimistic-adam", "consensus": "consensus-adam", "unrolled": "unrolled"}.get(name)
    if name == "altgd" and max(args.get("player_steps") or [1]) > 1:
        return "altgd-5" if max(args["player_steps"]) == 5 else None
    return name if name in STYLES else None


def legend_outside(ax, **kw):
    """A legend right of the axes: it never covers data."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     fontsize=kw.pop("fontsize", 8), frameon=False, **kw)


def mark_equilibrium(ax, x: float = 0.0, y: float = 0.0, label: str | None = "equilibrium"):
    """The equilibrium as a black star (drawn above the curves)."""
    ax.plot([x], [y], marker="*", ms=11, color="k", mec="w", mew=0.6, ls="none", zorder=5, label=label)


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


PNG_BUDGET = 300_000  # bytes: committed figures stay small


def _palette(image):
    """A 256-color palette that keeps every optimizer's color exact: the STYLES colors and
    their blends toward white (antialiased edges), 32 grays, and the image's own most
    common remaining colors (a median cut) for colormaps. A plain adaptive palette
    drops the small areas a legend's color lives in."""
    from matplotlib.colors import to_rgb
    from PIL import Image

    fixed = []
    for _, color, _, _ in STYLES.values():
        rgb = np.array(to_rgb(color))
        fixed += [tuple(np.round(255 * (t * rgb + (1 - t))).astype(int)) for t in (1.0, 0.7, 0.45, 0.25)]
    fixed += [(g, g, g) for g in np.linspace(0, 255, 32).astype(int)]
    adaptive = image.quantize(256 - len(fixed), method=Image.Quantize.MEDIANCUT).getpalette()
    colors = [c for rgb in fixed for c in rgb] + adaptive[:3 * (256 - len(fixed))]
    palette = Image.new("P", (1, 1))
    palette.putpalette(colors + [0] * (768 - len(colors)))
    return palette


def save_figure(fig, out, fmt: str | None = None, dpi: int = 200, *, layout: bool = True,
                rect=None) -> Path:
    """Write `fig` to `out` (its suffix replaced by `fmt` when given) at `dpi`, and close it.
    `layout`: tight_layout first (within `rect`, e.g. room for a figure legend below).
    A PNG larger than PNG_BUDGET bytes is stored with a 256-color palette instead."""
    out = Path(out)
    if fmt is not None:
        if fmt not in ("png", "pdf"):
            raise ValueError(f"fmt: expected 'png' or 'pdf', got {fmt!r}")
        out = out.with_suffix("." + fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    if layout:
        fig.tight_layout(rect=rect)
    if out.suffix == ".png":
        import io

        from PIL import Image

        buf = io.BytesIO()
        fig.savefig(buf, dpi=dpi, format="png")
        if buf.tell() <= PNG_BUDGET:
            out.write_bytes(buf.getvalue())
        else:  # a palette keeps it small (streamline panels: 0.8 MB -> 0.25 MB), colormaps band
            image = Image.open(buf).convert("RGB")
            image.quantize(palette=_palette(image), dither=Image.Dither.NONE).save(out, optimize=True,
                                                                                   dpi=(dpi, dpi))
    else:
        fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out



def _runs_with_styles(run_dirs, labels: dict | None = None) -> list[tuple[Path, dict]]:
    """(run dir, `ax.plot` keywords) of each run. `run_dirs`: a list of directories, styled
    by their configs (the default color cycle when two runs share a style: sweeps of one
    method), or a dict {STYLES key: directory}. `labels` overrides legend names by key."""
    if isinstance(run_dirs, dict):
        keys, dirs = list(run_dirs), [Path(d) for d in run_dirs.values()]
    else:
        dirs = [Path(d) for d in run_dirs]
        keys = [style_key(configs.load(d / "config.toml")) for d in dirs]
        if None in keys or len(set(keys)) < len(keys):
            return [(d, {"lw": 1.3, "label": run_label(d)}) for d in dirs]
    labels = labels or {}
    return [(d, {**style(k), "label": labels.get(k, STYLES[k][0])}) for k, d in zip(keys, dirs)]


X_AXES = {"step": "iterations", "grad_evals": "gradient evaluations",
          "evals": "gradient evaluations (field + Hessian–vector products)"}


def plot_curves(run_dirs, out, *, metric: str = "distance", x: str = "step", title: str | None = None,
                labels: dict | None = None, xmax: float | None = None, reference: dict | None = None,
                fmt: str | None = None) -> Path:
    """`metric` (distance to equilibrium by default) of several runs on one log-scale figure,
    against x = "step", "grad_evals" or "evals" (grad_evals + hvp_evals, a Hessian–vector
    product costing about one gradient). A diverged run ends in a cross where it diverged.
    `reference` {legend name: value}: dashed horizontal lines (e.g. the FID of real data
    against real data, the floor a generator's FID can reach)."""
    if x not in X_AXES:
        raise ValueError(f"x: expected one of {sorted(X_AXES)}, got {x!r}")
    fig, ax = plt.subplots(figsize=(7.4, 4.0))
    for d, kw in _runs_with_styles(run_dirs, labels):
        rows = [r for r in read_metrics(d) if metric in r]
        if not rows:
            raise ValueError(f"run_dirs: {d} logged no {metric!r} (metrics has "
                             f"{sorted(read_metrics(d)[0])})")
        needed = ("grad_evals", "hvp_evals") if x == "evals" else (x,)
        if any(k not in r for r in rows for k in needed):
            raise ValueError(f"x: {d} logged no {x!r} in every row with {metric!r}; expected one of "
                             f"{sorted(['evals', *(k for k in rows[0] if isinstance(rows[0][k], (int, float)))])}")
        xs = np.array([r["grad_evals"] + r["hvp_evals"] if x == "evals" else r[x] for r in rows], float)
        ys = np.array([r[metric] for r in rows], float)
        if xmax is not None:
            xs, ys = xs[xs <= xmax], ys[xs <= xmax]
        (line,) = ax.semilogy(xs, ys, **kw)
        if read_status(d).get("status") == "diverged":
            ax.plot(xs[-1], ys[-1], "x", color=line.get_color(), ms=8)
    for i, (name, value) in enumerate((reference or {}).items()):
        ax.axhline(value, color="k", lw=1.0, ls=(0, (5, 3 + 2 * i)), label=name)
    ax.set_xlabel(X_AXES[x])
    ax.set_ylabel({"distance": "distance to equilibrium", "grad_norm": "‖v‖", "fid": "FID"}.get(metric, metric))
    if xmax is not None:
        ax.set_xlim(0, xmax)
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, fontsize=7)
    return save_figure(fig, out, fmt)


def plot_trajectories(run_dirs, out, *, title: str | None = None, labels: dict | None = None,
                      window: float | None = None, equilibrium=(0.0, 0.0), axis_names=("x₁", "y₁"),
                      fmt: str | None = None) -> Path:
    """The first coordinate of player 0 against that of player 1: one panel per run, shared
    axes (a square ±`window` around the equilibrium when given — a diverging run leaves it),
    start ○, equilibrium ★."""
    runs = _runs_with_styles(run_dirs, labels)
    n = len(runs)
    cols = min(n, 4)
    rows_ = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(2.7 * cols, 2.7 * rows_ + 0.4), squeeze=False,
                             sharex=window is not None, sharey=window is not None)
    for ax, (d, kw) in zip(axes.flat, runs):
        rows = [r for r in read_metrics(d) if "coord0" in r and "coord1" in r]
        if not rows:
            raise ValueError(f"run_dirs: {d} logged no coordinates (the game is too large)")
        xs, ys = [r["coord0"] for r in rows], [r["coord1"] for r in rows]
        kw = {**kw, "marker": None, "lw": 1.0}
        ax.set_title(kw.pop("label"), fontsize=8, color=kw["color"])
        ax.plot(xs, ys, **kw)
        ax.plot(xs[0], ys[0], "o", mfc="none", mec="k", ms=6)
        mark_equilibrium(ax, *equilibrium, label=None)
        if window is not None:
            ax.set_xlim(equilibrium[0] - window, equilibrium[0] + window)
            ax.set_ylim(equilibrium[1] - window, equilibrium[1] + window)
            ax.set_aspect("equal")
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.25)
    for ax in axes[-1]:
        ax.set_xlabel(axis_names[0])
    for ax in axes[:, 0]:
        ax.set_ylabel(axis_names[1])
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out, fmt)


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
    return save_figure(fig, path)


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
    return save_figure(fig, out)


def plot_rate_maps(path, out, *, fmt: str | None = None) -> Path:
    """Measured contraction rates of linear methods over (η|λ|, arg λ) with the closed-form
    boundary ρ = 1 over them, one panel per method, from the .npz that experiments/fig_stability.py
    writes (arrays scaled_steps, angles, and measured_<method>, closed_<method> per method)."""
    from matplotlib.colors import LogNorm
    from matplotlib.lines import Line2D

    data = np.load(path)
    methods = [k[len("measured_"):] for k in data.files if k.startswith("measured_")]
    r, deg = data["scaled_steps"], np.degrees(data["angles"])
    cols = min(3, len(methods))
    rows = (len(methods) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols + 1.0, 3.0 * rows + 0.5), squeeze=False,
                             sharex=True, sharey=True)
    norm = LogNorm(vmin=0.1, vmax=10.0)
    for ax, m in zip(axes.flat, methods):
        measured = np.clip(data[f"measured_{m}"], 0.1, 10.0)  # the color scale's ends
        mesh = ax.pcolormesh(r, deg, measured, norm=norm, cmap="RdBu_r", shading="nearest", rasterized=True)
        # Just above 1: AltGD's rate on bilinear games (90°) is 1 up to rounding, whose sign
        # noise would draw specks along that edge.
        ax.contour(r, deg, data[f"closed_{m}"], levels=[1 + 1e-6], colors="k", linewidths=1.4)
        ax.contour(r, deg, data[f"measured_{m}"], levels=[1 + 1e-6], colors="w", linewidths=1.0,
                   linestyles="--")
        ax.set_title(STYLES[m][0], fontsize=9, color=STYLES[m][1])
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("η|λ|  (η·σ on bilinear games)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("arg λ (degrees)\n0°: potential, 90°: bilinear", fontsize=8)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    bar = fig.colorbar(mesh, ax=axes, shrink=0.85, pad=0.02)
    bar.set_label("contraction rate ρ per step (log scale; < 1 converges)", fontsize=8)
    fig.legend([Line2D([], [], color="k", lw=1.4), Line2D([], [], color="w", lw=1.0, ls="--")],
               ["closed form ρ = 1", "measured ρ = 1"], loc="lower right", fontsize=8,
               facecolor="0.75", ncol=2)
    fig.suptitle("Linear games with Jacobian eigenvalues |λ|·exp(±i arg λ), step η: where each method converges",
                 fontsize=10)
    return save_figure(fig, out, fmt, layout=False)  # tight_layout does not know the colorbar's axes


def _panel_grid(n: int, cols: int, size: float, height: float | None = None, **kw):
    cols = min(n, cols)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(size * cols, (height or size) * rows + 0.6), squeeze=False,
                             **kw)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    return fig, axes


def _figure_legend(fig, axes, handles_from):
    """One legend for all panels, below them (it covers no data)."""
    handles, labels = {}, {}
    for ax in handles_from:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(6, len(handles)),
               fontsize=8, frameon=False, bbox_to_anchor=(0.5, 0.0))


def plot_field_panels(panels: dict, fields: dict, titles: dict, out, *, box: dict | None = None,
                      axis_names=("θ", "ψ"), equilibrium=(0.0, 0.0), title: str | None = None,
                      fmt: str | None = None) -> Path:
    """One panel per entry of `panels` ({panel: {STYLES key: run dir}}): streamlines of the
    panel's flow (the .npz of `fields`: axes theta, psi and the components d_theta, d_psi
    on the grid), the runs' trajectories (coord0, coord1) over it, the start ○ and the
    equilibrium ★. `box` {panel: c} shades the region |ψ| > c outside a constraint."""
    fig, axes = _panel_grid(len(panels), 4, 3.0, 3.4, sharex=True, sharey=True)  # room for titles
    for ax, (panel, runs) in zip(axes.flat, panels.items()):
        f = np.load(fields[panel])
        speed = np.hypot(f["d_theta"], f["d_psi"])
        ax.streamplot(f["theta"], f["psi"], f["d_theta"], f["d_psi"], color=speed, cmap="Greys",
                      norm=matplotlib.colors.Normalize(-0.5 * speed.max(), speed.max()), density=0.8,
                      linewidth=0.6, arrowsize=0.7)
        lim = float(f["theta"].max())
        if box and panel in box:
            c = box[panel]
            for y0, y1 in ((c, lim), (-lim, -c)):
                ax.axhspan(y0, y1, color="0.85", zorder=0, lw=0)
        for d, kw in _runs_with_styles(runs):
            rows = read_metrics(d)
            xs = np.clip([r["coord0"] for r in rows], -2 * lim, 2 * lim)
            ys = np.clip([r["coord1"] for r in rows], -2 * lim, 2 * lim)
            ax.plot(xs, ys, **{**kw, "marker": None, "lw": 1.2})
            ax.plot(xs[0], ys[0], "o", mfc="none", mec="k", ms=6)
        mark_equilibrium(ax, *equilibrium)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(titles.get(panel, panel), fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel(f"{axis_names[0]} (generator)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"{axis_names[1]} (discriminator)", fontsize=8)
    _figure_legend(fig, axes, axes.flat)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out, fmt, dpi=150, rect=(0, 0.05, 1, 1))  # 150: streamlines weigh


def plot_distance_panels(panels: dict, titles: dict, out, *, title: str | None = None,
                         fmt: str | None = None) -> Path:
    """Distance to the equilibrium against iterations, one log-scale panel per entry of
    `panels` ({panel: {STYLES key: run dir}}), a shared y axis."""
    fig, axes = _panel_grid(len(panels), 4, 2.9, sharex=True, sharey=True)
    for ax, (panel, runs) in zip(axes.flat, panels.items()):
        for d, kw in _runs_with_styles(runs):
            rows = read_metrics(d)
            ax.semilogy([r["step"] for r in rows], [r["distance"] for r in rows], **kw)
        ax.set_ylim(1e-16, 1e2)  # what converges leaves through the floor; the rest stays visible
        ax.set_title(titles.get(panel, panel), fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("iterations (G steps)", fontsize=8)
    for ax in axes[:, 0]:
        ax.set_ylabel("distance to (0, 0)", fontsize=8)
    _figure_legend(fig, axes, axes.flat)
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, out, fmt, rect=(0, 0.05, 1, 1))


def plot_distance_arrays(path, out, *, labels: dict | None = None, title: str | None = None,
                         fmt: str | None = None) -> Path:
    """Distance to the equilibrium against iterations from an .npz of {STYLES key: distances
    after each iteration} (index 0: the start), on a log scale."""
    data = np.load(path)
    fig, ax = plt.subplots(figsize=(7.4, 3.8))
    for key in data.files:
        kw = {**style(key), "label": (labels or {}).get(key, STYLES[key][0])}
        ax.semilogy(np.arange(len(data[key])), data[key], **kw)
    ax.set_xlabel(X_AXES["step"])
    ax.set_ylabel("distance to equilibrium (0, 0)")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    legend_outside(ax, fontsize=7)
    return save_figure(fig, out, fmt)


def plot_eigenvalue_panels(files: dict, out, *, steps: dict | None = None, zoom: float = 0.15,
                           fmt: str | None = None) -> Path:
    """One row per game of `files` ({game: {STYLES key: diagnostics.json}}): the eigenvalues of
    the game Jacobian J, those of each optimizer's update map with the unit circle, and the
    update map near 1 (±`zoom`), where small steps put most of a network's eigenvalues."""
    import json

    fig, axes = plt.subplots(len(files), 3, figsize=(11.5, 3.5 * len(files) + 0.6), squeeze=False)
    t = np.linspace(0, 2 * np.pi, 721)
    for row, (game, runs) in zip(axes, files.items()):
        for key, path in runs.items():
            result = json.loads(Path(path).read_text())
            label, color, _, marker = STYLES[key]
            lam = np.asarray(next(iter(result["jacobian_eigvals"].values())), float).reshape(-1, 2)
            mu = np.asarray(result["update_map"]["eigvals"], float).reshape(-1, 2)
            kw = {"marker": marker, "s": 26, "facecolors": "none", "edgecolors": color, "linewidths": 0.9}
            row[0].scatter(lam[:, 0], lam[:, 1], label=label, **kw)
            rho = result["update_map"]["spectral_radius"]
            for ax in row[1:]:
                ax.scatter(mu[:, 0], mu[:, 1], label=f"{label} (ρ = {rho:.4f})", **kw)
        # A real axis at the scale of the imaginary one: rotational games' real parts are
        # tiny, and autoscaling would blow them up into a misleading spread.
        pts = np.concatenate([np.asarray(c.get_offsets()) for c in row[0].collections])
        span = 0.25 * np.abs(pts).max()
        row[0].set_xlim(min(pts[:, 0].min(), -span) * 1.15, max(pts[:, 0].max(), span) * 1.15)
        row[0].axvline(0, color="0.5", lw=0.8, zorder=0)
        row[0].axhline(0, color="0.5", lw=0.8, zorder=0)
        row[0].set_xlabel("Re λ")
        row[0].set_ylabel("Im λ")
        at = f" at step {steps[game]}" if steps and game in steps else ""
        row[0].set_title(f"{game}{at}: J (stable: Re λ > 0)", fontsize=9)
        for ax in row[1:]:
            ax.plot(np.cos(t), np.sin(t), color="k", lw=0.9, zorder=0, label="unit circle")
            ax.set_xlabel("Re μ")
            ax.set_ylabel("Im μ")
            ax.set_aspect("equal")
        lim = max(1.1, max(max(abs(np.array(c.get_offsets())).max() for c in row[1].collections) * 1.1, 1.1))
        row[1].set_xlim(-lim, lim)
        row[1].set_ylim(-lim, lim)
        row[1].set_title("update map (converges: all |μ| < 1)", fontsize=9)
        row[2].set_xlim(1 - zoom, 1 + zoom)
        row[2].set_ylim(-zoom, zoom)
        row[2].set_title(f"update map near μ = 1 (±{zoom:g})", fontsize=9)
        legend_outside(row[2], fontsize=7)
    return save_figure(fig, out, fmt)


def plot_speedups(path, out, *, title: str | None = None, note: str | None = None,
                  fmt: str | None = None) -> Path:
    """Speed-up (reference time / our time, log scale; > 1: ours is faster) of every row of a
    `gandyn bench --json` file, one horizontal bar per case, colored by suite; `note` goes
    under the axes (e.g. why a panel is missing)."""
    import json

    rows = [r for r in json.loads(Path(path).read_text())
            if isinstance(r.get("speedup"), (int, float)) and np.isfinite(r["speedup"]) and r["speedup"] > 0]
    if not rows:
        raise ValueError(f"path: {path} holds no benchmark rows with a finite speed-up")
    suites = list(dict.fromkeys(r["suite"] for r in rows))
    colors = {s: plt.get_cmap("tab10")(i) for i, s in enumerate(suites)}
    fig, ax = plt.subplots(figsize=(8.0, 0.24 * len(rows) + 1.6))
    y = np.arange(len(rows))[::-1]
    speed = np.array([r["speedup"] for r in rows])
    # Bars grow from 1 (parity) to the speed-up: left for slower, right for faster.
    ax.barh(y, speed - 1, left=1, color=[colors[r["suite"]] for r in rows], height=0.7)
    ax.set_xscale("log")
    ax.axvline(1.0, color="k", lw=0.9)
    ax.set_yticks(y, [r["case"] for r in rows], fontsize=6.5)
    for yi, s in zip(y, speed):  # the value just beyond the bar's free end
        ax.text(s * 1.08 if s >= 1 else s / 1.08, yi, f"{s:.3g}×", va="center", fontsize=6,
                ha="left" if s >= 1 else "right")
    ax.set_xlim(min(speed.min(), 1) / 8, max(speed.max(), 1) * 6)
    ax.set_xlabel("speed-up = reference time / our time (log scale; > 1: ours faster)", fontsize=8)
    from matplotlib.patches import Patch
    ax.legend([Patch(color=colors[s]) for s in suites], suites, loc="lower right", fontsize=7, title="suite",
              title_fontsize=7)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    if note:
        fig.text(0.01, 0.005, note, fontsize=7, style="italic", va="bottom")
    return save_figure(fig, out, fmt, rect=(0, 0.03, 1, 1))


def checkpoint_samples(run_dir, step: int, z):
    """G(z) at a run's checkpoint `step`, in eval mode, of G's EMA when the run keeps one
    (what its evaluation measures); images in [−1, 1]."""
    import torch

    from gandyn.train import load_run

    game = load_run(run_dir, step).game
    ema = game.G_ema is not None
    G = game.G_ema.module if ema else game.G
    G.eval()
    with torch.no_grad():
        return game.generate(z.to(next(G.parameters()).device), ema=ema).float().cpu()


def sample_grid(images, nrow: int) -> np.ndarray:
    """The (H, W) or (H, W, 3) picture of images in [−1, 1] that the sample figures draw:
    torchvision's make_grid, `nrow` images a row, 1 pixel of mid-gray padding (neither the
    digits' black background nor their white strokes), [−1, 1] -> [0, 1]."""
    from torchvision.utils import make_grid

    grid = make_grid(images.clamp(-1, 1), nrow=nrow, padding=1, normalize=True, value_range=(-1, 1),
                     pad_value=0.5)
    return (grid[0] if images.shape[1] == 1 else grid.permute(1, 2, 0)).numpy()


def plot_samples_over_training(cells: dict, z, out, *, col_titles: list[str], row_labels: dict | None = None,
                               cell_labels: dict | None = None, title: str | None = None,
                               fmt: str | None = None) -> Path:
    """A grid of sample grids: one row per STYLES key of `cells` ({key: [(run dir, checkpoint
    step), …]}, the same number of columns for every row), each cell `sample_grid` of
    `checkpoint_samples` for the fixed latents `z`. The row label (`row_labels`, default the
    optimizer's name) in its STYLES color, `col_titles` over the columns, `cell_labels`
    {key: [text under each cell]}."""
    lengths = {len(v) for v in cells.values()}
    if len(lengths) != 1 or len(col_titles) not in lengths:
        raise ValueError(f"cells: expected {len(col_titles)} (run dir, step) pairs per row, one per column "
                         f"title, got {sorted(lengths)}")
    nrow = math.ceil(math.sqrt(len(z)))
    rows, cols = len(cells), len(col_titles)
    fig, axes = plt.subplots(rows, cols, figsize=(1.75 * cols + 1.1, 1.95 * rows + 0.5), squeeze=False)
    for r, (key, runs) in enumerate(cells.items()):
        for c, (run_dir, step) in enumerate(runs):
            ax = axes[r, c]
            ax.imshow(sample_grid(checkpoint_samples(run_dir, step, z), nrow), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if cell_labels:
                ax.set_xlabel(cell_labels[key][c], fontsize=7, labelpad=2)
            if r == 0:
                ax.set_title(col_titles[c], fontsize=8)
        name, color = STYLES[key][0], STYLES[key][1]
        axes[r, 0].set_ylabel((row_labels or {}).get(key, name), fontsize=8, color=color, labelpad=4)
        for side in axes[r, 0].spines.values():  # the row's color on its first cell's frame too
            side.set_edgecolor(color)
            side.set_linewidth(1.5)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, out, fmt)
