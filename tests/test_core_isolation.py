"""core is a plain library: importing and using it must not pull in any UI package."""

import subprocess
import sys

from conftest import REPO

PROGRAM = """
import sys
import core
from core.config import DataConfig
from core.dataset import make_dataset
from core.words import load_words
trainer = core.Trainer(make_dataset(load_words(None)[:200], 3, DataConfig()))
trainer.run(50); trainer.sweep(-3, 0, 20); trainer.evaluate(); trainer.sample(2)
loaded = sorted(m for m in ("textual", "rich", "plotext") if m in sys.modules)
print("UI:" + ",".join(loaded))
"""


def test_core_imports_no_ui_package():
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "UI:"
