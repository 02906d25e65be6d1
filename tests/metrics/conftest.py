"""Metric tests: one torch thread (many small ops stall on a busy shared 2-core machine)."""
import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    yield
