"""Figure: every optimizer on one bilinear game (figures/bilinear_*.png). Same as `make demo`."""
import argparse
from pathlib import Path

from gandyn.demo import main

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--figures", default="figures")
    p.add_argument("--runs", default="runs/fig_bilinear")
    a = p.parse_args()
    main(Path(a.runs), Path(a.figures))
