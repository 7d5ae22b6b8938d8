"""The action language's machinery: how a verb is declared, parsed, checked and executed.

    sweep; lr -1; run 20000; decay; run 10000; eval; sample 10

Actions are separated by ';' or new lines; '#' starts a comment; words are split as a POSIX
shell splits them, so `load "my model.pt"` keeps its space. A script is parsed and checked whole
before anything runs, so a typo in the last action costs nothing. The verbs
themselves are declared once, in core.verbs; everything else (the parser here, the command
line's --help, the app's help and keys, the worker, the README's table) is derived from there.
Free of torch, so the command line can check a script before loading anything.
"""

from __future__ import annotations

import shlex

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.errors import CharMLPError, ConfigError, ScriptError
from core.jobs import ProgressFn, RunResult, StopFn, ignore_progress, never_stop
from core.ranges import FloatRange, IntRange, Name

if TYPE_CHECKING:
    from core.grid import GridResult
    from core.keeping import RunKeeper
    from core.search_view import SearchView
    from core.sweep import SweepResult
    from core.trainer import Trainer

Value = int | float | str


class _NotUsage(ScriptError):
    """A word that is not one of an argument's choices: the answer is the verb's usage."""


@dataclass(frozen=True)
class Arg:
    """One argument of a verb: how usage names it, the keyword it is passed as, how it is read."""

    name: str  # as usage shows it: "N", "EXP", "PATH"
    key: str  # the keyword the executor gets
    kind: IntRange | FloatRange | Name | tuple[str, ...] | type[str]  # a range, a name, a choice of words, any word
    default: Value | None = None  # for an optional argument: the value when it is left out

    @property
    def word(self) -> str:
        """How a keyword argument is written: `init-seed=N` for the key init_seed."""
        return self.key.replace("_", "-")

    def parse(self, text: str, what: str | None = None) -> Value:
        if isinstance(self.kind, (IntRange, FloatRange, Name)):
            return self.kind.parse(text, what or self.name)
        if isinstance(self.kind, tuple):
            if text.lower() not in self.kind:
                raise _NotUsage()
            return text.lower()
        return text


@dataclass(frozen=True)
class Action:
    """A parsed action: the verb and the values given (defaults are not filled in: the script
    records what was written). options are (key, value) pairs of `--name VALUE` arguments;
    keywords (key, value) pairs of `name=VALUE` ones, in the verb's order, whatever the written one."""

    verb: str
    args: tuple[Value, ...] = ()
    options: tuple[tuple[str, Value], ...] = ()
    keywords: tuple[tuple[str, Value], ...] = ()

    def __str__(self) -> str:
        # 10 digits: an LR exponent is kept to 6 decimals, and a recorded session must replay it exactly
        words = [self.verb, *map(_word, self.args)]
        words += [f"{key.replace('_', '-')}={_word(value)}" for key, value in self.keywords]
        words += [f"--{key} {_word(value)}" for key, value in self.options]
        return " ".join(words)


def _word(value: Value) -> str:
    return f"{value:.10g}" if isinstance(value, float) else shlex.quote(value) if isinstance(value, str) else str(value)


def _pieces(text: str) -> Iterator[list[str]]:
    """The words of each action. Words split as a POSIX shell splits them (quotes keep spaces, ';'
    and '#' in a word: `load "my model.pt"`); ';' and line ends separate actions; '#' outside
    quotes starts a comment."""
    for number, line in enumerate(text.splitlines(), start=1):  # \n, \r\n and \r alike
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";")
        lexer.whitespace_split, lexer.commenters = True, "#"
        try:
            tokens = list(lexer)
        except ValueError as e:  # an unclosed quote
            raise ScriptError(f"line {number} {line.strip()[:60]!r}: {str(e).lower()}") from None
        words: list[str] = []
        for token in tokens:
            if token.strip(";"):
                words.append(token)
            elif words:  # a run of ';' ends the action
                yield words
                words = []
        if words:
            yield words


@dataclass
class Outcome:
    """What an action did: a one-line summary and whatever it produced."""

    summary: str
    run: RunResult | None = None
    sweep: SweepResult | None = None
    grid: GridResult | None = None
    search: SearchView | None = None
    samples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """How an action is run: where its progress goes, what stops it, what it may overwrite."""

    on_progress: ProgressFn = ignore_progress  # at every chunk boundary of a long action
    should_stop: StopFn = never_stop  # checked there too
    force: bool = False  # `save` may overwrite a file this trainer did not write
    keeper: RunKeeper | None = None  # `tune` keeps each trial as a run through it
    on_search: Callable[[SearchView], None] = lambda view: None  # `tune`: the study after each rung and trial


Executor = Callable[["Trainer", Mapping[str, Any], Job], Outcome]


@dataclass(frozen=True)
class Verb:
    name: str
    help: str  # one line, for --help, the app's help screen and the README ('{defaults}': see __post_init__)
    execute: Executor  # gets every argument by key, defaults filled in
    args: tuple[Arg, ...] = ()
    optional: int = 0  # how many trailing args may be left out: all of them together, or none
    options: tuple[Arg, ...] = ()  # given as `--key VALUE`, after the others
    keywords: tuple[Arg, ...] = ()  # given as `key=VALUE` (init_seed as init-seed=), each optional, any order
    long: bool = False  # a job: reports progress, can be stopped (escape, Ctrl+C)
    mid_run: bool = False  # cheap enough to apply at a running job's chunk boundary (the app's decay mid-run)
    replayed: bool = True  # False: a session script keeps it as a comment (a replay must not write files)
    check: Callable[[Mapping[str, Any]], None] = lambda values: None  # across arguments, e.g. START < END

    def __post_init__(self) -> None:
        """'{defaults}' in the help becomes the optional arguments' defaults: written once, in the Args."""
        optional = self.args[len(self.args) - self.optional :]
        defaults = " ".join(_word(a.default) for a in optional if a.default is not None)
        object.__setattr__(self, "help", self.help.replace("{defaults}", defaults))

    @property
    def usage(self) -> str:
        required = [a.name for a in self.args[: len(self.args) - self.optional]]
        optional = [a.name for a in self.args[len(self.args) - self.optional :]]
        words = [self.name, *required] + ([f"[{' '.join(optional)}]"] if optional else [])
        words += [f"[{k.word}={k.name}]" for k in self.keywords]
        return " ".join(words + [f"[--{o.key} {o.name}]" for o in self.options])

    def values(self, action: Action) -> dict[str, Any]:
        """The action's arguments by key, with the defaults of those left out."""
        values = {a.key: a.default for a in (*self.args, *self.options, *self.keywords)}
        values.update({a.key: v for a, v in zip(self.args, action.args)})
        values.update(action.options)
        values.update(action.keywords)
        return values


class Registry:
    """The verbs of the language, in the order help lists them."""

    def __init__(self, verbs: list[Verb]) -> None:
        self._verbs = {v.name: v for v in verbs}

    def __getitem__(self, name: str) -> Verb:
        return self._verbs[name]

    def __iter__(self) -> Iterator[Verb]:
        return iter(self._verbs.values())

    def parse_action(self, text: str) -> Action:
        """One action, e.g. `load "my model.pt"`."""
        [action] = self.parse_script(text)
        return action

    def _parse(self, words: list[str], where: str) -> Action:
        name, given = words[0].lower(), words[1:]
        where = f"{where} {' '.join(words)!r}"
        if name not in self._verbs:
            raise ScriptError(f"{where}: unknown action {name!r}; actions are {', '.join(self._verbs)}")
        verb = self._verbs[name]
        try:
            options, keywords = self._options(verb, given), self._keywords(verb, given)
            if len(given) not in (len(verb.args), len(verb.args) - verb.optional):
                raise _NotUsage()
            action = Action(name, tuple(a.parse(text) for a, text in zip(verb.args, given)), options, keywords)
            verb.check(verb.values(action))
        except _NotUsage:
            raise ScriptError(f"{where}: expected '{verb.usage}'") from None
        except ScriptError:
            raise
        except CharMLPError as e:
            raise ScriptError(f"{where}: {e}") from None
        return action

    def _options(self, verb: Verb, given: list[str]) -> tuple[tuple[str, Value], ...]:
        """Take `--key VALUE` pairs out of `given` (in place), parsed."""
        options = []
        for option in verb.options:
            flag = f"--{option.key}"
            if flag in given:
                at = given.index(flag)
                if at + 1 >= len(given):
                    raise _NotUsage()
                options.append((option.key, option.parse(given[at + 1])))
                del given[at : at + 2]
        return tuple(options)

    def _keywords(self, verb: Verb, given: list[str]) -> tuple[tuple[str, Value], ...]:
        """Take the `key=VALUE` words out of `given` (in place), parsed, in the verb's order. Only
        for a verb that has keywords: elsewhere a word with '=' is an ordinary word (a path)."""
        if not verb.keywords:
            return ()
        found: dict[str, Value] = {}
        for text in [w for w in given if "=" in w]:
            word, value = text.split("=", 1)
            arg = next((k for k in verb.keywords if k.word == word.lower()), None)
            if arg is None:
                raise ConfigError(f"unknown keyword {word!r}; {verb.name} takes "
                                  f"{', '.join(k.word + '=' for k in verb.keywords)}")
            if arg.key in found:
                raise ConfigError(f"{arg.word}= given twice")
            found[arg.key] = arg.parse(value, arg.word)
            given.remove(text)
        return tuple((k.key, found[k.key]) for k in verb.keywords if k.key in found)

    def parse_script(self, text: str) -> list[Action]:
        """Every action of a script, or ScriptError naming the first bad one (by number)."""
        actions: list[Action] = []
        for words in _pieces(text):
            actions.append(self._parse(words, f"action {len(actions) + 1}"))
        if not actions:
            raise ScriptError("the script has no actions")
        return actions

    def execute(self, trainer: Trainer, action: Action, job: Job = Job()) -> Outcome:
        verb = self._verbs.get(action.verb)
        if verb is None:
            raise ScriptError(f"unknown action {action.verb!r}")
        return verb.execute(trainer, verb.values(action), job)
