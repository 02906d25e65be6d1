"""Figure 6: the digits DCGAN over training under several game optimizers — sample grids of
G's EMA for fixed latents at five checkpoints, and the digits FID against gradient evaluations.

One config, experiments/digits_dcgan.toml (DCGAN on the sklearn digits at 16×16, non-saturating
loss, Adam β = (0.5, 0.999), lr 2e-4, batch 64, EMA 0.999 of G), run under SimGD-Adam,
Extra-Adam, Optimistic Adam and Consensus-Adam (γ = 1) with the same budget of field
evaluations (a Jacobian–vector product counted as one): extragradient and consensus spend
two per step, so they take half the steps. The FID is the evaluator's (features of the
shipped digits classifier, N−1 covariance in float64, 2,000 samples of the EMA generator
against the 1,797 real digits); its floor is the FID between the two halves of the real
digits. Runs are reused when the script is run again (delete RUNS to retrain);
RUNS/results.json holds every run's FID at each evaluation with its step and evaluations.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from gandyn import config as configs
from gandyn.plots import STYLES, figure_parser, plot_curves, plot_samples_over_training
from gandyn.train import read_metrics, run_experiment

HERE = Path(__file__).resolve().parent
OPTIMIZERS = {  # STYLES key: overrides of digits_dcgan.toml (whose base optimizer is Adam)
    "adam": {"optimizer": "simgd"},
    "extra-adam": {"optimizer": "extragradient"},
    "optimistic-adam": {"optimizer": "optimistic"},
    "consensus-adam": {"optimizer": "consensus", "optimizer_args": {"gamma": 1.0}},
}
LABELS = {"adam": "SimGD-Adam"}
# Field evaluations per step: extrapolation evaluates the field twice, consensus adds one
# Jacobian–vector product of ½‖v‖², optimism reuses the last step's field.
EVALS_PER_STEP = {"adam": 1, "extra-adam": 2, "optimistic-adam": 1, "consensus-adam": 2}
# Budgets in field evaluations: the whole run, between two FIDs, and the FID's sample count.
FULL = {"evals": 9_600, "eval_every": 800, "eval_samples": 2_000}  # ~10 CPU-min: the figure set stays under 30
FAST = {"evals": 256, "eval_every": 64, "eval_samples": 500}
COLUMNS = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1)  # the grids' checkpoints, as fractions of the budget
GRID_SIZE = 64  # fixed latents per cell (8 × 8)
LATENT_SEED = 1234


def config(key: str, budget: dict) -> dict:
    """digits_dcgan.toml with the optimizer of `key`, its steps, evaluations and checkpoints
    (every 1/16 of the budget) set so that every run spends budget["evals"] field evaluations."""
    base = configs.load(HERE / "digits_dcgan.toml")
    k = EVALS_PER_STEP[key]
    if budget["evals"] % (16 * k) or budget["eval_every"] % k:
        raise ValueError(f"budget: evals ({budget['evals']}) must be a multiple of 16 × {k} and eval_every "
                         f"({budget['eval_every']}) of {k}, the field evaluations per step of {key!r}, so that "
                         "every run has checkpoints and FIDs at the same evaluation counts")
    over = OPTIMIZERS[key]
    steps = budget["evals"] // k
    every = budget["eval_every"] // k
    return {**base, **over, "steps": steps, "eval_every": every, "log_every": every,
            "checkpoint_every": steps // 16,
            "optimizer_args": {**base["optimizer_args"], **over.get("optimizer_args", {})},
            "game_args": {**base["game_args"], "eval_samples": budget["eval_samples"]}}


def run_all(runs: Path, budget: dict, keys=tuple(OPTIMIZERS)) -> dict[str, Path]:
    """Train (or reuse) one run per optimizer under `runs`; {STYLES key: run dir}."""
    dirs = {}
    for key in keys:
        d = runs / key
        status = run_experiment(config(key, budget), d)
        print(f"{key:>16}: {status.get('reason', status['status'])}", flush=True)
        dirs[key] = d
    return dirs


def fid_floor(seed: int = 0) -> float:
    """The digits FID between two random halves (898 and 899 images, a permutation drawn from
    `seed`) of the real digits: what two independent samples of the data themselves reach.
    (sklearn's order groups writers: its first and last halves are 38.9 apart.)"""
    from gandyn.data.digits import digits_images
    from gandyn.metrics import DigitsFeatures, frechet_distance_from_features

    feats, _ = DigitsFeatures()(digits_images(16)[0])
    perm = torch.randperm(len(feats), generator=torch.Generator().manual_seed(seed))
    half = len(feats) // 2
    return float(frechet_distance_from_features(feats[perm[:half]], feats[perm[half:]]))


def fid_rows(run_dir) -> list[dict]:
    """(step, field evaluations, FID) of every evaluation of a run."""
    return [{"step": r["step"], "evals": r["grad_evals"] + r["hvp_evals"], "fid": r["fid"]}
            for r in read_metrics(run_dir) if "fid" in r]


def grid_cells(dirs: dict[str, Path], budget: dict) -> dict[str, list[tuple[Path, int]]]:
    """{key: [(run dir, checkpoint step) at each fraction of COLUMNS]}."""
    return {key: [(d, round(f * budget["evals"]) // EVALS_PER_STEP[key]) for f in COLUMNS]
            for key, d in dirs.items()}


def fixed_latents(latent_dim: int) -> torch.Tensor:
    return torch.randn(GRID_SIZE, latent_dim, generator=torch.Generator().manual_seed(LATENT_SEED))


def draw(dirs: dict[str, Path], budget: dict, figures: Path, fmt: str, floor: float) -> list[Path]:
    labels = {k: LABELS.get(k, STYLES[k][0]) for k in dirs}
    cells = grid_cells(dirs, budget)
    game_args = config("adam", budget)["game_args"]
    ema = game_args.get("ema", 0.0)
    generator = f"G's EMA (decay {ema:g})" if ema else "G"
    col_titles = [f"{round(f * budget['evals']):,} field evals" for f in COLUMNS]
    row_labels = {k: f"{labels[k]}\n({EVALS_PER_STEP[k]} eval{'s' * (EVALS_PER_STEP[k] > 1)}/step)"
                  for k in dirs}
    cell_labels = {k: [f"step {s:,}" for _, s in v] for k, v in cells.items()}
    grids = plot_samples_over_training(
        cells, fixed_latents(game_args["model_args"]["latent_dim"]), figures / "digits_samples_over_training.png", col_titles=col_titles,
        row_labels=row_labels, cell_labels=cell_labels, fmt=fmt,
        title=f"Digits DCGAN (16×16): samples of {generator} for the same {GRID_SIZE} latents, "
              "at equal field evaluations")
    fid = plot_curves(dirs, figures / "digits_fid.png", metric="fid", x="evals", labels=labels,
                      reference={f"real vs real digits ({floor:.1f})": floor}, fmt=fmt,
                      title=f"Digits DCGAN: FID of {generator}; {budget['eval_samples']:,} samples, "
                            "digits-classifier features")
    return [grids, fid]


if __name__ == "__main__":
    a = figure_parser(__doc__.splitlines()[0], runs="runs/fig_digits").parse_args()
    torch.set_num_threads(1)  # a small DCGAN on a shared 2-core machine: one thread is fastest
    budget = FAST if a.fast else FULL
    runs = Path(a.runs) / ("fast" if a.fast else "full")
    dirs = run_all(runs, budget)
    floor = fid_floor()
    results = {"budget": budget, "fid_floor_real_halves": floor,
               "runs": {k: {"label": LABELS.get(k, STYLES[k][0]), "dir": str(d), "config": config(k, budget),
                            "evals_per_step": EVALS_PER_STEP[k], "status": json.loads((d / "status.json").read_text()),
                            "fid": fid_rows(d)} for k, d in dirs.items()}}
    (Path(a.runs) / "results.json").write_text(json.dumps(results, indent=1))
    for k, r in results["runs"].items():
        print(f"{r['label']:>16}: FID " + ", ".join(f"{row['fid']:.0f}@{row['evals']}" for row in r["fid"]))
    for path in draw(dirs, budget, Path(a.figures), a.format, floor):
        print(path)
