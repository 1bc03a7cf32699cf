"""Graceful stops: the first Ctrl-C or SIGTERM asks training to stop after the current
step (so a checkpoint can be written); a second Ctrl-C exits at once."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class StopSignal:
    signum: int | None = None  # the signal that asked for the stop, if any

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or 0)


@contextmanager
def graceful_stop(request_stop: Callable[[], None]) -> Iterator[StopSignal]:
    """Route SIGINT and SIGTERM to ``request_stop`` while the block runs."""
    received = StopSignal()
    if threading.current_thread() is not threading.main_thread():
        yield received  # signal handlers can only be set from the main thread
        return

    def handle(signum: int, frame: object) -> None:
        if received.signum is not None:
            # Every file is written atomically, so quitting now cannot corrupt the run.
            raise KeyboardInterrupt
        received.signum = signum
        print(
            f"\nrnnlab: {signal.Signals(signum).name}: stopping after this step and saving "
            f"(press Ctrl-C again to quit at once)",
            file=sys.stderr,
        )
        request_stop()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
