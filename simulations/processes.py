"""The processes a local federation starts: each in its own session, logged to a file, all stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Service:
    """A started process, its log file, and every descendant seen while it ran."""

    name: str
    process: subprocess.Popen
    log: Path
    descendants: set[int] = field(default_factory=set)
    read_to: int = 0  # bytes of the log new_lines has returned

    def note_descendants(self) -> None:
        """Remember the process's current children (Flower's SuperExec, app processes) to stop them too."""
        with suppress(psutil.Error):
            self.descendants.update(child.pid for child in psutil.Process(self.process.pid).children(recursive=True))

    def log_text(self) -> str:
        """The process's output so far."""
        return self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""

    def new_lines(self) -> list[str]:
        """The complete lines of its output written since the last call."""
        if not self.log.exists():
            return []
        with self.log.open("rb") as source:
            source.seek(self.read_to)
            written = source.read()
        complete = written[: written.rfind(b"\n") + 1]
        self.read_to += len(complete)
        return complete.decode("utf-8", errors="replace").splitlines()


@dataclass
class Services:
    """Starts processes with one environment and log folder; `stop_all` ends each one it started, by PID."""

    env: dict[str, str]
    logs: Path
    started: list[Service] = field(default_factory=list)

    def start(self, name: str, command: list[str]) -> Service:
        """Start command in its own session, output to logs/<name>.log."""
        log = self.logs / f"{name}.log"
        with log.open("w") as sink:
            process = subprocess.Popen(
                command, env=self.env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
            )
        service = Service(name, process, log)
        self.started.append(service)
        return service

    def note_descendants(self) -> None:
        """Remember every service's current descendants."""
        for service in self.started:
            service.note_descendants()

    def stop(self, service: Service, grace_s: float = 15) -> None:
        """SIGTERM the service's session, then SIGKILL whatever of it or its descendants is left after grace_s."""
        service.note_descendants()
        with suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGTERM)
        try:
            service.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGKILL)
            service.process.wait()
        _kill_remaining(service.descendants, grace_s)

    def kill(self, service: Service) -> None:
        """SIGKILL the service's session and every descendant of it at once, as a crash would end them."""
        service.note_descendants()
        with suppress(ProcessLookupError):
            os.killpg(service.process.pid, signal.SIGKILL)
        service.process.wait()
        _kill_remaining(service.descendants, grace_s=0)

    def stop_all(self) -> None:
        """Stop every service, the last started first."""
        self.note_descendants()
        for service in reversed(self.started):
            self.stop(service)


def _kill_remaining(pids: set[int], grace_s: float) -> None:
    """SIGTERM the processes of pids still alive, SIGKILL them after grace_s."""
    alive = []
    for pid in pids:
        with suppress(psutil.Error):
            process = psutil.Process(pid)
            process.terminate()
            alive.append(process)
    _, left = psutil.wait_procs(alive, timeout=grace_s)
    for process in left:
        with suppress(psutil.Error):
            process.kill()


def wait_for_port(host: str, port: int, timeout_s: float, service: Service) -> None:
    """Return once host:port accepts connections; raise if the service exits first or timeout_s passes."""

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with code {service.process.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{service.name}: nothing listens on {host}:{port} after {timeout_s:.0f} s")


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
