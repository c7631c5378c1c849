"""Every module of app/ imports on its own, first, in a fresh interpreter: none
depends on another having been imported before it (a circle between modules
shows up here as a partially initialised module). The layers themselves are
held by import-linter's contracts in pyproject.toml (`make lint`)."""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _modules() -> list[str]:
    found = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


def test_every_module_is_found():
    modules = _modules()
    assert {"app", "app.services.chat", "app.realtime.notify", "app.api.messages", "app.models"} <= set(modules)


def _import_alone(module: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


@pytest.fixture(scope="module")
def imported() -> dict[str, subprocess.CompletedProcess[str]]:
    """Each module imported in its own interpreter, as many at a time as there are cores."""
    modules = _modules()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return dict(zip(modules, pool.map(_import_alone, modules), strict=True))


@pytest.mark.parametrize("module", _modules())
def test_module_imports_on_its_own(imported, module):
    result = imported[module]
    assert result.returncode == 0, result.stderr[-3000:]
