"""README.md's key, action and flag tables are generated (scripts/make_readme_tables.py): they must
match tui.keys, core.verbs and tui.settings as they are now."""

from __future__ import annotations

import sys
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import make_readme_tables  # noqa: E402


def test_the_generated_tables_are_up_to_date() -> None:
    stale = make_readme_tables.stale_tables(make_readme_tables.README.read_text(encoding="utf-8"))
    assert not stale, (f"README.md's generated {', '.join(stale)} table(s) differ from the code: "
                       "run python scripts/make_readme_tables.py and commit README.md")


def test_a_pipe_inside_a_cell_is_escaped() -> None:
    assert make_readme_tables.cell("engine eager|compiled") == "engine eager\\|compiled"
    assert "`engine eager\\|compiled`" in make_readme_tables.actions_table()
