"""charmlp core: the character-level MLP of makemore part 2 as a plain, fast library.

No UI imports here (textual, rich, plotext): tests/test_core_isolation.py checks it.
Names are imported on first use, so `import core.config` stays free of torch (a fast --help).
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Action": "core.actions", "Job": "core.actions", "Outcome": "core.actions",
    "VERBS": "core.verbs", "execute": "core.verbs", "parse_script": "core.verbs",
    "DataConfig": "core.config", "ModelConfig": "core.config", "TrainConfig": "core.config",
    "CharMLPError": "core.errors", "CheckpointError": "core.errors", "ConfigError": "core.errors",
    "DataError": "core.errors", "ScriptError": "core.errors",
    "open_trainer": "core.session",
    "Divergence": "core.jobs", "Progress": "core.jobs", "RunResult": "core.jobs", "Trainer": "core.trainer",
    "TrainingState": "core.state",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
