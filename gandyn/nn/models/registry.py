"""GAN architectures by name: `G, D = make_models("dcgan", (1, 16, 16), width=32)`.

Every entry of MODELS is a builder `(data_shape, num_classes=0, g_args=None, d_args=None, **shared)
-> (G, D)`: data_shape sets the data-dependent arguments (in/out dimension, channels, size, and
num_classes for the conditional entries); `shared` keywords go to each of G and D whose
constructor takes them (e.g. width, init), `g_args` / `d_args` to G / D only (and override the
shared ones). Unknown keywords, data-set arguments passed by hand, and data shapes an architecture
cannot take are ValueErrors that say what is valid.

    name               data_shape                         num_classes   G / D
    mlp                (d,)                               0             MLPGenerator / MLPDiscriminator
    pacgan-mlp         (d,)                               0             pacgan_generator / pacgan_discriminator
    dcgan              (C, S, S), S power of two >= 8     0             DCGANGenerator / DCGANDiscriminator
    sngan-cnn          (C, S, S), S multiple of 8         0             SNGANCNNGenerator / SNGANCNNDiscriminator
    sngan-resnet       (C, S, S), S multiple of 8         0             SNGANResNetGenerator / ...Discriminator
    cgan-mlp           (d,)                               >= 1          ConditionalMLPGenerator / ...Discriminator
    cgan-dcgan         (C, S, S), S power of two >= 8     >= 1          ConditionalDCGANGenerator / ...Discriminator
    sngan-projection   (C, S, S), S multiple of 8         >= 1          ConditionalSNGANResNetGenerator /
                                                                        SNGANProjectionDiscriminator
"""
from __future__ import annotations

import inspect
import operator
from typing import Callable

from torch import nn

from gandyn.options import check_types

from gandyn.nn.models.conditional import (ConditionalDCGANDiscriminator, ConditionalDCGANGenerator,
                                          ConditionalMLPDiscriminator, ConditionalMLPGenerator,
                                          ConditionalSNGANResNetGenerator, SNGANProjectionDiscriminator)
from gandyn.nn.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gandyn.nn.models.mlp import MLPDiscriminator, MLPGenerator, pacgan_discriminator, pacgan_generator
from gandyn.nn.models.sngan import (SNGANCNNDiscriminator, SNGANCNNGenerator, SNGANResNetDiscriminator,
                                    SNGANResNetGenerator)

__all__ = ["MODELS", "make_models", "model_keywords", "ModelBuilder"]

_POW2 = "(C, S, S) with S a power of two >= 8 (8, 16, 32, 64, ...)"
_MULT8 = "(C, S, S) with S a multiple of 8 (8, 16, 24, 32, 48, ...)"
_VECTOR = "(d,) with d >= 1 (vector data, e.g. (2,))"


def _shape_tuple(data_shape) -> tuple:
    """data_shape as a tuple of ints (a tuple, list, torch.Size, or integer-likes such as numpy ints)."""
    try:
        if isinstance(data_shape, (str, bytes)) or any(isinstance(s, bool) for s in data_shape):
            raise TypeError
        return tuple(operator.index(s) for s in data_shape)
    except TypeError:
        raise ValueError(f"data_shape: expected a tuple of integers such as (2,) or (1, 16, 16), "
                         f"got {data_shape!r}") from None


def _vector(shape: tuple) -> dict | None:
    return {"dim": shape[0]} if len(shape) == 1 and shape[0] >= 1 else None


def _image(ok: Callable[[int], bool]) -> Callable[[tuple], dict | None]:
    def parse(shape: tuple) -> dict | None:
        if len(shape) == 3 and shape[0] >= 1 and shape[1] == shape[2] and ok(shape[1]):
            return {"channels": shape[0], "size": shape[1]}
        return None
    return parse


def _params(fn: Callable) -> list[str]:
    return [n for n, p in inspect.signature(fn).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


class ModelBuilder:
    """One MODELS entry: builds (G, D) for a data shape; see the module docstring."""

    def __init__(self, name: str, generator: Callable[..., nn.Module], discriminator: Callable[..., nn.Module],
                 parse: Callable[[tuple], dict | None], expected: str,
                 g_fixed: Callable[[dict], dict], d_fixed: Callable[[dict], dict], conditional: bool) -> None:
        self.name, self.generator, self.discriminator = name, generator, discriminator
        self.parse, self.expected, self.conditional = parse, expected, conditional
        self.g_fixed, self.d_fixed = g_fixed, d_fixed
        probe = {"dim": 1, "channels": 1, "size": 8}
        extra = {"num_classes"} if conditional else set()
        self.g_set = set(g_fixed(probe)) | extra  # arguments set from data_shape / num_classes
        self.d_set = set(d_fixed(probe)) | extra
        self.g_keywords = [k for k in _params(generator) if k not in self.g_set]
        self.d_keywords = [k for k in _params(discriminator) if k not in self.d_set]

    def keywords(self) -> dict[str, list[str]]:
        """The keywords this entry takes: shared (G's or D's), g_args, d_args."""
        shared = self.g_keywords + [k for k in self.d_keywords if k not in self.g_keywords]
        return {"shared": shared, "g_args": list(self.g_keywords), "d_args": list(self.d_keywords)}

    def _check(self, where: str, given: dict, valid: list[str], fixed: set[str]) -> None:
        for k in given:
            if k in fixed:
                raise ValueError(f"{self.name}: {where} keyword {k!r} is set from data_shape/num_classes and cannot be "
                                 f"passed")
            if k not in valid:
                raise ValueError(f"{self.name}: unknown {where} keyword {k!r}; valid keywords: {valid}")

    def __call__(self, data_shape: tuple, num_classes: int = 0, g_args: dict | None = None,
                 d_args: dict | None = None, **shared) -> tuple[nn.Module, nn.Module]:
        shape = _shape_tuple(data_shape)
        dims = self.parse(shape)
        if dims is None:
            raise ValueError(f"{self.name}: cannot take data_shape {shape}; expected {self.expected}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 0:
            raise ValueError(f"num_classes: expected an integer >= 0, got {num_classes!r}")
        if self.conditional and num_classes < 1:
            raise ValueError(f"{self.name} is conditional: num_classes must be >= 1, got {num_classes}")
        if not self.conditional and num_classes:
            conditional = sorted(k for k, b in MODELS.items() if b.conditional)
            raise ValueError(f"{self.name} is unconditional: num_classes must be 0, got {num_classes}; "
                             f"conditional models: {conditional}")
        g_args, d_args = dict(g_args or {}), dict(d_args or {})
        kw = self.keywords()
        self._check("shared", shared, kw["shared"], self.g_set | self.d_set)
        self._check("g_args", g_args, kw["g_args"], self.g_set)
        self._check("d_args", d_args, kw["d_args"], self.d_set)
        cond = {"num_classes": num_classes} if self.conditional else {}
        g_kw = {k: v for k, v in shared.items() if k in self.g_keywords} | g_args | self.g_fixed(dims) | cond
        d_kw = {k: v for k, v in shared.items() if k in self.d_keywords} | d_args | self.d_fixed(dims) | cond
        check_types(f"{self.name} G", self.generator, g_kw)
        check_types(f"{self.name} D", self.discriminator, d_kw)
        return self.generator(**g_kw), self.discriminator(**d_kw)

    def __repr__(self) -> str:
        return f"ModelBuilder({self.name!r}: data_shape {self.expected})"


def _vec_g(d: dict) -> dict:
    return {"out_dim": d["dim"]}


def _vec_d(d: dict) -> dict:
    return {"in_dim": d["dim"]}


def _img(d: dict) -> dict:
    return {"channels": d["channels"], "size": d["size"]}


def _pow2(s: int) -> bool:
    return s >= 8 and s & (s - 1) == 0


def _mult8(s: int) -> bool:
    return s >= 8 and s % 8 == 0


MODELS: dict[str, ModelBuilder] = {b.name: b for b in [
    ModelBuilder("mlp", MLPGenerator, MLPDiscriminator, _vector, _VECTOR, _vec_g, _vec_d, False),
    ModelBuilder("pacgan-mlp", pacgan_generator, pacgan_discriminator, _vector, _VECTOR, _vec_g, _vec_d, False),
    ModelBuilder("dcgan", DCGANGenerator, DCGANDiscriminator, _image(_pow2), _POW2, _img, _img, False),
    ModelBuilder("sngan-cnn", SNGANCNNGenerator, SNGANCNNDiscriminator, _image(_mult8), _MULT8, _img, _img, False),
    ModelBuilder("sngan-resnet", SNGANResNetGenerator, SNGANResNetDiscriminator, _image(_mult8), _MULT8,
                 _img, _img, False),
    ModelBuilder("cgan-mlp", ConditionalMLPGenerator, ConditionalMLPDiscriminator, _vector, _VECTOR,
                 _vec_g, _vec_d, True),
    ModelBuilder("cgan-dcgan", ConditionalDCGANGenerator, ConditionalDCGANDiscriminator, _image(_pow2), _POW2,
                 _img, _img, True),
    ModelBuilder("sngan-projection", ConditionalSNGANResNetGenerator, SNGANProjectionDiscriminator,
                 _image(_mult8), _MULT8, _img, _img, True),
]}


def model_keywords(name: str) -> dict[str, list[str]]:
    """The shared / g_args / d_args keywords of MODELS[name]."""
    return _builder(name).keywords()


def _builder(name: str) -> ModelBuilder:
    if name not in MODELS:
        raise ValueError(f"model: expected one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name]


def make_models(name: str, data_shape: tuple, num_classes: int = 0, g_args: dict | None = None,
                d_args: dict | None = None, **shared) -> tuple[nn.Module, nn.Module]:
    """(G, D) of architecture `name` for data of shape `data_shape` (one sample: (d,) or (C, S, S));
    see the module docstring for the entries, the shapes each takes and how keywords are routed."""
    return _builder(name)(data_shape, num_classes, g_args=g_args, d_args=d_args, **shared)
