"""Every app action in the command palette (ctrl+p), with its key (tui.keys)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.keys import palette_rows


class TrainerCommands(Provider):
    def _commands(self) -> Iterator[tuple[str, Callable[[], Awaitable[bool]], str]]:
        for name, action, help_text in palette_rows():
            yield name, partial(self.app.run_action, action), help_text

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
