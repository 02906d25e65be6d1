"""`gandyn run | sweep | plot | demo | figures | bench | diagnose`."""
from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _literal(text: str):
    """Values given as key=value on the command line: numbers, booleans, or strings."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _pairs(items, what: str) -> dict:
    out = {}
    for item in items or ():
        if "=" not in item:
            raise SystemExit(f"{what}: expected KEY=VALUE, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = _literal(v.strip())
    return out


def _run_config(args) -> dict:
    from gandyn import config as configs

    cfg = configs.load(args.config) if args.config else {}
    if args.game:
        cfg["game"] = args.game
    for key in ("optimizer", "lr", "steps", "seed", "log_every", "checkpoint_every",
                "diagnostics_every"):
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    cfg["game_args"] = {**cfg.get("game_args", {}), **_pairs(args.game_arg, "--game-arg")}
    cfg["optimizer_args"] = {**cfg.get("optimizer_args", {}), **_pairs(args.opt_arg, "--opt-arg")}
    if args.base:
        cfg["optimizer_args"]["base"] = args.base
    if args.lookahead:
        cfg["lookahead"] = {"k": args.lookahead, "alpha": args.lookahead_alpha}
    return cfg


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("game", nargs="?", help="bilinear | quadratic | ... (or give --config)")
    p.add_argument("--config", help="a TOML config (command-line options override it)")
    p.add_argument("--optimizer", help="simgd | altgd | extragradient | extragradient-past | "
                   "optimistic | consensus | sga | cgd")
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", dest="log_every", type=int)
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    p.add_argument("--diagnostics-every", dest="diagnostics_every", type=int)
    p.add_argument("--base", help="per-player base optimizer: sgd | adam")
    p.add_argument("--lookahead", type=int, metavar="K", help="wrap in LookaheadMinmax with k=K")
    p.add_argument("--lookahead-alpha", type=float, default=0.5)
    p.add_argument("--game-arg", action="append", metavar="KEY=VALUE", help="game builder argument")
    p.add_argument("--opt-arg", action="append", metavar="KEY=VALUE", help="optimizer argument")


def _default_out(cfg: dict) -> Path:
    """runs/<game>-<optimizer>[-<base>][-lookahead<k>]-lr<lr>-seed<seed>: distinct configs, distinct dirs."""
    name = f"{cfg.get('game', 'game')}-{cfg.get('optimizer', 'simgd')}"
    base = cfg.get("optimizer_args", {}).get("base")
    if base and base != "sgd":
        name += f"-{base}"
    if cfg.get("lookahead"):
        name += f"-lookahead{cfg['lookahead'].get('k', '')}"
    return Path("runs") / f"{name}-lr{cfg.get('lr', '')}-seed{cfg.get('seed', 0)}"


def cmd_run(args) -> int:
    from gandyn.train import run_experiment

    cfg = _run_config(args)
    out = Path(args.out) if args.out else _default_out(cfg)
    status = run_experiment(cfg, out, resume=not args.fresh, progress=sys.stderr.isatty())
    print(f"{out}: {status.get('reason', status['status'])}")
    return 0


def cmd_sweep(args) -> int:
    from gandyn.plots import plot_curves
    from gandyn.train import run_experiment

    base = _run_config(args)
    out = Path(args.out)
    dirs = []
    for name in args.optimizers.split(","):
        for lr in args.lrs:
            cfg = {**base, "optimizer": name, "lr": lr}
            d = out / f"{name}-lr{lr}"
            status = run_experiment(cfg, d)
            print(f"{d}: {status.get('reason', status['status'])}")
            dirs.append(d)
    print(plot_curves(dirs, out / "distance.png"))
    return 0


def cmd_plot(args) -> int:
    from gandyn.plots import plot_curves, plot_trajectories

    if args.trajectories:
        print(plot_trajectories(args.run_dirs, args.out))
    else:
        print(plot_curves(args.run_dirs, args.out, metric=args.metric, x=args.x))
    return 0


def cmd_demo(args) -> int:
    from gandyn.demo import main as demo

    demo(Path(args.out), Path(args.figures))
    return 0


def cmd_figures(args) -> int:
    scripts = sorted((REPO / "experiments").glob("fig_*.py"))
    if args.only:
        scripts = [s for s in scripts if any(o in s.stem for o in args.only)]
    if not scripts:
        raise SystemExit(f"no figure scripts experiments/fig_*.py under {REPO}")
    failed = []
    for s in scripts:
        print(f"[figures] {s.name}", flush=True)
        if subprocess.call([sys.executable, str(s), "--figures", args.figures]) != 0:
            failed.append(s.name)
    if failed:
        print(f"[figures] failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Subcommands owned by their own modules parse their own arguments.
    if argv and argv[0] == "bench":
        from gandyn.bench import main as bench
        return bench(argv[1:])
    if argv and argv[0] == "diagnose":
        from gandyn.diagnostics.cli import main as diagnose
        return diagnose(argv[1:])

    p = argparse.ArgumentParser(prog="gandyn", description="GAN training dynamics as a game.")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run one experiment into a run directory")
    _add_run_args(r)
    r.add_argument("--out", help="run directory (default runs/<game>-<optimizer>-lr<lr>-seed<seed>)")
    r.add_argument("--fresh", action="store_true", help="start over instead of resuming")
    r.set_defaults(fn=cmd_run)
    s = sub.add_parser("sweep", help="run several optimizers and step sizes, plot them together")
    _add_run_args(s)
    s.add_argument("--optimizers", required=True, help="comma-separated names")
    s.add_argument("--lrs", type=float, nargs="+", required=True)
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_sweep)
    pl = sub.add_parser("plot", help="distance-to-equilibrium curves of runs on one figure")
    pl.add_argument("run_dirs", nargs="+")
    pl.add_argument("--out", default="distance.png")
    pl.add_argument("--metric", default="distance", help="distance | grad_norm | ...")
    pl.add_argument("--x", default="step", help="step | grad_evals")
    pl.add_argument("--trajectories", action="store_true", help="plot first coordinates instead")
    pl.set_defaults(fn=cmd_plot)
    d = sub.add_parser("demo", help="every optimizer on one bilinear game, with figures")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--figures", default="figures")
    d.set_defaults(fn=cmd_demo)
    f = sub.add_parser("figures", help="redraw every figure (experiments/fig_*.py)")
    f.add_argument("--figures", default=str(REPO / "figures"))
    f.add_argument("--only", nargs="*", help="substrings of script names")
    f.set_defaults(fn=cmd_figures)
    sub.add_parser("bench", help="time every fused op against its reference (see gandyn bench -h)")
    sub.add_parser("diagnose", help="Nash-equilibrium diagnostics of a run (see gandyn diagnose -h)")
    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"gandyn {args.cmd}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
