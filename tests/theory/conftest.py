"""The theory lab's tests train tiny 1-D nets: one torch thread (more only add overhead here)."""
import pytest


@pytest.fixture(autouse=True)
def one_thread(one_torch_thread):
    yield
