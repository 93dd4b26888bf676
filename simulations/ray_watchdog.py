"""A watchdog beside a simulation: when the run's process dies, even by SIGKILL, it ends every process of the
run's private Ray instance (GCS, raylet, its agents, workers) and removes Ray's folder.

Ray's agents are the raylet's children and outlive a killed driver for a while; the watchdog, in its own
session, finds the instance by its private temp folder named in the raylet's and GCS's command lines.
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


def end_ray(ray_tmp: Path) -> None:
    """SIGKILL the Ray instance living in ray_tmp (descendants collected first) and remove the folder."""
    for process in ray_processes(ray_tmp):
        with suppress(psutil.Error):
            process.kill()
    shutil.rmtree(ray_tmp, ignore_errors=True)


def watch(run_pid: int, ray_tmp: Path) -> None:
    """Wait for the run's process to end, then end its Ray instance."""
    with suppress(psutil.NoSuchProcess):
        run = psutil.Process(run_pid)
        while run.is_running() and run.status() != psutil.STATUS_ZOMBIE:
            time.sleep(POLL_SECONDS)
    end_ray(ray_tmp)


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
