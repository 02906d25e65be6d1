"""Data-parallel runs under torchrun: the process group, and the collectives on the field.

    torchrun --nproc_per_node 2 -m gandyn run experiments/ring.toml

`session(device)` joins the process group torchrun describes in the environment (RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT): gloo on the CPU, NCCL on CUDA with
this process's GPU chosen by LOCAL_RANK. Without torchrun's variables (or with one
process) nothing is initialized and every helper below is the identity, so one code
path serves both.

Game optimizers take the field with torch.autograd.grad and differentiate through it,
which DistributedDataParallel's backward hooks never see. So each rank computes the
field of its shard, and `mean_grads` — called by the optimizers' field and
vector–Jacobian helpers (gandyn.optim.base) — replaces it by the mean over ranks. A
result that carries a graph keeps its own rank's graph under the averaged value
(`(g − g.detach()) + mean`, exactly the mean for finite g), so differentiating it again
gives this rank's Jacobian product, which `mean_grads` averages in turn: every
Jacobian–vector product an optimizer takes is the product of the mean field.

The mean over ranks of per-rank fields is the field of the global batch's loss when
each rank's loss is a mean over an equal shard: `shard` refuses a batch that the world
size does not divide.
"""
from __future__ import annotations

import atexit
import contextlib
import os
from typing import Sequence

import torch
import torch.distributed as dist
from torch import Tensor

ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    return dist.get_world_size() if initialized() else 1


def rank() -> int:
    return dist.get_rank() if initialized() else 0


def is_main() -> bool:
    """Rank 0: the one process that writes the run directory."""
    return rank() == 0


def active() -> bool:
    """More than one process: the collectives below do something."""
    return world_size() > 1


def _env() -> dict | None:
    """torchrun's variables, checked; None when this process was not launched by torchrun."""
    if "WORLD_SIZE" not in os.environ:
        return None
    missing = [k for k in ENV if k not in os.environ]
    if missing:
        raise ValueError(f"environment: WORLD_SIZE is set but {missing} are not; launch with torchrun "
                         f"(it sets {list(ENV)})")
    env = {}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT"):
        try:
            env[key] = int(os.environ[key])
        except ValueError:
            raise ValueError(f"environment: {key} must be an integer, got {os.environ[key]!r}") from None
    if env["WORLD_SIZE"] < 1 or not 0 <= env["RANK"] < env["WORLD_SIZE"] or env["LOCAL_RANK"] < 0:
        raise ValueError(f"environment: expected 0 <= RANK < WORLD_SIZE and LOCAL_RANK >= 0, got "
                         f"RANK={env['RANK']}, WORLD_SIZE={env['WORLD_SIZE']}, LOCAL_RANK={env['LOCAL_RANK']}")
    return env


def init_from_env(device: str = "cpu") -> bool:
    """Join torchrun's process group (gloo for device "cpu", NCCL for "cuda"); returns whether
    this call initialized it (False: already initialized, or not launched by torchrun)."""
    if initialized():
        return False
    env = _env()
    if env is None or env["WORLD_SIZE"] == 1:
        return False
    kind = torch.device(device).type
    if kind == "cuda":
        if env["LOCAL_RANK"] >= torch.cuda.device_count():
            raise ValueError(f"device: LOCAL_RANK {env['LOCAL_RANK']} but this node has "
                             f"{torch.cuda.device_count()} CUDA devices; use --nproc_per_node <= that")
        torch.cuda.set_device(env["LOCAL_RANK"])  # "cuda" now means this rank's GPU
        backend = "nccl"
    elif kind == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"device: torchrun runs use \"cpu\" (gloo) or \"cuda\" (NCCL), got {device!r}")
    dist.init_process_group(backend, init_method="env://")
    return True


def shutdown() -> None:
    """Leave the process group (a peer blocked in a collective with this rank then fails at once)."""
    if initialized():
        dist.destroy_process_group()


def session(device: str = "cpu") -> None:
    """Join torchrun's process group once per process (a second init on torchrun's store would
    wait forever, so several runs of one process, `gandyn sweep`, share it); left at exit."""
    if init_from_env(device):
        atexit.register(_leave_together)


def _leave_together() -> None:
    """At exit: wait for every rank, then leave (a gloo peer that leaves while another still
    holds its connections can abort that one's exit)."""
    if initialized():
        with contextlib.suppress(RuntimeError):  # a peer already gone: nothing to wait for
            dist.barrier()
        shutdown()
        # Tensors that gloo's finished work still references must go while the interpreter
        # lives (freed during finalization they abort the process: pytorch/pytorch#179291).
        import gc
        gc.collect()


# ------------------------------------------------------------------ collectives
def _flat_mean_(tensors: list[Tensor]) -> None:
    """Replace each tensor (no graph) by its mean over ranks: one all-reduce per dtype/device."""
    by_kind: dict = {}
    for t in tensors:
        by_kind.setdefault((t.dtype, t.device), []).append(t)
    for ts in by_kind.values():
        flat = torch.cat([t.reshape(-1) for t in ts]).to(collective_device())  # NCCL reduces CUDA tensors only
        dist.all_reduce(flat)
        flat.div_(world_size())
        torch._foreach_copy_(ts, [x.view_as(t) for x, t in zip(flat.split([t.numel() for t in ts]), ts)])


def mean(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The mean over ranks of each tensor (detached copies; the tensors themselves on one process)."""
    tensors = list(tensors)
    if not active() or not tensors:
        return tensors
    out = [t.detach().clone() for t in tensors]
    _flat_mean_(out)
    return out


def mean_grads(grads: Sequence[Tensor]) -> list[Tensor]:
    """Gradients (or Jacobian products) of this rank's shard -> their mean over ranks. One
    with a graph keeps its own graph under the mean value (see the module docstring)."""
    grads = list(grads)
    if not active() or not grads:
        return grads
    means = mean(grads)
    return [g - g.detach() + m if g.requires_grad else m for g, m in zip(grads, means)]


def sum_differentiable(t: Tensor) -> Tensor:
    """Σ over ranks of `t`, differentiable to any order (torch.distributed.nn's all-reduce: its
    backward is itself, so every rank must differentiate together, as the field's evaluation
    does; deprecated in favour of functional collectives, whose autograd support is partial).
    For a statistic of the global batch inside a loss: batch norm's moments, the features'
    mean of feature matching. `t` itself on one process."""
    if not active():
        return t
    import warnings

    from torch.distributed.nn.functional import all_reduce
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return all_reduce(t)


def mean_differentiable(tensors: Sequence[Tensor]) -> list[Tensor]:
    """The mean over ranks of each tensor, differentiable to any order (one all-reduce; see
    `sum_differentiable`): where later steps differentiate through an averaged gradient, as the
    unrolled GAN's G differentiates through D's unrolled steps on the global batch's gradient.
    (`mean_grads` instead keeps each rank's own graph: right for a field that is averaged again
    after every product, not for a value that the graph carries forward.)"""
    tensors = list(tensors)
    if not active() or not tensors:
        return tensors
    flat = sum_differentiable(torch.cat([t.reshape(-1) for t in tensors])) / world_size()
    return [x.view_as(t).to(t.dtype) for x, t in zip(flat.split([t.numel() for t in tensors]), tensors)]


def all_true(flag: bool) -> bool:
    """Whether `flag` holds on every rank."""
    if not active():
        return bool(flag)
    t = torch.tensor([0.0 if flag else 1.0], device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() == 0)


def same_everywhere(value: int) -> bool:
    """Whether every rank holds the same integer `value` (True on one process)."""
    if not active():
        return True
    t = torch.tensor([value, -value], dtype=torch.float64, device=collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t[0].item() == value and -t[1].item() == value


def barrier() -> None:
    if active():
        dist.barrier()


def collective_device(group=None) -> torch.device:
    """Where the collectives of `group` (default: the whole world) take tensors (NCCL: this rank's GPU)."""
    if dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def bounds(n: int, r: int | None = None) -> tuple[int, int]:
    """Rank r's rows [start, stop) of n rows split in rank order (r·n//W to (r+1)·n//W: sizes differ by at most one)."""
    w, r = world_size(), rank() if r is None else r
    return r * n // w, (r + 1) * n // w


def shard(n: int, name: str) -> slice | None:
    """This rank's equal part of a global batch of n (None on one process); refuses an n that
    the world size does not divide: the mean of per-rank means is the global mean only then."""
    if not active():
        return None
    w = world_size()
    if n % w:
        raise ValueError(f"{name}: the global batch {n} must be divisible by the number of processes "
                         f"({w}) so that every rank's loss is a mean over an equal shard")
    return slice(*bounds(n))


def gather_rows(x: Tensor, n: int) -> Tensor:
    """The n rows of which this rank holds `bounds(n)`, concatenated in rank order on every rank."""
    if not active():
        return x
    w = world_size()
    size = max(bounds(n, r)[1] - bounds(n, r)[0] for r in range(w))
    dev = collective_device()
    pad = torch.zeros((size, *x.shape[1:]), dtype=x.dtype, device=dev)
    pad[:len(x)] = x.to(dev)
    parts = [torch.empty_like(pad) for _ in range(w)]
    dist.all_gather(parts, pad)
    rows = [p[:bounds(n, r)[1] - bounds(n, r)[0]] for r, p in enumerate(parts)]
    return torch.cat(rows).to(x.device)


def broadcast_(tensors: Sequence[Tensor], src: int = 0) -> None:
    """Overwrite each tensor with rank src's (in place)."""
    if not active():
        return
    for t in tensors:
        if t.device.type == "cpu" and collective_device().type == "cuda":
            moved = t.to(collective_device())
            dist.broadcast(moved, src)
            t.copy_(moved)
        else:
            dist.broadcast(t, src)


@contextlib.contextmanager
def rank0_buffers(module: torch.nn.Module):
    """Inside: `module`'s buffers are rank 0's (per-rank batch-norm statistics differ); put back on exit."""
    bufs = list(module.buffers())
    if not active() or not bufs:
        yield
        return
    saved = [b.detach().clone() for b in bufs]
    with torch.no_grad():
        broadcast_(bufs)
    try:
        yield
    finally:
        with torch.no_grad():
            torch._foreach_copy_(bufs, saved)


def replica_mismatch(tensors: Sequence[Tensor], what: str) -> str | None:
    """None when every rank holds bitwise the same `tensors` as rank 0, else why not (the same
    answer on every rank). Replicas that drift apart would train different models silently."""
    tensors = [t.detach() for t in tensors]
    if not active() or not tensors:
        return None
    mine = torch.cat([t.reshape(-1).to(torch.float64) for t in tensors]).to(collective_device())
    ref = mine.clone()
    dist.broadcast(ref, 0)
    diff = (mine - ref).abs().nan_to_num(nan=float("inf"))
    worst = diff.max().reshape(1) if diff.numel() else mine.new_zeros(1)
    bad = torch.where(worst > 0, float(rank()), -1.0)
    stats = torch.cat([worst, bad])
    dist.all_reduce(stats, op=dist.ReduceOp.MAX)
    if stats[0].item() == 0:
        return None
    return (f"{what} differ across ranks (rank {int(stats[1].item())} differs from rank 0 by up to "
            f"{stats[0].item():.3g}): the replicas no longer train one model")
