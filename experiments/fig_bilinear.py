"""Figures 1b and 1c: every optimizer on bilinear games (figures/bilinear_*.png). Same as `make demo`."""
from pathlib import Path

from gandyn.demo import main
from gandyn.plots import figure_parser

if __name__ == "__main__":
    a = figure_parser(__doc__, runs="runs/fig_bilinear").parse_args()
    main(Path(a.runs), Path(a.figures), fast=a.fast, fmt=a.format)
