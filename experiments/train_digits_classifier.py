"""Train the digits classifier shipped as gandyn/metrics/weights/digits_classifier.pt.

Data: `gandyn.data.digits.digits_images(16)` (the 1,797 sklearn digits, bilinear to 16×16,
in [−1, 1]); the first 1,500 (sklearn's order) train, the last 297 test.
Model: `gandyn.metrics.digits_classifier.DigitsClassifier`.

Deterministic: torch.manual_seed(seed), one thread, deterministic algorithms; each epoch
visits the training set in a permutation drawn from a seeded generator, each minibatch
gets a small random affine augmentation (rotation ±15°, scale 0.85–1.15, shear ±0.1,
shift ±1.5 px) drawn from a second seeded generator; Adam with a cosine learning-rate
schedule for a fixed number of epochs. Rerunning on one machine gives bit-identical weights.

Writes {"state_dict": {name: float32 tensor}, "test_accuracy": float, "config": {...}}
with torch.save (loadable with torch.load(..., weights_only=True)).

    python experiments/train_digits_classifier.py [--epochs 60] [--out PATH]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gandyn.data.digits import digits_images
from gandyn.metrics.digits_classifier import WEIGHTS_PATH, DigitsClassifier

N_TRAIN = 1500
CONFIG = {"seed": 0, "epochs": 60, "batch_size": 50, "lr": 2e-3, "weight_decay": 1e-4,
          "rotation_deg": 15.0, "scale": 0.15, "shear": 0.1, "shift_px": 1.5}


def split():
    """((x_train, y_train), (x_test, y_test)): the first 1,500 and the last 297 of digits_images(16)."""
    x, y = digits_images(16)
    return (x[:N_TRAIN], y[:N_TRAIN]), (x[N_TRAIN:], y[N_TRAIN:])


def augment(x: torch.Tensor, g: torch.Generator, cfg: dict) -> torch.Tensor:
    """Random affine warp of images (B, 1, S, S) in [−1, 1]; the background (−1) fills in."""
    b, s = x.shape[0], x.shape[-1]
    u = lambda: torch.rand(b, generator=g) * 2 - 1  # noqa: E731  uniform(−1, 1)
    angle = u() * math.radians(cfg["rotation_deg"])
    scale = 1 + u() * cfg["scale"]
    shear = u() * cfg["shear"]
    shift = torch.stack([u(), u()], 1) * (2 * cfg["shift_px"] / s)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1),
                         torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample((x + 1) * 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out * 2 - 1


@torch.no_grad()
def accuracy(model: DigitsClassifier, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x).argmax(-1) == y).double().mean())


def train(epochs: int | None = None, seed: int | None = None, verbose: bool = False) -> tuple[DigitsClassifier, dict]:
    """Train from scratch; returns (model in eval mode, record with test_accuracy and seconds)."""
    cfg = dict(CONFIG)
    if epochs is not None:
        cfg["epochs"] = epochs
    if seed is not None:
        cfg["seed"] = seed
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        t0 = time.perf_counter()
        (x_tr, y_tr), (x_te, y_te) = split()
        torch.manual_seed(cfg["seed"])
        model = DigitsClassifier()
        order = torch.Generator().manual_seed(cfg["seed"] + 1)
        aug = torch.Generator().manual_seed(cfg["seed"] + 2)
        opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
        steps_per_epoch = math.ceil(N_TRAIN / cfg["batch_size"])
        total = cfg["epochs"] * steps_per_epoch
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.5 * (1 + math.cos(math.pi * t / total)))
        for epoch in range(cfg["epochs"]):
            model.train()
            perm = torch.randperm(N_TRAIN, generator=order)
            for idx in perm.split(cfg["batch_size"]):
                xb = augment(x_tr[idx], aug, cfg)
                loss = F.cross_entropy(model(xb), y_tr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            if verbose and (epoch + 1) % 10 == 0:
                print(f"epoch {epoch + 1:3d}  loss {loss.item():.4f}  test acc {accuracy(model, x_te, y_te):.4f}")
        model.eval()
        record = {"test_accuracy": accuracy(model, x_te, y_te), "train_accuracy": accuracy(model, x_tr, y_tr),
                  "seconds": time.perf_counter() - t0, "config": cfg}
        return model, record
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def save(model: DigitsClassifier, record: dict, out: Path) -> None:
    state = {k: v.detach().to(torch.float32).contiguous().clone() for k, v in model.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "test_accuracy": record["test_accuracy"],
                "train_accuracy": record["train_accuracy"], "config": record["config"],
                "split": f"digits_images(16): first {N_TRAIN} train, last {1797 - N_TRAIN} test"}, out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=CONFIG["epochs"])
    p.add_argument("--seed", type=int, default=CONFIG["seed"])
    p.add_argument("--out", type=Path, default=WEIGHTS_PATH)
    args = p.parse_args()
    model, record = train(args.epochs, args.seed, verbose=True)
    save(model, record, args.out)
    size = args.out.stat().st_size
    print(f"test accuracy {record['test_accuracy']:.4f} ({round(record['test_accuracy'] * 297)}/297), "
          f"train accuracy {record['train_accuracy']:.4f}, {record['seconds']:.1f} s; "
          f"wrote {args.out} ({size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
