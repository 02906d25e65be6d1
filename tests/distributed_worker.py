"""Runs GAN configs on every rank of a torchrun launch (tests/test_distributed.py starts it).

    torchrun --nproc_per_node 2 tests/distributed_worker.py JOBS.json

JOBS.json: a list of {"config": ..., "out": DIR, "fault": null | "nan" | "raise", "at": STEP}.
A fault is injected on rank 1 only, at its STEP-th minibatch: "nan" makes its losses NaN
(a diverging rank), "raise" raises from its loss closure (a failing rank).
"""
import json
import sys

import torch

from gandyn.games.gan import GANGame
from gandyn.train import run_experiment

torch.set_num_threads(1)


def inject(fault: str, at: int) -> None:
    original = GANGame.losses

    def losses(self):
        import torch.distributed as dist
        out = original(self)
        if dist.get_rank() == 1 and self.steps_drawn >= at:
            if fault == "raise":
                raise RuntimeError(f"injected failure at minibatch {self.steps_drawn}")
            out = [l * float("nan") for l in out]
        return out

    GANGame.losses = losses


for job in json.loads(open(sys.argv[1]).read()):
    if job.get("fault"):
        inject(job["fault"], job["at"])
    run_experiment(job["config"], job["out"])
