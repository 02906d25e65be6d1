"""PacGAN's 2-D mixture protocol for every game optimizer: modes covered, high-quality
fraction and reverse KL from 2,500 samples at the end of training, averaged over seeds,
printed as a markdown table beside PacGAN's published GAN and PacGAN4 rows (Lin et al.
2018, Table 2: ring 6.3 / 98.2 % / 0.45 and 7.9 / 95.6 % / 0.07; grid 17.3 / 94.8 % / 0.70
and 24.8 / 93.6 % / 0.04).

    python experiments/mixture_table.py --steps 4000 --seeds 0 1 2 --out runs/mixtures
"""
from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from gandyn import config as configs
from gandyn.train import read_metrics, run_experiment

HERE = Path(__file__).resolve().parent
OPTIMIZERS = {  # name: (optimizer, optimizer_args beyond the Adam base)
    "SimGD-Adam": ("simgd", {}),
    "AltGD-Adam (D first)": ("altgd", {"order": [1, 0]}),
    "Extra-Adam": ("extragradient", {}),
    "Optimistic Adam": ("optimistic", {}),
    "Consensus-Adam (γ=1)": ("consensus", {"gamma": 1.0}),
    "Lookahead SimGD-Adam (k=5)": ("simgd", {"lookahead": True}),
}
PUBLISHED = {"ring": [("PacGAN: GAN", 6.3, 0.982, 0.45), ("PacGAN: PacGAN4", 7.9, 0.956, 0.07)],
             "grid": [("PacGAN: GAN", 17.3, 0.948, 0.70), ("PacGAN: PacGAN4", 24.8, 0.936, 0.04)]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", default=["ring", "grid"])
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--lr", type=float, default=None, help="default: the config's")
    p.add_argument("--only", nargs="*", help="substrings of the optimizer labels")
    p.add_argument("--out", default="runs/mixtures")
    args = p.parse_args()
    for data in args.data:
        base = configs.load(HERE / f"{data}.toml")
        lines = [f"| {data}: optimizer | modes (of {8 if data == 'ring' else 25}) | high quality | reverse KL |",
                 "| --- | --- | --- | --- |"]
        for label, (name, extra) in OPTIMIZERS.items():
            if args.only and not any(o in label for o in args.only):
                continue
            extra = dict(extra)
            res = []
            for seed in args.seeds:
                cfg = {**base, "optimizer": name, "steps": args.steps, "seed": seed,
                       "eval_every": min(base["eval_every"], args.steps),
                       "checkpoint_every": args.steps,
                       "optimizer_args": {**base["optimizer_args"], **{k: v for k, v in extra.items()
                                                                       if k != "lookahead"}}}
                if args.lr:
                    cfg["lr"] = args.lr
                if extra.get("lookahead"):
                    cfg["lookahead"] = {"k": 5, "alpha": 0.5}
                out = Path(args.out) / data / f"{label.split(' ')[0]}-{name}-seed{seed}"
                status = run_experiment(cfg, out)
                last = [r for r in read_metrics(out) if "modes_covered" in r][-1]
                res.append((last["modes_covered"], last["high_quality"], last["reverse_kl"], status["status"]))
                print(f"{data} {label} seed {seed}: {res[-1]}", flush=True)
            m = statistics.mean(r[0] for r in res)
            hq = statistics.mean(r[1] for r in res)
            kl = statistics.mean(r[2] for r in res)
            note = "" if all(r[3] == "finished" for r in res) else " (diverged)"
            lines.append(f"| {label}{note} | {m:.1f} | {100 * hq:.1f} % | {kl:.2f} |")
        for label, m, hq, kl in PUBLISHED[data]:
            lines.append(f"| {label} (published) | {m} | {100 * hq:.1f} % | {kl:.2f} |")
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
