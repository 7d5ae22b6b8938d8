"""What ships is what runs: a wheel built from this tree holds every module and data file the app needs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from setuptools import find_packages

from conftest import REPO


def _clean_copy(target: Path) -> Path:
    """The files git tracks (or would), without build leftovers: an editable install's egg-info
    would otherwise fill in what the package list leaves out."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    for name in listed:
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def test_a_built_wheel_holds_every_package_and_data_file(tmp_path: Path):
    source = _clean_copy(tmp_path / "src")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [wheel] = tmp_path.glob("charmlp_tui-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in find_packages(str(REPO), include=["core*", "tui*"]):
        folder = REPO / package.replace(".", "/")
        for module in folder.glob("*.py"):
            assert module.relative_to(REPO).as_posix() in names, f"{module.relative_to(REPO)} is not in the wheel"
    for data in ("core/assets/ssa_names.txt", "core/native/sgd_chunk.cpp", "tui/app.tcss"):
        assert data in names
    assert "tests/reference.py" not in names  # yardsticks stay with the tests
