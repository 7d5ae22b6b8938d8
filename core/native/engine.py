"""Which steps train the model: torch's eager step, or the native ones once built and switched to.

The native library is built in a background thread (core.native.build). Runs take it up only on
the training thread, at a job's start or a run's chunk boundary, never mid-chunk: a session's
engine changes then sit at known steps (on_switch reports them), which is what lets a recorded
session replay exactly.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from core import native


class Engine:
    def __init__(self) -> None:
        self.kernel: native.NativeKernel | None = None  # the native steps, once a background thread has built them
        self._build: threading.Thread | None = None  # that thread
        self._failure = "compiling is off"  # why kernel is None once a build has ended, or none was started
        self._on = False  # runs use the kernel (where it suits the model)
        self._switch_when_built = False
        self._on_switch: Callable[[int], None] = lambda step: None

    def wanted(self) -> bool:
        """Whether runs use the native steps from their next chunk on (once built and switched to,
        or due to be); the Trainer adds whether they suit its model."""
        return (self._on or self._switch_when_built) and self.kernel is not None

    def start_compiling(self, suits: Callable[[], bool], on_done: Callable[[str], None], cache_dir: Path | None,
                        switch: bool, on_switch: Callable[[int], None]) -> threading.Thread:
        """Build in a background thread. With switch, the training thread takes the native steps up
        at its next job or chunk boundary (switch_if_due) and calls on_switch with the step; without,
        they wait for use("compiled"). on_done gets one line either way, from the build thread; a
        failure leaves the eager step in place. suits says whether they pay on the model now."""

        def compile_in_background() -> None:
            try:
                kernel, how = native.build(cache_dir)
            except Exception as e:  # BuildError, or anything the loader raises on an odd platform
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                self._failure = f"the build failed ({type(e).__name__}: {first_line})"
                on_done(f"compiling the training steps failed ({type(e).__name__}: {first_line}); staying on the eager path")
                return
            self.kernel = kernel
            if not suits():
                on_done(f"compiled training steps ready ({how}), but this model is big enough for torch's own "
                        "matrix products to be as fast: runs stay on the eager step")
            elif switch:
                on_done(f"compiled training steps ready ({how}); runs use them from the next chunk")
            else:
                on_done(f"compiled training steps ready ({how})")

        self._switch_when_built, self._on_switch = switch, on_switch
        self._build = threading.Thread(target=compile_in_background, name="charmlp-compile", daemon=True)
        self._build.start()
        return self._build

    def switch_if_due(self, step: int) -> None:
        """On the training thread: take up the native steps if a build asked to switch has finished."""
        if self._switch_when_built and self.kernel is not None:
            self._switch_when_built, self._on = False, True
            self._on_switch(step)

    def use(self, engine: str, suits: Callable[[], bool]) -> str:
        """Run on "eager" or "compiled" steps from now on, as a script says (automatic switching ends).
        "compiled" waits for a build under way; where there is none to use, runs stay eager. Returns
        what runs use now, in words."""
        self._switch_when_built = False
        if engine == "eager":
            self._on = False
            return "eager (torch's step)"
        if self._build is not None:
            self._build.join()
        if self.kernel is None:
            return f"eager: the compiled steps are not available ({self._failure})"
        self._on = True
        if not suits():
            return "eager: the compiled steps do not suit this model (too big to gain from them)"
        return "compiled (native steps)"
