"""Which steps train the model: torch's eager step, or the native ones where measured to be faster.

The native library is built in a background thread (core.native.build), then timed against the
eager step on the user's model shape (core.native.calibration); runs take it up only where it
won, and only on the training thread, at a job's start or a run's chunk boundary, never
mid-chunk. A model of another shape (`new`, a load) is measured at its first job. A session's
engine decisions thus sit at known steps (on_switch reports them, with the measurement), which is
what lets a recorded session replay exactly: a replay follows the recorded `engine` lines (use),
never a measurement of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from core import native
from core.model import Params
from core.native.calibration import Calibration, Shape, calibrate, shape_of

Model = Callable[[], tuple[Params, int]]  # the model now: its parameters and batch size
OnSwitch = Callable[[str, int, str], None]  # (engine, at step, why) on the training thread


class Engine:
    def __init__(self) -> None:
        self.kernel: native.NativeKernel | None = None  # the native steps, once built (and, to switch, measured)
        self._build: threading.Thread | None = None  # the thread building them
        self._failure = "compiling is off"  # why kernel is None once a build has ended, or none was started
        self._mode = "eager"  # "eager", "compiled" (a script's or user's word), or "auto": the faster, measured
        self._cache_dir: Path | None = None
        self._choices: dict[Shape, Calibration] = {}
        self._measuring = threading.Lock()  # one calibration at a time (the build thread's, the training thread's)
        self._announced: tuple[str, Shape] | None = None  # the decision on_switch last reported
        self._on_switch: OnSwitch = lambda engine, step, why: None

    def wanted(self, params: Params, batch_size: int) -> bool:
        """Whether runs use the native steps from their next chunk on: once built, where they can
        run, if a script said so or (automatic) the calibration found them faster on this shape."""
        if self.kernel is None or not native.can_run(params):
            return False
        return self._mode == "compiled" or (self._mode == "auto" and self.choice(params, batch_size).engine == "compiled")

    def choice(self, params: Params, batch_size: int) -> Calibration:
        """The calibration for this shape: known, cached on disk, or measured now (tens of ms)."""
        assert self.kernel is not None
        with self._measuring:
            shape = shape_of(params, batch_size)
            if shape not in self._choices:
                self._choices[shape] = calibrate(self.kernel, params, batch_size, self._cache_dir)
            return self._choices[shape]

    def start_compiling(self, model: Model, on_done: Callable[[str], None], cache_dir: Path | None, switch: bool,
                        on_switch: OnSwitch) -> threading.Thread:
        """Build in a background thread. With switch, the build thread measures both engines on the
        model and the training thread takes up the faster at its next job or chunk boundary
        (switch_if_due), calling on_switch; without, the steps wait for use("compiled"). on_done
        gets one line either way, from the build thread; a failure leaves the eager step in place."""

        def compile_in_background() -> None:
            try:
                kernel, how = native.build(cache_dir)
                measured = ""
                if switch:
                    params, batch_size = model()
                    if native.can_run(params):
                        with self._measuring:
                            found = calibrate(kernel, params, batch_size, cache_dir)
                            self._choices[shape_of(params, batch_size)] = found
                        measured = f"; {found.line()}"
            except Exception as e:  # BuildError, or anything the loader raises on an odd platform
                first_line = (str(e).strip().splitlines() or [""])[0][:200]
                self._failure = f"the build failed ({type(e).__name__}: {first_line})"
                on_done(f"compiling the training steps failed ({type(e).__name__}: {first_line}); staying on the eager path")
                return
            self.kernel = kernel  # last: the training thread switches only once the choice is made
            on_done(f"compiled training steps ready ({how}){measured}")

        self._cache_dir, self._on_switch = cache_dir, on_switch
        self._mode = "auto" if switch else self._mode
        self._build = threading.Thread(target=compile_in_background, name="charmlp-compile", daemon=True)
        self._build.start()
        return self._build

    def switch_if_due(self, step: int, params: Params, batch_size: int) -> None:
        """On the training thread, in automatic mode: report through on_switch the engine this
        shape's calibration chose, each time that decision is new (the build ended, another shape)."""
        if self._mode != "auto" or self.kernel is None:
            return
        shape = shape_of(params, batch_size)
        if native.can_run(params):
            found = self.choice(params, batch_size)
            engine, why = found.engine, found.line()
        else:
            engine, why = "eager", "the compiled steps need float32 parameters"
        if self._announced != (engine, shape):
            self._announced = engine, shape
            self._on_switch(engine, step, why)

    def use(self, engine: str, params: Params) -> str:
        """Run on "eager" or "compiled" steps from now on, as a script says (automatic switching ends).
        "compiled" waits for a build under way; where there is none to use, runs stay eager. Returns
        what runs use now, in words."""
        self._mode = engine
        if engine == "eager":
            return "eager (torch's step)"
        if self._build is not None:
            self._build.join()
        if self.kernel is None:
            return f"eager: the compiled steps are not available ({self._failure})"
        if not native.can_run(params):
            return "eager: the compiled steps need float32 parameters"
        return "compiled (native steps)"
