"""Figure 7: speed-up of each fused op over its reference, per case and size, from the
rows of `gandyn bench --json` for the op suites (Fréchet distance, gradient penalty,
spectral norm). --fast runs the benchmark's --quick sizes. The rows are read from
<runs>/bench.json (bench_quick.json with --fast) when it exists (a benchmark run of
its own), else that file is written by running the benchmark here (CPU). BENCHMARKS.md has no
GPU numbers yet, so the figure has a CPU panel only and says so.
"""
import subprocess
import sys
from pathlib import Path

from gandyn.plots import figure_parser, plot_speedups

SUITES = ("frechet", "gradient_penalty", "spectral_norm")

if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_kernels").parse_args()
    rows = Path(a.runs) / ("bench_quick.json" if a.fast else "bench.json")
    if not rows.exists():
        rows.parent.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "gandyn", "bench", *SUITES, "--json", str(rows)] + (["--quick"] if a.fast else [])
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    sizes = "--quick sizes" if a.fast else "full sizes"
    print(plot_speedups(rows, Path(a.figures) / "kernels.png", fmt=a.format,
                        title=f"Fused ops against their references (gandyn bench, CPU, {sizes})",
                        note="No GPU panel: BENCHMARKS.md has no device numbers yet."))
