"""The gates: types (mypy --strict on core, the defaults on tui) and the import contracts (lint-imports).

Both read their settings from pyproject.toml ([tool.mypy], [tool.importlinter]). mypy keeps its cache in
.mypy_cache: a warm run takes about a second, a cold one some 15 s per mode on a small machine. The strict
run has a cache of its own, so the two modes do not keep invalidating each other's results for core.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def _run(command: list[str]) -> tuple[int, str]:
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    return out.returncode, f"$ {' '.join(command)}\n{out.stdout}{out.stderr}"


def test_mypy_strict_on_core_and_clean_on_tui():
    for args in (["--strict", "--cache-dir", ".mypy_cache/strict", "core"], ["tui"]):
        code, output = _run([sys.executable, "-m", "mypy", *args])
        assert code == 0, output


def test_import_contracts_are_kept():
    # The console script beside this interpreter; importlinter has no __main__, so the fallback calls its entry point.
    script = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    command = [script] if script else [sys.executable, "-c",
                                       "import sys; from importlinter.cli import lint_imports_command; "
                                       "sys.exit(lint_imports_command())"]
    code, output = _run(command)
    assert code == 0, output
