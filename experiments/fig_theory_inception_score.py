"""Figure: the Inception Score's bounds (Salimans et al. 2016), on posteriors built by hand.

N = 1000 posteriors over K = 10 classes: confident (one-hot) posteriors spread evenly over k
classes, blurred toward the uniform posterior by t: p(y|x) = (1 − t)·onehot + t/K.
At t = 0 the score is k (the upper bound K when all classes are covered), at t = 1 it is 1
(the lower bound), from gandyn.metrics.inception_score (float64, KL form). Writes RUNS/results.json
and figures/theory_inception_score.png.
"""
from pathlib import Path

import numpy as np
import torch

from gandyn.metrics import inception_score
from gandyn.plots import plt, save_figure
from gandyn.theory.figure_script import figure_main

K, N = 10, 1000


def compute(fast: bool) -> dict:
    ts = np.linspace(0, 1, 11 if fast else 41)
    curves = {}
    for k in (1, 2, 5, 10):
        one_hot = torch.eye(K, dtype=torch.float64)[torch.arange(N) % k]
        curves[k] = [inception_score((1 - t) * one_hot + t / K, splits=1)[0] for t in ts]
    return {"t": ts.tolist(), "curves": curves}


def draw(res: dict, out: Path, fmt: str) -> Path:
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for k, scores in res["curves"].items():
        ax.plot(res["t"], scores, marker="o", ms=3, label=f"one-hot over {k} of {K} classes")
    ax.axhline(K, color="0.6", ls=":", lw=0.8)
    ax.axhline(1, color="0.6", ls=":", lw=0.8)
    ax.set_xlabel("t: posteriors (1 − t)·one-hot + t·uniform")
    ax.set_ylabel("Inception Score")
    ax.set_title(f"IS bounds: 1 (uniform posteriors) ≤ IS ≤ K = {K}", fontsize=10)
    ax.legend(fontsize=7)
    return save_figure(fig, out / "theory_inception_score.png", fmt)


if __name__ == "__main__":
    figure_main(__doc__, "inception_score", compute, draw)
