"""The old import paths of moved modules give the very module at its new home."""

import importlib
import subprocess
import sys

import pytest

from darkflow._moved import MOVED


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_path_is_the_new_module(old):
    module = importlib.import_module(old)
    new = importlib.import_module(MOVED[old])
    assert module is new
    assert module.__spec__.name == MOVED[old]  # the module keeps its own spec
    parent, _, leaf = old.rpartition(".")
    assert getattr(importlib.import_module(parent), leaf) is new


def test_from_import_of_an_old_path():
    code = (
        "from darkflow.cfa import is_cfa; import darkflow.stats.cfa as c; print(is_cfa is c.is_cfa)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


def test_python_m_darkflow():
    out = subprocess.run(
        [sys.executable, "-m", "darkflow", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: darkflow" in out.stdout
