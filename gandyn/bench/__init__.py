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
import sys

import torch

SUITES = ("gradient_penalty", "spectral_norm", "frechet", "optim", "train")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def print_table(rows: list[dict], file=sys.stdout) -> None:
    cols = ["suite", "case", "ours_ms", "ref_ms", "speedup", "ref"]
    extra = sorted({k for r in rows for k in r} - set(cols))
    cols += extra
    table = [cols] + [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(cols))]
    for k, line in enumerate(table):
        print("  ".join(s.ljust(w) for s, w in zip(line, widths)).rstrip(), file=file)
        if k == 0:
            print("  ".join("-" * w for w in widths), file=file)


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
        json.dump(rows, sys.stdout, indent=1)
    else:
        print_table(rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    return 0
