"""Game optimizers: torch.optim-style classes that step every player of a game.

    opt = OPTIMIZERS["extragradient"](game.players, lr=0.1, base="adam")
    losses = opt.step(game)        # the game is its own loss closure

Each takes `players` (game.players, or param-group dicts with a "player" key),
`lr`, a per-player `base` optimizer ("sgd" with `momentum`, or "adam" with
`betas`, `eps`) and its own options; see gandyn/optim/base.py.
"""
from gandyn.optim.altgd import AltGD
from gandyn.optim.averaging import Averaged
from gandyn.optim.base import GameOptimizer
from gandyn.optim.cgd import CGD
from gandyn.optim.consensus import Consensus
from gandyn.optim.extragradient import Extragradient
from gandyn.optim.extragradient_past import ExtragradientPast
from gandyn.optim.hamiltonian import HamiltonianGD
from gandyn.optim.lookahead import LookaheadMinmax
from gandyn.optim.optimistic import Optimistic
from gandyn.optim.sga import SGA
from gandyn.optim.simgd import SimGD

OPTIMIZERS = {
    "simgd": SimGD,
    "altgd": AltGD,
    "extragradient": Extragradient,
    "extragradient-past": ExtragradientPast,
    "optimistic": Optimistic,
    "consensus": Consensus,
    "sga": SGA,
    "cgd": CGD,
    "hgd": HamiltonianGD,
}

__all__ = ["GameOptimizer", "SimGD", "AltGD", "Extragradient", "ExtragradientPast", "Optimistic",
           "Consensus", "SGA", "CGD", "HamiltonianGD", "LookaheadMinmax", "Averaged", "OPTIMIZERS"]
