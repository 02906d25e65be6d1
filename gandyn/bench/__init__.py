"""`gandyn bench`: time every fused op against its reference and print one table.

Each suite is a module gandyn.bench.<name> with
    run(device: str, quick: bool) -> list[dict]
returning rows made by gandyn.bench.timing.row. Ratios are printed, never
asserted: speed is measured here, not in the tests.
"""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys

import torch

SUITES = ("gradient_penalty", "spectral_norm", "frechet", "optim", "train")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def print_table(rows: list[dict], file=None) -> None:
    file = sys.stdout if file is None else file  # at call time: a default bound at import goes stale
    cols = ["suite", "case", "ours_ms", "ref_ms", "speedup", "ref"]
    extra = sorted({k for r in rows for k in r} - set(cols))
    cols += extra
    table = [cols] + [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    for k, line in enumerate(table):
        print("  ".join(s.ljust(w) for s, w in zip(line, widths)).rstrip(), file=file)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=file)


def strict_json(rows):
    """rows with every non-finite float (a timing that could not be taken) as None: strict
    JSON has no NaN or Infinity, and parsers other than Python's reject them."""
    if isinstance(rows, float) and not math.isfinite(rows):
        return None
    if isinstance(rows, dict):
        return {k: strict_json(v) for k, v in rows.items()}
    if isinstance(rows, (list, tuple)):
        return [strict_json(v) for v in rows]
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gandyn bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suites", nargs="*", help=f"subset of {SUITES} (default: all)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="small sizes only (a smoke run)")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON ('-' for stdout)")
    args = p.parse_args(argv)
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        p.error(f"unknown suite(s) {sorted(unknown)}; expected some of {SUITES}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        p.error(f"--device: expected a device such as cpu or cuda, got {args.device!r}")
    if device.type == "cuda" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: torch sees no CUDA device on this machine; use --device cpu")
    if device.type not in ("cpu", "cuda"):
        p.error(f"--device: expected cpu or cuda, got {args.device!r}")
    rows: list[dict] = []
    for name in args.suites or SUITES:
        try:
            mod = importlib.import_module(f"gandyn.bench.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"gandyn.bench.{name}":
                raise
            print(f"[bench] suite {name}: not available in this version", file=sys.stderr)
            continue
        print(f"[bench] {name} on {args.device} ...", file=sys.stderr, flush=True)
        rows += mod.run(args.device, args.quick)
    if args.json == "-":
        json.dump(strict_json(rows), sys.stdout, indent=1, allow_nan=False)
    else:
        print_table(rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(strict_json(rows), f, indent=1, allow_nan=False)
    return 0
