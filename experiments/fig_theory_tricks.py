"""Figure: the training tricks of the lectures, each a GAN-run option, doing what it claims — and
whether they fix the mode collapse of the 8-Gaussian ring.

(a) One-sided label smoothing s (Salimans et al. 2016): D trained against a frozen
    G = N(3, 0.5²) (gandyn.theory.train_discriminator) on the closed form (1 − s)·p/(p + q),
    which caps at 1 − s where only real data lives. (b) Instance noise σ (Sønderby et al. 2016):
    the Dirac-GAN (gandyn.games.dirac, saturating loss, simultaneous GD, η = 0.1) spirals out
    without noise and converges with σ = 0.5, at the rates of its linearization,
    √(1 + η²/4) and √(1 − ησ²/2 + η²/4) per step (dashed).
(c)–(e): `gandyn run` configs of the ring, the mode-collapse setting of
    fig_theory_mode_collapse (MLPs of 128 units, non-saturating loss, simultaneous Adam, lr 1e-3,
    batch 128), with one trick switched on each, over several seeds (mean line, min–max band).
    (c) Feature matching (Salimans et al. 2016): the gap ‖E f(x) − E f(G(z))‖ on D's last
    hidden layer f, at the checkpoints. (d) A replay buffer of 10 batches of past samples
    (Shrivastava et al. 2017): D's memory, the mean D(x) it gives the samples G drew LAG steps
    earlier. (e) The modes covered (PacGAN's protocol: 2,500 samples, within 3σ) against steps.
Writes the runs and RUNS/results.json under RUNS and figures/theory_tricks.png.
"""
import math
from pathlib import Path

import numpy as np
import torch
from fig_theory_mode_collapse import BASE
from matplotlib.ticker import NullFormatter, ScalarFormatter
from scipy.stats import norm

from gandyn.games.dirac import DiracGAN
from gandyn.optim import SimGD
from gandyn.plots import plt, save_figure
from gandyn.theory import gaussian_game, train_discriminator
from gandyn.theory.figure_script import figure_main
from gandyn.train import checkpoints, load_run, read_metrics, run_experiment

SMOOTHING = (0.0, 0.1, 0.2)
DIRAC_LR, DIRAC_NOISE, DIRAC_STEPS = 0.1, 0.5, 600
CHECKPOINT_EVERY, LAG = 250, 500
REPLAY = 10 * BASE["game_args"]["batch_size"]


def tricks(steps: int) -> dict:
    """Each run's game_args on top of BASE's: none, or one trick switched on."""
    return {"plain": {}, "feature matching": {"feature_matching": True},
            "replay buffer": {"replay_buffer": REPLAY},
            "label smoothing 0.2": {"label_smoothing": 0.2},
            "instance noise 0.1 → 0": {"instance_noise": 0.1, "instance_noise_anneal": steps // 2}}


def smoothing_panel() -> dict:
    grid = np.linspace(-2.5, 4.5, 141)
    p, q = norm.pdf(grid), norm.pdf(grid, 3.0, 0.5)
    rows = []
    for s in SMOOTHING:
        torch.manual_seed(0)
        game = train_discriminator(gaussian_game(3.0, 0.5, label_smoothing=s, seed=3), 800)
        with torch.no_grad():
            d = torch.sigmoid(game.discriminate(torch.tensor(grid, dtype=torch.float32)[:, None]))
        rows.append({"s": s, "D": d.tolist(), "closed_form": ((1 - s) * p / (p + q)).tolist(),
                     "D_max": float(d.max()), "D_at_minus_1": float(d[np.argmin(abs(grid + 1))])})
        print(f"label smoothing {s}: max D = {rows[-1]['D_max']:.4f} (cap 1 − s = {1 - s:.2f})")
    return {"grid": grid.tolist(), "rows": rows}


def dirac_distances(noise: float) -> list[float]:
    game = DiracGAN("saturating", theta0=0.3, psi0=0.3, instance_noise=noise, batch_size=8192,
                    dtype=torch.float32, seed=0)
    opt = SimGD(game.players, lr=DIRAC_LR)
    out = [game.distance_to_equilibrium()]
    for _ in range(DIRAC_STEPS):
        opt.step(game)
        out.append(game.distance_to_equilibrium())
    return out


def per_step_rate(dist) -> float:
    """exp of the slope of log distance against steps (least squares)."""
    return math.exp(np.polyfit(np.arange(len(dist)), np.log(dist), 1)[0])


def dirac_panel() -> dict:
    res = {"plain": dirac_distances(0.0), "noise": dirac_distances(DIRAC_NOISE),
           "theory_plain": math.sqrt(1 + DIRAC_LR ** 2 / 4),
           "theory_noise": math.sqrt(1 - DIRAC_LR * DIRAC_NOISE ** 2 / 2 + DIRAC_LR ** 2 / 4)}
    res["rate_plain"], res["rate_noise"] = per_step_rate(res["plain"]), per_step_rate(res["noise"][:301])
    print(f"Dirac-GAN rate per step: no noise {res['rate_plain']:.5f} (theory {res['theory_plain']:.5f}), "
          f"σ = {DIRAC_NOISE} {res['rate_noise']:.5f} (theory {res['theory_noise']:.5f})")
    return res


@torch.no_grad()
def checkpoint_measures(run_dir: Path) -> dict:
    """At each checkpoint t: the feature-mean gap of D_t between real data and G_t's samples,
    and D_t's mean output on G_{t−LAG}'s samples (its memory of what G drew before)."""
    steps = checkpoints(run_dir)
    games = {s: load_run(run_dir, s).game for s in steps}
    real, _ = games[steps[0]]._real.sample(2500, torch.Generator().manual_seed(1))
    fakes = {s: g.generate(g.latents(2500, torch.Generator().manual_seed(0))) for s, g in games.items()}
    out = {"steps": steps, "feature_gap": [], "memory_steps": [], "memory": []}
    for s, g in games.items():
        out["feature_gap"].append(float((g.D.features(real).mean(0) - g.D.features(fakes[s]).mean(0)).norm()))
        if s - LAG in fakes:
            out["memory_steps"].append(s)
            out["memory"].append(float(torch.sigmoid(g.discriminate(fakes[s - LAG])).mean()))
    return out


def ring_runs(runs: Path, steps: int, seeds: list[int]) -> dict:
    res = {}
    for name, extra in tricks(steps).items():
        res[name] = {"eval_steps": None, "modes": [], "feature_gap": [], "memory": []}
        for seed in seeds:
            cfg = {**BASE, "optimizer": "simgd", "steps": steps, "seed": seed,
                   "checkpoint_every": CHECKPOINT_EVERY, "game_args": {**BASE["game_args"], **extra}}
            run_dir = runs / f"{'_'.join(name.split()[:2])}_seed{seed}"
            run_experiment(cfg, run_dir, resume=False)
            rows = [r for r in read_metrics(run_dir) if "modes_covered" in r]
            res[name]["eval_steps"] = [r["step"] for r in rows]
            res[name]["modes"].append([r["modes_covered"] for r in rows])
            if name in ("plain", "feature matching", "replay buffer"):
                m = checkpoint_measures(run_dir)
                res[name].update(checkpoint_steps=m["steps"], memory_steps=m["memory_steps"])
                res[name]["feature_gap"].append(m["feature_gap"])
                res[name]["memory"].append(m["memory"])
            print(f"{name}, seed {seed}: modes covered {res[name]['modes'][-1]}")
    return res


def compute(fast: bool, runs: Path) -> dict:
    steps, seeds = (1500, [0]) if fast else (3000, [0, 1, 2])
    res = {"smoothing": smoothing_panel(), "dirac": dirac_panel(), "steps": steps, "seeds": seeds,
           "lag": LAG, "replay": REPLAY}
    res["ring"] = ring_runs(runs, steps, seeds)
    summarize(res)
    return res


def summarize(res: dict) -> None:
    """The README's numbers, per trick: the first evaluation with all 8 modes covered (per seed),
    and means over the seeds of the first half of training (where plain collapses) and the second."""
    half = res["steps"] // 2
    for r in res["ring"].values():
        r["first_step_all_8"] = [next((s for s, m in zip(r["eval_steps"], row) if m == 8), None)
                                 for row in r["modes"]]
        for key, at in (("modes", "eval_steps"), ("feature_gap", "checkpoint_steps"), ("memory", "memory_steps")):
            if r[key]:
                a, t = np.array(r[key], dtype=float), np.array(r[at])
                r[f"mean_{key}_first_half"] = float(a[:, t <= half].mean())
                r[f"mean_{key}_second_half"] = float(a[:, t > half].mean())


def band(ax, x, rows, color, label, alpha=0.15):
    a = np.asarray(rows, dtype=float)
    ax.plot(x, a.mean(0), "o-", ms=2.5, lw=1.2, color=color, label=label)
    if len(a) > 1:
        ax.fill_between(x, a.min(0), a.max(0), color=color, alpha=alpha, lw=0)


def draw(res: dict, out: Path, fmt: str) -> Path:
    fig = plt.figure(figsize=(14, 8))
    gs = fig.add_gridspec(2, 3)
    a, b, c = (fig.add_subplot(gs[0, i]) for i in range(3))
    d, e = fig.add_subplot(gs[1, 0]), fig.add_subplot(gs[1, 1:])

    grid = np.asarray(res["smoothing"]["grid"])
    for i, r in enumerate(res["smoothing"]["rows"]):
        a.plot(grid, r["closed_form"], color=f"C{i}", lw=2.5, alpha=0.35)
        a.plot(grid, r["D"], "--", color=f"C{i}", lw=1.2, label=f"s = {r['s']:g}")
        a.axhline(1 - r["s"], color=f"C{i}", ls=":", lw=0.7)
    a.plot([], [], color="0.3", lw=2.5, alpha=0.35, label="(1 − s)·p/(p + q)")
    a.plot([], [], "--", color="0.3", lw=1.2, label="trained D (G frozen)")
    a.set_xlabel("x   (p = N(0, 1), q = N(3, 0.5²))")
    a.set_ylabel("D(x)")
    a.set_title("(a) one-sided label smoothing caps D at 1 − s", fontsize=10)
    a.legend(fontsize=7, loc="lower left")

    dr = res["dirac"]
    t = np.arange(len(dr["plain"]))
    b.semilogy(t, dr["plain"][0] * dr["theory_plain"] ** t, color="k", ls=(0, (4, 3)), lw=0.8,
               label="linearization: √(1 + η²/4), √(1 − ησ²/2 + η²/4)")
    b.semilogy(t, dr["noise"][0] * dr["theory_noise"] ** t, color="k", ls=(0, (4, 3)), lw=0.8)
    b.semilogy(t, dr["plain"], color="C3", lw=2, alpha=0.6, label=f"no noise: {dr['rate_plain']:.5f}/step")
    b.semilogy(t, dr["noise"], color="C0", lw=1.5, alpha=0.8,
               label=f"σ = {DIRAC_NOISE:g}: {dr['rate_noise']:.5f}/step (first 300)")
    b.set_xlabel(f"step (simultaneous GD, η = {DIRAC_LR:g})")
    b.set_ylabel("distance to equilibrium ‖(θ, ψ)‖")
    b.set_title("(b) instance noise makes the Dirac-GAN converge", fontsize=10)
    b.legend(fontsize=7, loc="lower left")

    ring = res["ring"]
    for name, color in (("plain", "0.3"), ("feature matching", "C2")):
        band(c, ring[name]["checkpoint_steps"], ring[name]["feature_gap"], color, name)
    c.set_yscale("log")
    c.set_yticks([0.5, 1, 2, 5, 10])
    c.yaxis.set_major_formatter(ScalarFormatter())
    c.yaxis.set_minor_formatter(NullFormatter())
    c.set_xlabel("step")
    c.set_ylabel("‖E f(x) − E f(G(z))‖, f = D's last hidden layer")
    c.set_title("(c) feature matching matches D's features", fontsize=10)
    c.legend(fontsize=7)

    for name, color in (("plain", "0.3"), ("replay buffer", "C1")):
        band(d, ring[name]["memory_steps"], ring[name]["memory"], color, name)
    d.set_ylim(0, 1)
    d.set_xlabel("step t")
    d.set_ylabel(f"mean D_t(x) on the samples of G_(t − {res['lag']})")
    d.set_title(f"(d) replay buffer ({res['replay']} samples): D rejects past G", fontsize=10)
    d.legend(fontsize=7)

    colors = {"plain": "0.3", "feature matching": "C2", "replay buffer": "C1", "label smoothing 0.2": "C4",
              "instance noise 0.1 → 0": "C0"}
    for name, r in ring.items():
        band(e, r["eval_steps"], r["modes"], colors[name], name, alpha=0.06)
    e.set_ylim(-0.3, 8.3)
    e.set_xlabel("step")
    e.set_ylabel("modes covered (of 8)")
    n = len(res["seeds"])
    e.set_title(f"(e) the mode collapse they are meant to fix: 8-Gaussian ring, simultaneous Adam, "
                f"{n} seed{'s' if n > 1 else ''} (mean, min–max)", fontsize=10)
    e.legend(fontsize=7, loc="lower right")
    return save_figure(fig, out / "theory_tricks.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "tricks", compute, draw, with_runs=True)
