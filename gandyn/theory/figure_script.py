"""The command-line body shared by the theory lab's figure scripts (experiments/fig_theory_*.py).

    if __name__ == "__main__":
        figure_main(__doc__, "critic_w1", compute, draw)

compute(fast) -> a JSON-able dict of results, written to RUNS/results.json (the figure's
"run directory", default runs/theory_NAME); with `with_runs`, compute(fast, runs) for a script
that writes training runs of its own under RUNS. draw(results, figures_dir, fmt) -> the
figure's path.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch

from gandyn.plots import figure_parser


def figure_main(doc: str | None, name: str, compute: Callable[..., dict],
                draw: Callable[[dict, Path, str], Path], *, with_runs: bool = False) -> Path:
    torch.set_num_threads(1)  # tiny nets: more threads only add overhead
    args = figure_parser(doc, runs=f"runs/theory_{name}").parse_args()
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    results = compute(args.fast, runs) if with_runs else compute(args.fast)
    (runs / "results.json").write_text(json.dumps(results))
    out = draw(results, Path(args.figures), args.format)
    print(out)
    return out
