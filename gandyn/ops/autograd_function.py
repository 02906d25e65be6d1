"""One op's autograd as two torch.autograd.Functions, and the call that picks one.

torch.library.register_autograd gives an op reverse mode only. Forward mode (jvp)
needs an autograd.Function, and torch.func transforms (the diagnostics' jvp of a
vjp) accept only the style with a separate `setup_context`, whose `apply` costs
about 50 µs on CPU in torch 2.14 — against about 8 µs for the style whose forward
takes ctx. So each op gets both, built from the same four functions:

    apply = function_for(name, op, setup_context, backward, jvp)

runs the op itself under torch.compile (which traces its registered autograd), the
setup_context style inside torch.func transforms, and the ctx style otherwise
(reverse mode and torch.autograd.forward_ad alike).
"""
from __future__ import annotations

from typing import Callable

import torch


def inside_torch_func_transform() -> bool:
    return torch._C._functorch.peek_interpreter_stack() is not None


def function_for(name: str, op: Callable, setup_context: Callable, backward: Callable, jvp: Callable) -> Callable:
    """`apply(*args)` for op(*args) with the given formulas (signatures as for autograd.Function)."""

    class ForTransforms(torch.autograd.Function):
        @staticmethod
        def forward(*args):
            return op(*args)

    ForTransforms.setup_context = staticmethod(setup_context)

    class Eager(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *args):
            out = op(*args)
            setup_context(ctx, args, out)
            return out

    for cls in (ForTransforms, Eager):
        cls.backward = staticmethod(backward)
        cls.jvp = staticmethod(jvp)
        cls.__name__ = cls.__qualname__ = f"{name}_{cls.__name__}"

    def apply(*args):
        if torch.compiler.is_compiling():
            return op(*args)
        if inside_torch_func_transform():
            return ForTransforms.apply(*args)
        return Eager.apply(*args)

    return apply
