"""Data sources by name, for configs and the CLI: `make_dataset("ring", sigma=0.02)`."""
from __future__ import annotations

import inspect

from gandyn.options import check_types

from gandyn.data.digits import Digits
from gandyn.data.local import cifar10, fashion_mnist, image_folder, mnist
from gandyn.data.mixtures import grid, grid16, ring
from gandyn.data.stacked import StackedDigits

DATASETS = {
    "ring": ring,
    "grid": grid,
    "grid16": grid16,
    "digits": Digits,
    "stacked-digits": StackedDigits,
    "mnist": mnist,
    "fashion-mnist": fashion_mnist,
    "cifar10": cifar10,
    "image-folder": image_folder,
}

_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def make_dataset(name: str, **kwargs):
    """The data source `DATASETS[name](**kwargs)`; "_" in a name reads as "-" ("fashion_mnist").

    Unknown names and keywords raise ValueError listing the valid ones (from the builder's
    signature), and so does a missing required keyword (e.g. root for the local datasets).
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else None
    if key not in DATASETS:
        raise ValueError(f"name: unknown dataset {name!r}; expected one of {', '.join(DATASETS)}")
    builder = DATASETS[key]
    params = inspect.signature(builder).parameters.values()
    valid = [p.name for p in params if p.kind in _NAMED]
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        unknown = [k for k in kwargs if k not in valid]
        if unknown:
            raise ValueError(f"{key}: unknown keyword{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                             f"valid keywords: {', '.join(valid) or '(none)'}")
    missing = [p.name for p in params if p.kind in _NAMED and p.default is p.empty and p.name not in kwargs]
    if missing:
        raise ValueError(f"{key}: missing required keyword{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))}; "
                         f"valid keywords: {', '.join(valid)}")
    check_types(key, builder, kwargs)
    return builder(**kwargs)
