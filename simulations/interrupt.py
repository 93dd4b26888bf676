"""Ctrl-C (SIGINT) or SIGTERM during a simulation: stop at once, as cleanly as a crash the checkpoints survive.

The run's state on disk is written so that a SIGKILL at any point resumes exactly; an interrupt therefore
SIGKILLs every process this run started (the SuperLink, the ServerApp, Ray and its workers), prints one line and
exits 128 + signal number. `fedvlm simulate --resume` then continues as after a SIGKILL.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import psutil


def _end_descendants() -> None:
    """SIGKILL every process this one started, and theirs (the SuperLink, its SuperExec, the ServerApp, Ray)."""
    for child in psutil.Process().children(recursive=True):
        with suppress(psutil.Error):
            child.kill()


@contextmanager
def stopping_on_interrupt(out_dir: Path, scratch: Path) -> Iterator[None]:
    """Within this block, SIGINT and SIGTERM end the run at once (see the module's docstring)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        print(
            f"fedvlm: interrupted; stopped without recording the round in progress "
            f"(continue with: fedvlm simulate --out {out_dir} --resume)",
            file=sys.stderr,
            flush=True,
        )
        _end_descendants()
        shutil.rmtree(scratch, ignore_errors=True)
        os._exit(128 + signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
