"""The errors core raises for bad input. Each message is one line a user can act on."""


class CharMLPError(Exception):
    """Base class: anything the user can fix (a file, a flag, a script, a checkpoint)."""


class DataError(CharMLPError):
    """A words file that cannot be used: missing, empty, binary, not UTF-8, bad character."""


class ConfigError(CharMLPError):
    """A model, data or training setting outside its valid range."""


class ScriptError(CharMLPError):
    """A headless script action that cannot be parsed or has a bad argument."""


class CheckpointError(CharMLPError):
    """A checkpoint that cannot be read, does not fit the data, or would be unsafe to write."""


class StoreError(CharMLPError):
    """The run store cannot be opened, read or written: corrupt, locked too long, read-only, newer."""


class StoreBusyError(StoreError):
    """The run store stayed locked by another process past the wait: it may be free again later."""


class SearchError(CharMLPError):
    """A search that cannot start or go on: a bad or unreachable storage URL, a study not found."""
