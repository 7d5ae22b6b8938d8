"""Regenerate README.md's tables from the declarations they describe, so they cannot drift:

- keys: the app's keys, from tui.keys.KEYS; runs-keys, trials-keys, diagnostics-keys: those of the runs,
  trials and diagnostics screens, from tui.keys;
- runs-commands: the `charmlp-tui runs` commands, from tui.runs_cli.build_parser();
- actions: the headless script actions, from core.verbs.VERBS;
- flags: every command-line flag, from tui.settings.build_parser();
- faults: the fault suites, tests/test_faults*.py: what each covers (its docstring's first line)
  and how many cases pytest collects from it.

Each table sits between `<!-- generated: NAME ... -->` and `<!-- end generated: NAME -->` in
README.md; the text around them is left alone.

    python scripts/make_readme_tables.py          # rewrite README.md in place
    python scripts/make_readme_tables.py --check  # exit 1, naming the stale table, if it would change

tests/test_readme.py runs the check.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
sys.path.insert(0, str(REPO))  # the declarations, also from a checkout that was never installed

from core.search_space import DIMS  # noqa: E402
from core.verbs import VERBS  # noqa: E402
from tui.keys import DIAGNOSTICS_KEYS, KEYS, RUNS_KEYS, TRIALS_KEYS, Key  # noqa: E402
from tui.runs_cli import build_parser as build_runs_parser  # noqa: E402
from tui.settings import build_parser  # noqa: E402
from tui.tune_cli import build_parser as build_tune_parser  # noqa: E402


def cell(text: str) -> str:
    """Text as one Markdown table cell: `|` escaped (also inside code spans, as GFM reads them)."""
    return " ".join(text.split()).replace("|", "\\|")


def code(text: str) -> str:
    return f"`{text}`"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cell(c) for c in line) + " |" for line in lines) + "\n"


def keys_table(keys: tuple[Key, ...] = KEYS) -> str:
    return table(("key", "what it does"),
                 ((" / ".join(code(k) for k in key.shown.split(" / ")), key.help) for key in keys))


def runs_commands_table() -> str:
    parser = build_runs_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # no public list either
    rows = []
    for choice in commands._choices_actions:
        sub = commands.choices[choice.dest]
        usage = " ".join(sub.format_usage().split()[1:]).replace(" [-h]", "")  # 'charmlp-tui runs list [--json]'
        rows.append((code(usage), choice.help or ""))
    return table(("command", "what it does"), rows)


def actions_table() -> str:
    return table(("action", "what it does", "mid-run in the app"),
                 ((code(verb.usage), verb.help, "yes" if verb.mid_run else "") for verb in VERBS))


def flags_table(parser: argparse.ArgumentParser | None = None) -> str:
    parser = parser or build_parser()
    rows = []
    for action in parser._actions:  # argparse has no public list of its flags
        flag = ", ".join(action.option_strings)
        if action.nargs != 0:
            flag += f" {action.metavar or action.dest.upper()}"
        help_text = (action.help or "") % {**vars(action), "prog": parser.prog}  # as argparse expands it
        rows.append((code(flag), help_text))
    return table(("flag", "what it does"), rows)


def space_table() -> str:
    return table(("key", "default range", "scale", "what it is"),
                 ((code(d.key), code(d.text), d.scale, d.help) for d in DIMS))


def faults_table() -> str:
    files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "tests").glob("test_faults*.py"))
    collected = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
                               cwd=REPO, capture_output=True, text=True, timeout=300, check=True).stdout
    cases = Counter(line.split("::")[0] for line in collected.splitlines() if "::" in line)
    rows = []
    for name in files:
        doc = ast.get_docstring(ast.parse((REPO / name).read_text(encoding="utf-8"))) or ""
        rows.append((code(name), " ".join(doc.split("\n\n")[0].split()), f"{cases[name]:,}"))
    return table(("suite", "what it covers", "cases"), rows)


# name: (where it comes from, what builds it)
TABLES: dict[str, tuple[str, Callable[[], str]]] = {
    "keys": ("tui/keys.py", keys_table),
    "runs-keys": ("tui/keys.py", lambda: keys_table(RUNS_KEYS)),
    "trials-keys": ("tui/keys.py", lambda: keys_table(TRIALS_KEYS)),
    "diagnostics-keys": ("tui/keys.py", lambda: keys_table(DIAGNOSTICS_KEYS)),
    "runs-commands": ("tui/runs_cli.py", runs_commands_table),
    "actions": ("core/verbs.py", actions_table),
    "flags": ("tui/settings.py", flags_table),
    "tune-flags": ("tui/tune_cli.py", lambda: flags_table(build_tune_parser())),
    "search-space": ("core/search_space.py", space_table),
    "faults": ("tests/test_faults*.py", faults_table),
}


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"<!-- generated: {name} [^\n]*-->\n.*?<!-- end generated: {name} -->", re.DOTALL)


def blocks() -> dict[str, str]:
    """Each table as README.md should hold it, markers included."""
    return {name: f"<!-- generated: {name} from {source} by scripts/make_readme_tables.py: edit there -->\n"
                  f"{build()}<!-- end generated: {name} -->"
            for name, (source, build) in TABLES.items()}


def stale_tables(readme: str) -> list[str]:
    """The tables whose text in `readme` differs from blocks(); ValueError if a table's markers are missing."""
    stale = []
    for name, block in blocks().items():
        found = _pattern(name).findall(readme)
        if len(found) != 1:
            raise ValueError(f"README.md needs one '<!-- generated: {name} -->' ... '<!-- end generated: {name} -->' "
                             f"pair, found {len(found)}")
        if found[0] != block:
            stale.append(name)
    return stale


def render(readme: str) -> str:
    """`readme` with every generated table rewritten."""
    for name, block in blocks().items():
        readme = _pattern(name).sub(lambda _: block, readme)
    return readme


def _names(stale: list[str]) -> str:
    listed = stale[0] if len(stale) == 1 else f"{', '.join(stale[:-1])} and {stale[-1]}"
    return f"the {listed} table{'s' if len(stale) > 1 else ''}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate README.md's key, action, flag and fault-suite tables.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is stale")
    args = parser.parse_args(argv)
    readme = README.read_text(encoding="utf-8")
    try:
        stale = stale_tables(readme)
    except ValueError as e:
        print(f"make_readme_tables: {e}", file=sys.stderr)
        return 1
    if args.check:
        if stale:
            verb = "are" if len(stale) > 1 else "is"
            print(f"README.md: {_names(stale)} {verb} stale: run python scripts/make_readme_tables.py", file=sys.stderr)
            return 1
        return 0
    if stale:
        README.write_text(render(readme), encoding="utf-8")
        print(f"README.md: rewrote {_names(stale)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
