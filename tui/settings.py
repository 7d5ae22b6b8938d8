"""What the command line decides: the flags, their parser, the validated Settings and exit codes.

Free of textual and torch, so `--help` and a bad flag answer at once.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import NoReturn

from core import ranges
from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import CharMLPError, ConfigError, ScriptError
from core.files import check_target, protect
from core.store import default_path, protect_store
from core.reading import describe_char, first_unprintable, read_regular_file, shown_path, text_lines
from core.verbs import VERBS

EXIT_USAGE = 2  # bad flags, bad input files, bad scripts
EXIT_INTERRUPTED = 130  # a second Ctrl+C; a first signal N exits with 128 + N as a shell reports it
EXIT_OUTPUT = 1  # stdout or the --autosave checkpoint could not be written (a full disk); a closed pipe exits 128 + SIGPIPE


@dataclass(frozen=True)
class Settings:
    """Everything the flags decide, already validated."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig
    load: Path | None
    headless: bool
    script: str | None
    json: bool
    force: bool
    threads: int
    eval_every_s: float
    compile: bool  # build the native training steps in the background (core.native)
    autosave: Path | None  # where to save the model when the app or a headless run ends, however it ends
    keep_runs: bool = True  # keep every run in the run store (core.store); False: --no-runs
    runs_db: Path | None = None  # the store's file; None: core.store.default_path()
    run_name: str | None = None  # --run NAME: what the first run is called (default: generated)
    resume: str | None = None  # --resume NAME: continue this stored run

    def to_argv(self) -> list[str]:
        """The flags that rebuild this model on this data (paths made absolute): what a replay of
        a session needs. parse_settings(to_argv()) gives back the same data, model, training and load."""
        return self.argv_for(self.model, self.train, self.load)

    def argv_for(self, m: ModelConfig, t: TrainConfig, load: Path | None) -> list[str]:
        return rebuild_argv(self.data, m, t, load)


def rebuild_argv(d: DataConfig, m: ModelConfig, t: TrainConfig, load: Path | None) -> list[str]:
    """The flags that rebuild model m, trained as t, on data d (from `load` if given): what a
    replay needs, and what the run store keeps with each run (core.keeping)."""
    argv = ["--data", str(d.path.resolve())] if d.path else []
    argv += ["--split", ",".join(f"{f:g}" for f in d.split),
             "--block-size", str(m.block_size), "--emb-dim", str(m.emb_dim), "--hidden", str(m.hidden),
             "--init", m.init, *(["--seed", str(m.seed)] if t.batch_seed is None else  # the batch seed derived from it
               ["--init-seed", str(m.seed), "--batch-seed", str(t.batch_seed)])]
    argv += ["--batch-size", str(t.batch_size), "--lr-exp", f"{t.lr_exponent:.10g}"]
    return argv + (["--load", str(load.resolve())] if load else [])




def name_of(kind: ranges.Name) -> Callable[[str], str]:
    def name(text: str) -> str:
        try:
            return kind.parse(text)
        except CharMLPError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return name


def split_fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions train,dev,test, got {text!r}")
    return parts[0], parts[1], parts[2]


def in_range(bounds: ranges.IntRange | ranges.FloatRange | ranges.Words) -> Callable[[str], int | float | str]:
    """An argparse type that reads a value and checks it against core.ranges."""

    def number(text: str) -> int | float | str:
        try:
            return bounds.parse(text)
        except CharMLPError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return number


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line, not the whole usage block above it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def package_version() -> str:
    try:
        return version("charmlp-tui")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    verbs = "\n".join(f"  {v.usage:<24} {v.help}" for v in VERBS)
    parser = OneLineParser(
        prog="charmlp-tui",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the character-level MLP of makemore part 2 and find its learning rate, "
                    "interactively in the terminal or headless from a script.",
        epilog=f"script actions (--script, separated by ';'):\n{verbs}\n\n"
               "example:\n  charmlp-tui --headless --script \"sweep; lr -1; run 20000; decay; run 10000; eval; sample 10\"\n\n"
               "kept runs: charmlp-tui runs list|show|export|rm|rename (see charmlp-tui runs --help)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, metavar="PATH",
                      help="UTF-8 text file, one word per line (default: the built-in 32,000 US SSA names)")
    d, m, t = DataConfig(), ModelConfig(), TrainConfig()  # the defaults live there
    data.add_argument("--split", type=split_fractions, default=d.split, metavar="TRAIN,DEV,TEST",
                      help=f"fractions of the shuffled words per split (default {','.join(f'{f:g}' for f in d.split)}; "
                           "1,0,0 trains on all)")
    model = parser.add_argument_group("model")
    model.add_argument("--block-size", type=int, default=m.block_size, metavar="N",
                       help="characters of context (default %(default)s)")
    model.add_argument("--emb-dim", type=int, default=m.emb_dim, metavar="N",
                       help="embedding width per character (default %(default)s)")
    model.add_argument("--hidden", type=int, default=m.hidden, metavar="N", help="tanh hidden units (default %(default)s)")
    model.add_argument("--init", type=in_range(ranges.INIT), default=m.init, metavar="|".join(ranges.INITS),
                       help="how the parameters are drawn: 'lecture', plain randn as in makemore part 2 (default); "
                            "'scaled', the same draws scaled as in part 3 (W1 by (5/3)/sqrt(fan-in), b1 and W2 by "
                            "0.01, b2 zero), which keeps tanh out of saturation at any context width")
    model.add_argument("--seed", type=int, default=m.seed, metavar="N",
                       help="seed of the initial parameters and minibatches (default %(default)s, the lecture's)")
    model.add_argument("--init-seed", type=in_range(ranges.SEED), metavar="N",
                       help="seed of the initial parameters alone (default: --seed)")
    model.add_argument("--batch-seed", type=in_range(ranges.SEED), metavar="N",
                       help="seed of the minibatch order alone (default: --seed + 1): vary it to see what the order "
                            "alone changes")
    train = parser.add_argument_group("training")
    train.add_argument("--batch-size", type=int, default=t.batch_size, metavar="N",
                       help="examples per minibatch (default %(default)s)")
    train.add_argument("--lr-exp", type=float, default=t.lr_exponent, metavar="X",
                       help=f"learning rate 10**X (default {t.lr_exponent:g}, lr {10 ** t.lr_exponent:g})")
    train.add_argument("--threads", type=in_range(ranges.THREADS), default=1, metavar="N",
                       help="torch CPU threads (default 1: at batch 32 a second thread only adds hand-off cost)")
    train.add_argument("--no-compile", dest="compile", action="store_false",
                       help="never build the native (C++) training steps; by default the app builds them in the "
                            "background with the machine's C++ compiler (about a second the first time, cached in "
                            "~/.cache/charmlp-tui), times them against the eager step on the model and switches "
                            "where they are faster; headless does the same before the first action, for scripts of "
                            "50k+ model-steps (runs, sweeps, grids) or when they are cached")
    run = parser.add_argument_group("running")
    run.add_argument("--load", type=Path, metavar="CKPT", help="start from a checkpoint (its model shape wins over the model flags)")
    run.add_argument("--headless", action="store_true", help="no UI: run --script, print a summary, exit")
    run.add_argument("--script", metavar="ACTIONS", help="actions to run, separated by ';', e.g. \"run 1000; eval\" (the actions are listed at the end of --help)")
    run.add_argument("--script-file", type=Path, metavar="FILE", help="read the actions from a file (one per line or ';')")
    run.add_argument("--json", action="store_true", help="with --headless: end stdout with one JSON summary line")
    run.add_argument("--force", action="store_true", help="let 'save' overwrite an existing file that this run did not write")
    run.add_argument("--autosave", type=Path, metavar="CKPT",
                     help="save the model to CKPT (atomically, overwriting it) whenever the app or a headless run "
                          "ends: on quit, at the end of the script, and when stopped by Ctrl+C, SIGTERM or SIGHUP")
    runs = parser.add_argument_group("runs (every run is kept: `charmlp-tui runs --help` lists, shows, exports, removes)")
    runs.add_argument("--runs-db", type=Path, metavar="PATH",
                      help="the run store, an SQLite file (default: runs.db in the user's data folder, "
                           "$XDG_DATA_HOME/charmlp-tui or ~/.local/share/charmlp-tui on Linux)")
    runs.add_argument("--no-runs", dest="keep_runs", action="store_false", help="keep no run: nothing is written")
    runs.add_argument("--run", type=name_of(ranges.RUN_NAME), metavar="NAME",
                      help="name the run this session trains (default: run<N>); a taken name is refused (taken "
                           "by another process after the start: the run is kept as NAME.2, said in one line)")
    runs.add_argument("--resume", type=name_of(ranges.RUN_NAME), metavar="NAME",
                      help="continue the stored run NAME exactly where it stopped: its data, shape, seeds, batch, "
                           "parameters, step, LR, history and minibatch stream (the model and data flags are its own)")
    run.add_argument("--eval-every", type=in_range(ranges.EVAL_EVERY_S), default=1.0, metavar="SECONDS",
                     help="in the app: full train/dev loss during runs at most this often (default 1; 0 = never)")
    return parser


# what a stored run decides for itself: refused beside --resume
RUN_OWN = ("--split", "--block-size", "--emb-dim", "--hidden", "--init", "--seed", "--init-seed", "--batch-seed",
           "--batch-size", "--lr-exp")


def _given(argv: list[str] | None, flags: tuple[str, ...]) -> list[str]:
    """Which of `flags` the command line gives (abbreviated too, as argparse reads them): the
    parser again, with every default None."""
    probe = build_parser()
    dests = {a.dest: a.option_strings[0] for a in probe._actions if a.option_strings and a.option_strings[0] in flags}
    probe.set_defaults(**dict.fromkeys(dests))
    given = vars(probe.parse_args(argv))
    return [flag for dest, flag in dests.items() if given[dest] is not None]


SCRIPT_MAX_BYTES = 1 << 20  # a script of 1 MiB is some 100,000 actions: plenty


def _read_script(path: Path) -> str:
    """--script-file's text: a regular file of at most SCRIPT_MAX_BYTES (core.reading), UTF-8,
    \\r\\n, \\r or \\n ending a line, no character that is not printable but a tab (an ESC
    would reach the terminal in an error message); registered as an input never written over."""
    shown = f"--script-file {shown_path(path)}"
    raw = read_regular_file(path, SCRIPT_MAX_BYTES, ScriptError, "script file", shown,
                            missing="cannot be read (no such file)")
    protect(path, "script file")
    lines = text_lines(raw, shown, ScriptError, "a UTF-8 text file of actions")
    for number, line in enumerate(lines, start=1):
        bad = first_unprintable(line, allowed="\t")
        if bad is not None:
            raise ScriptError(f"{shown}:{number}: {describe_char(bad)} in {line[:40]!r}; a script is printable "
                              "text, remove it")
    return "\n".join(lines)


def _check_autosave(path: Path, data: Path | None) -> None:
    """Refuse, before any work, an --autosave that could never be written or must never be: a
    folder, a device or FIFO, the words or script file, a missing or read-only folder (core.files
    refuses the same at the save itself)."""
    shown = f"--autosave {shown_path(path)}"
    if data is not None:
        protect(data, "words file")  # load_words registers it too; here the check comes before the data
    try:
        check_target(path, True, set(), ConfigError, "model.pt", "")
    except CharMLPError as e:
        raise ConfigError(f"--autosave: {e}") from None
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"{shown}: the folder {shown_path(folder)} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"{shown}: the folder {shown_path(folder)} cannot be written (read-only or no permission); "
                          "give another place")


def parse_settings(argv: list[str] | None) -> Settings:
    """Parse and validate; exits with status 2 and a one-line message on any bad flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        script = args.script
        if args.script_file is not None:
            if script is not None:
                parser.error("give --script or --script-file, not both")
            script = _read_script(args.script_file)
        if args.headless and script is None:
            parser.error("--headless needs --script or --script-file")
        if args.json and not args.headless:
            parser.error("--json needs --headless")
        if args.resume is not None and (args.run is not None or args.load is not None):
            parser.error("--resume continues a stored run: give it without --run or --load")
        if args.resume is not None and (own := _given(argv, RUN_OWN)):
            parser.error(f"--resume continues the run with its own split, shape, seeds, batch and LR: give it "
                         f"without {', '.join(own)} (--data may point at its words where they moved)")
        if not args.keep_runs and (args.resume is not None or args.run is not None or args.runs_db is not None):
            parser.error("--no-runs keeps no run: give it without --run, --resume or --runs-db")
        autosave = args.autosave.expanduser() if args.autosave is not None else None
        if args.keep_runs:  # never an --autosave over it (the store protects itself again when opened)
            protect_store(args.runs_db.expanduser() if args.runs_db else default_path())
        if autosave is not None:
            _check_autosave(autosave, args.data)
        return Settings(
            data=DataConfig(path=args.data, split=args.split),
            model=ModelConfig(block_size=args.block_size, emb_dim=args.emb_dim, hidden=args.hidden,
                              seed=args.seed if args.init_seed is None else args.init_seed, init=args.init),
            train=TrainConfig(batch_size=args.batch_size, lr_exponent=args.lr_exp,
                              batch_seed=args.batch_seed if args.batch_seed is not None else
                              None if args.init_seed is None else args.seed + 1),
            load=args.load, headless=args.headless, script=script, json=args.json, force=args.force,
            threads=args.threads, eval_every_s=args.eval_every, compile=args.compile, autosave=autosave,
            keep_runs=args.keep_runs, runs_db=args.runs_db.expanduser() if args.runs_db else None,
            run_name=args.run, resume=args.resume,
        )
    except CharMLPError as e:
        parser.error(str(e))
