"""Without the compiled extension, gandyn warns once and every op runs its reference."""
import json
import subprocess
import sys

import torch

SCRIPT = r"""
import json, sys, warnings
if BLOCK:
    sys.modules["gandyn._C"] = None          # as if the extension had never been built
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import gandyn
    import gandyn.nn, gandyn.ops.gradient_penalty, gandyn.ops.frechet, gandyn.ops.spectral_norm
import torch
from torch import nn
from gandyn import _ext
from gandyn.nn import gradient_penalty, spectral_norm
from gandyn.ops.frechet import trace_sqrt

torch.manual_seed(0)
D = spectral_norm(nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 1)).double())
real, fake = torch.randn(5, 6, dtype=torch.float64), torch.randn(5, 6, dtype=torch.float64)
gp = gradient_penalty(D, real, fake, kind="r1", weight=2.0)
g0 = torch.cat([g.reshape(-1) for g in torch.autograd.grad(gp, list(D.parameters()), allow_unused=True) if g is not None])
X = torch.randn(3, 4, 4, dtype=torch.float64)
S1 = X @ X.mT + torch.eye(4, dtype=torch.float64)
S2 = X.mT @ X + torch.eye(4, dtype=torch.float64)
msgs = [str(w.message) for w in caught if "gandyn._C" in str(w.message)]
print(json.dumps({"available": _ext.AVAILABLE, "warnings": msgs, "gp": gp.item(),
                  "grad": g0.reshape(-1).tolist(), "trace": trace_sqrt(S1, S2, method="jacobi")[0].tolist()}))
"""


def _run(block: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT.replace("BLOCK", str(block))],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_reference_fallback_matches_the_kernels():
    without = _run(block=True)
    assert without["available"] is False
    assert len(without["warnings"]) == 1
    assert "pip install --no-build-isolation" in without["warnings"][0]
    with_ext = _run(block=False)
    assert with_ext["warnings"] == []
    assert abs(without["gp"] - with_ext["gp"]) <= 1e-12 * abs(with_ext["gp"])
    torch.testing.assert_close(torch.tensor(without["grad"]), torch.tensor(with_ext["grad"]),
                               rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.tensor(without["trace"]), torch.tensor(with_ext["trace"]),
                               rtol=1e-10, atol=1e-12)
