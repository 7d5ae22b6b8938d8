"""`charmlp-tui`: parse and check the flags, then start the app or the headless runner."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from core.config import LECTURE_SEED, DataConfig, ModelConfig, TrainConfig
from core.errors import CharMLPError
from core.actions import VERBS

EXIT_USAGE = 2  # bad flags, bad input files, bad scripts
EXIT_INTERRUPTED = 130  # a second Ctrl+C; a first signal N exits with 128 + N as a shell reports it


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


def _split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions train,dev,test, got {text!r}")
    return parts  # type: ignore[return-value]


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag gets one line, not the whole usage block above it."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    verbs = "\n".join(f"  {usage:<24} {text}" for usage, text in VERBS.values())
    parser = OneLineParser(
        prog="charmlp-tui",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train the character-level MLP of makemore part 2 and find its learning rate, "
                    "interactively in the terminal or headless from a script.",
        epilog=f"script actions (--script, separated by ';'):\n{verbs}\n\n"
               "example:\n  charmlp-tui --headless --script \"sweep; lr -1; run 20000; decay; run 10000; eval; sample 10\"",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--data", type=Path, metavar="PATH",
                      help="UTF-8 text file, one word per line (default: the built-in 32,000 US SSA names)")
    data.add_argument("--split", type=_split, default=(0.8, 0.1, 0.1), metavar="TRAIN,DEV,TEST",
                      help="fractions of the shuffled words per split (default 0.8,0.1,0.1; 1,0,0 trains on all)")
    model = parser.add_argument_group("model")
    model.add_argument("--block-size", type=int, default=3, metavar="N", help="characters of context (default 3)")
    model.add_argument("--emb-dim", type=int, default=2, metavar="N", help="embedding width per character (default 2)")
    model.add_argument("--hidden", type=int, default=100, metavar="N", help="tanh hidden units (default 100)")
    model.add_argument("--seed", type=int, default=LECTURE_SEED, metavar="N",
                       help=f"seed of the initial parameters and minibatches (default {LECTURE_SEED}, the lecture's)")
    train = parser.add_argument_group("training")
    train.add_argument("--batch-size", type=int, default=32, metavar="N", help="examples per minibatch (default 32)")
    train.add_argument("--lr-exp", type=float, default=-1.0, metavar="X", help="learning rate 10**X (default -1, lr 0.1)")
    train.add_argument("--threads", type=int, default=1, metavar="N",
                       help="torch CPU threads (default 1: at batch 32 a second thread only adds hand-off cost)")
    train.add_argument("--no-compile", dest="compile", action="store_false",
                       help="never build the native (C++) training steps; by default the app builds them in the "
                            "background with the machine's C++ compiler (~1 s the first time, cached in "
                            "~/.cache/charmlp-tui) and switches to them (~3x the steps/s) when ready; headless builds "
                            "them first for scripts of 50k+ steps")
    run = parser.add_argument_group("running")
    run.add_argument("--load", type=Path, metavar="CKPT", help="start from a checkpoint (its model shape wins over the model flags)")
    run.add_argument("--headless", action="store_true", help="no UI: run --script, print a summary, exit")
    run.add_argument("--script", metavar="ACTIONS", help="actions to run, e.g. \"run 1000; eval\" (see below)")
    run.add_argument("--script-file", type=Path, metavar="FILE", help="read the actions from a file (one per line or ';')")
    run.add_argument("--json", action="store_true", help="with --headless: end stdout with one JSON summary line")
    run.add_argument("--force", action="store_true", help="let 'save' overwrite an existing file")
    run.add_argument("--autosave", type=Path, metavar="CKPT",
                     help="save the model to CKPT (atomically, overwriting it) whenever the app or a headless run "
                          "ends: on quit, at the end of the script, and when stopped by Ctrl+C, SIGTERM or SIGHUP")
    run.add_argument("--eval-every", type=float, default=1.0, metavar="SECONDS",
                     help="in the app: full train/dev loss during runs at most this often (default 1; 0 = never)")
    return parser


def parse_settings(argv: list[str] | None) -> Settings:
    """Parse and validate; exits with status 2 and a one-line message on any bad flag."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        script = args.script
        if args.script_file is not None:
            if script is not None:
                parser.error("give --script or --script-file, not both")
            try:
                script = args.script_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                parser.error(f"--script-file {args.script_file}: cannot be read ({getattr(e, 'strerror', None) or e})")
        if args.headless and script is None:
            parser.error("--headless needs --script or --script-file")
        if args.json and not args.headless:
            parser.error("--json needs --headless")
        if not 0 <= args.eval_every <= 3600:
            parser.error(f"--eval-every must be from 0 to 3600 seconds, got {args.eval_every}")
        if not 1 <= args.threads <= 256:
            parser.error(f"--threads must be from 1 to 256, got {args.threads}")
        if args.autosave is not None:
            autosave = args.autosave.expanduser()
            if autosave.is_dir():
                parser.error(f"--autosave {args.autosave}: is a directory; give a file name such as {autosave / 'model.pt'}")
            if not autosave.parent.is_dir():
                parser.error(f"--autosave {args.autosave}: the folder {autosave.parent} does not exist")
        return Settings(
            data=DataConfig(path=args.data, split=args.split),
            model=ModelConfig(block_size=args.block_size, emb_dim=args.emb_dim, hidden=args.hidden, seed=args.seed),
            train=TrainConfig(batch_size=args.batch_size, lr_exponent=args.lr_exp),
            load=args.load, headless=args.headless, script=script, json=args.json, force=args.force, threads=args.threads,
            eval_every_s=args.eval_every, compile=args.compile,
            autosave=args.autosave.expanduser() if args.autosave is not None else None,
        )
    except CharMLPError as e:
        parser.error(str(e))


def main(argv: list[str] | None = None) -> int:
    settings = parse_settings(argv)
    if settings.script is not None:  # refuse a bad script before anything is loaded
        from core.actions import parse_script

        try:
            actions = parse_script(settings.script)
        except CharMLPError as e:
            print(f"charmlp-tui: error: {e}", file=sys.stderr)
            return EXIT_USAGE
    else:
        actions = []
    if settings.headless:
        import torch

        from tui.headless import run_headless

        torch.set_num_threads(settings.threads)
        return run_headless(settings, actions)
    from tui.app import CharMLPApp  # torch loads on the app's worker thread, behind the first frame

    app = CharMLPApp(settings, actions)
    app.run()
    if app.worker.exit_note:  # e.g. where the autosave went: shown once the terminal is back
        print(f"charmlp-tui: {app.worker.exit_note}", file=sys.stderr)
    return app.return_code or 0
