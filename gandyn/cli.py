"""`gandyn run | sweep | plot | sample | eval | demo | figures | bench | diagnose`."""
from __future__ import annotations

import argparse
import ast
import math
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


def _set_dotted(cfg: dict, key: str, value) -> None:
    """cfg["a"]["b"] = value for key "a.b" (the tables are created as needed)."""
    *tables, last = key.split(".")
    node = cfg
    for t in tables:
        node = node.setdefault(t, {})
        if not isinstance(node, dict):
            raise SystemExit(f"{key}: {t} is not a table")
    node[last] = value


def _run_config(args) -> dict:
    from gandyn import config as configs

    game, overrides = args.game, list(getattr(args, "overrides", None) or [])
    config = args.config
    if game and (game.endswith(".toml") or Path(game).is_file()):
        if config:
            raise SystemExit("give the config either as the first argument or with --config, not both")
        config, game = game, None
    if game and "=" in game:
        overrides.insert(0, game)
        game = None
    if config and not Path(config).is_file():
        raise SystemExit(f"config: no such file {config}")
    cfg = configs.load(config) if config else {}
    if game:
        cfg["game"] = game
    for item in overrides:
        if "=" not in item:
            raise SystemExit(f"expected KEY=VALUE overrides after the config, got {item!r}")
        k, v = item.split("=", 1)
        _set_dotted(cfg, k.strip(), _literal(v.strip()))
    for key in ("optimizer", "lr", "steps", "seed", "log_every", "checkpoint_every",
                "diagnostics_every", "eval_every", "device"):
        if getattr(args, key, None) is not None:
            cfg[key] = getattr(args, key)
    cfg["game_args"] = {**cfg.get("game_args", {}), **_pairs(args.game_arg, "--game-arg")}
    cfg["optimizer_args"] = {**cfg.get("optimizer_args", {}), **_pairs(args.opt_arg, "--opt-arg")}
    if args.base:
        cfg["optimizer_args"]["base"] = args.base
    if args.lookahead:
        cfg["lookahead"] = {"k": args.lookahead, "alpha": args.lookahead_alpha}
    if getattr(args, "average", None):
        cfg["averaging"] = {**cfg.get("averaging", {}), "mode": args.average}
    return cfg


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("game", nargs="?", help="a TOML config (experiments/*.toml), or a game name: "
                   "bilinear | quadratic | dirac | gan")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config values, dotted for tables: steps=500 game_args.loss=hinge players.D.lr=4e-4")
    p.add_argument("--config", help="a TOML config (command-line options override it)")
    p.add_argument("--optimizer", help="simgd | altgd | extragradient | extragradient-past | "
                   "optimistic | consensus | sga | cgd")
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--log-every", dest="log_every", type=int)
    p.add_argument("--checkpoint-every", dest="checkpoint_every", type=int)
    p.add_argument("--diagnostics-every", dest="diagnostics_every", type=int)
    p.add_argument("--eval-every", dest="eval_every", type=int, help="a GAN's sample metrics every N steps")
    p.add_argument("--device", help="cpu (default) | cuda")
    p.add_argument("--base", help="per-player base optimizer: sgd | adam")
    p.add_argument("--lookahead", type=int, metavar="K", help="wrap in LookaheadMinmax with k=K")
    p.add_argument("--lookahead-alpha", type=float, default=0.5)
    p.add_argument("--average", choices=("uniform", "ema"),
                   help="also average the iterates (Averaged): metrics log the average's too")
    p.add_argument("--game-arg", action="append", metavar="KEY=VALUE", help="game builder argument")
    p.add_argument("--opt-arg", action="append", metavar="KEY=VALUE", help="optimizer argument")


def _default_out(cfg: dict) -> Path:
    """runs/<game>-<optimizer>[-<base>][-lookahead<k>]-lr<lr>-seed<seed>: distinct configs, distinct dirs."""
    game = cfg.get("game", "game")
    if game == "gan":
        game += f"-{cfg.get('game_args', {}).get('data', 'ring')}"
    name = f"{game}-{cfg.get('optimizer', 'simgd')}"
    base = cfg.get("optimizer_args", {}).get("base")
    if base and base != "sgd":
        name += f"-{base}"
    if cfg.get("lookahead"):
        name += f"-lookahead{cfg['lookahead'].get('k', '')}"
    if cfg.get("averaging"):
        name += f"-avg{cfg['averaging'].get('mode', 'uniform')}"
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


def _load_for_eval(args):
    from gandyn.train import load_run

    run = load_run(args.run_dir, args.checkpoint)
    if getattr(run.game, "evaluator", None) is None:
        raise ValueError(f"run_dir: {args.run_dir} is a run of {run.config['game']!r}, not a GAN")
    if args.ema and run.game.G_ema is None:
        raise ValueError(f"--ema: the run {args.run_dir} keeps no EMA of G (game_args.ema = 0)")
    if args.average and args.ema:
        raise ValueError("--average, --ema: choose one (the averaged iterate of every player, or the "
                         "game's EMA of G)")
    if args.average and not hasattr(run.optimizer, "swapped"):
        raise ValueError(f"--average: the run {args.run_dir} averages no iterates (no [averaging] table)")
    return run


def _at(run, args):
    """The context in which to sample: the averaged iterate with --average."""
    import contextlib

    return run.optimizer.swapped() if args.average else contextlib.nullcontext()


def cmd_sample(args) -> int:
    import numpy as np

    run = _load_for_eval(args)
    ev = run.game.evaluator
    if args.n < 1:
        raise ValueError(f"-n: expected a positive number of samples, got {args.n}")
    ev.num_samples, ev._fixed = args.n, None
    with _at(run, args), run.game.preserved():
        x = ev.samples(run.game, ema=args.ema)
    out = Path(args.out)
    if out.suffix == ".npy":
        out.parent.mkdir(parents=True, exist_ok=True)
        np.save(out, x.cpu().numpy())
    elif out.suffix == ".png":
        ev.write_samples(x, out)
    else:
        raise ValueError(f"--out: expected a .npy or .png file name, got {out}")
    which = " (EMA of G)" if args.ema else " (averaged iterate)" if args.average else ""
    print(f"{out}: {args.n} samples of step {run.step}{which}")
    return 0


def cmd_eval(args) -> int:
    import json

    run = _load_for_eval(args)
    with _at(run, args), run.game.preserved():
        row = {"step": run.step, **run.game.evaluator(run.game, None, run.step,
                                                       ema=True if args.ema else False if args.average else None)}
    if args.average:
        row["average"] = True
    # strict JSON: a non-finite number (reverse KL of a collapsed G is inf) is written as a string
    row = {k: str(v) if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
    text = json.dumps(row, indent=1, allow_nan=False)
    out = Path(args.out) if args.out else Path(args.run_dir) / f"eval_step_{run.step:08d}.json"
    out.write_text(text + "\n")
    print(text)
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
        cmd = [sys.executable, str(s), "--figures", args.figures, "--format", args.format]
        if subprocess.call(cmd + (["--fast"] if args.fast else [])) != 0:
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
    f.add_argument("--fast", action="store_true", help="CI-sized versions (a few minutes on a CPU in all)")
    f.add_argument("--format", default="png", choices=("png", "pdf"))
    f.set_defaults(fn=cmd_figures)
    sm = sub.add_parser("sample", help="write N samples of a GAN run's checkpoint (.npy or .png)")
    sm.add_argument("run_dir")
    sm.add_argument("--checkpoint", type=int, metavar="STEP", help="default: the last one")
    sm.add_argument("-n", type=int, default=64)
    sm.add_argument("--out", required=True, help="FILE.npy (an array) or FILE.png (a grid / scatter)")
    sm.add_argument("--ema", action="store_true", help="use the EMA generator")
    sm.add_argument("--average", action="store_true", help="use the averaged iterate ([averaging] runs)")
    sm.set_defaults(fn=cmd_sample)
    ev = sub.add_parser("eval", help="sample-quality metrics of a GAN run's checkpoint, as JSON")
    ev.add_argument("run_dir")
    ev.add_argument("--checkpoint", type=int, metavar="STEP", help="default: the last one")
    ev.add_argument("--ema", action="store_true", help="evaluate the EMA generator")
    ev.add_argument("--average", action="store_true", help="evaluate the averaged iterate ([averaging] runs)")
    ev.add_argument("--out", help="default RUN_DIR/eval_step_XXXXXXXX.json")
    ev.set_defaults(fn=cmd_eval)
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
