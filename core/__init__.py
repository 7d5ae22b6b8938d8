"""charmlp core: the character-level MLP of makemore part 2 as a plain, fast library.

No UI imports here (textual, rich, plotext): tests/test_core_isolation.py checks it.
"""

from core.config import DataConfig, ModelConfig, TrainConfig
from core.errors import CharMLPError, CheckpointError, ConfigError, DataError, ScriptError
from core.script import Action, Outcome, execute, parse_script
from core.session import open_trainer
from core.trainer import Divergence, Progress, RunResult, Trainer

__all__ = [
    "Action", "CharMLPError", "CheckpointError", "ConfigError", "DataConfig", "DataError", "Divergence",
    "ModelConfig", "Outcome", "Progress", "RunResult", "ScriptError", "TrainConfig", "Trainer", "execute",
    "open_trainer", "parse_script",
]
