"""Figure: every optimizer on one bilinear game (figures/bilinear_*.png). Same as `make demo`."""
from pathlib import Path

from gandyn.demo import main
from gandyn.plots import figure_parser

if __name__ == "__main__":
    p = figure_parser(__doc__, runs="runs/fig_bilinear")
    a = p.parse_args()
    main(Path(a.runs), Path(a.figures))
