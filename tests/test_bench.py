"""`gandyn bench --quick` end to end: every suite runs and writes its rows, and the accuracy
columns hold the numbers that the independent references fix (times are never asserted)."""
import json
import math

import pytest

from gandyn import _ext
from gandyn.bench import SUITES, main

pytestmark = pytest.mark.skipif(not _ext.has_kernel("cpu"), reason="extension gandyn._C not built")


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "bench.json"
    assert main(["--quick", "--device", "cpu", "--json", str(path)]) == 0
    return json.loads(path.read_text())


def by_case(rows, suite):
    return {r["case"]: r for r in rows if r["suite"] == suite}


def test_every_suite_reports_finite_times(rows):
    assert {r["suite"] for r in rows} == set(SUITES)
    for r in rows:
        assert math.isfinite(r["ours_ms"]) and r["ours_ms"] > 0, r["case"]
        assert math.isfinite(r["ref_ms"]) and r["ref_ms"] > 0, r["case"]


def test_kernels_agree_with_their_references(rows):
    for case, r in by_case(rows, "gradient_penalty").items():
        if "rel_err" in r:  # float32 kernel vs the float64 penalty
            assert r["rel_err"] < 1e-6, case
    for case, r in by_case(rows, "spectral_norm").items():
        if "rel_err" in r:  # W / sigma vs torch's parametrization from the same u, v
            assert r["rel_err"] < 1e-5, case
    for case, r in by_case(rows, "frechet").items():
        if "abs_diff" in r:
            assert r["abs_diff"] < 1e-9, case
        elif "newton-schulz" in case:  # float32 iterations, one float64 Newton step
            assert r["rel_err"] < 1e-9, case
        else:  # float64 against scipy.linalg.sqrtm, or the gradients against autograd through eigh
            assert r["rel_err"] < 1e-11, case


def test_stability_map_matches_linear_theory(rows):
    maps = {case.split(":")[0].removeprefix("stability map "): r.get("converged", "")
            for case, r in by_case(rows, "optim").items() if case.startswith("stability map")}
    fractions = {m: [float(cell.split(":")[1]) for cell in c.split()] for m, c in maps.items() if c}
    # Simultaneous GD diverges on every bilinear game at every step size; alternating GD cycles.
    assert max(fractions["simgd"]) == 0 and max(fractions["altgd"]) == 0
    # Extragradient, optimism and consensus converge at some step size.
    for m in ("extragradient", "optimistic", "consensus"):
        assert max(fractions[m]) > 0.05, m
