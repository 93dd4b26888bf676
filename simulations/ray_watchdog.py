"""A watchdog beside a simulation: when the run's process dies, even by SIGKILL, it ends every process of the
run's private Ray instance (GCS, raylet, its agents, workers) and removes Ray's folder.

Ray's agents are the raylet's children and outlive a killed driver for a while, and once the raylet is gone
nothing in their command lines names the run. So the watchdog, in its own session, keeps a list of the run's
descendants while the run lives, and adds whatever still names the run's private Ray folder at the end.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

POLL_SECONDS = 0.5


def ray_processes(ray_tmp: Path) -> list[psutil.Process]:
    """Processes whose command line names ray_tmp, and all their descendants."""
    marker = str(ray_tmp)
    found: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline"]):
        with suppress(psutil.Error):
            if any(marker in part for part in process.info["cmdline"] or ()):
                found[process.pid] = process
                found.update({child.pid: child for child in process.children(recursive=True)})
    return list(found.values())


def watch(run_pid: int, ray_tmp: Path) -> None:
    """Wait for the run's process to end, then SIGKILL every process it left and remove Ray's folder."""
    me = psutil.Process().pid
    left: dict[int, psutil.Process] = {}
    with suppress(psutil.NoSuchProcess):
        run = psutil.Process(run_pid)
        while run.is_running() and run.status() != psutil.STATUS_ZOMBIE:
            with suppress(psutil.Error):
                left.update({child.pid: child for child in run.children(recursive=True) if child.pid != me})
            time.sleep(POLL_SECONDS)
    left.update({process.pid: process for process in ray_processes(ray_tmp)})
    for process in left.values():
        with suppress(psutil.Error):
            process.kill()  # psutil checks the process is still the one it saw (no PID reuse)
    shutil.rmtree(ray_tmp, ignore_errors=True)


@contextmanager
def watched(ray_tmp: Path) -> Iterator[None]:
    """Within this block, a watchdog ends the block's Ray instance if this process dies."""
    command = [sys.executable, "-m", "simulations.ray_watchdog", str(psutil.Process().pid), str(ray_tmp)]
    watchdog = subprocess.Popen(command, start_new_session=True, stdin=subprocess.DEVNULL)
    try:
        yield
    finally:
        watchdog.kill()
        watchdog.wait()


if __name__ == "__main__":
    watch(int(sys.argv[1]), Path(sys.argv[2]))
