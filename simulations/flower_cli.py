"""The `flwr` command line as fedvlm drives it: JSON answers, a run submitted, followed to its end, explained."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from contract.run_config import RunConfig
from server.run_dir import RunDir
from simulations.processes import Service, Services

BIN = Path(sys.executable).parent  # flwr, flower-superlink, flower-supernode and flower-superexec beside python
ERROR_LINE = re.compile(r"^\w+(?:\.\w+)*(?:Error|Exception|Exhausted|Failed): ")


class FlowerError(RuntimeError):
    """Flower refused a command, or a run did not complete; the message is one line for the user."""


def flower_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of the Flower processes fedvlm starts: a private FLWR_HOME, Flower's executables on PATH,
    the app run in this environment (no runtime dependency installation) and no update check."""
    return {
        **os.environ,
        **(extra or {}),
        "FLWR_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_DISABLE_UPDATE_CHECK": "1",
    }


def write_connection(env: dict[str, str], name: str, address: str, root_certificates: Path | None = None) -> None:
    """FLWR_HOME/config.toml with one SuperLink connection, the default: TLS with root_certificates, else plain."""
    security = f'root-certificates = "{root_certificates}"' if root_certificates else "insecure = true"
    text = f'[superlink]\ndefault = "{name}"\n\n[superlink.{name}]\naddress = "{address}"\n{security}\n'
    (Path(env["FLWR_HOME"]) / "config.toml").write_text(text, encoding="utf-8")


def flwr_json(env: dict[str, str], *args: str) -> dict:
    """Run a `flwr` command with JSON output; its answer, or FlowerError with Flower's message."""
    result = subprocess.run(
        [str(BIN / "flwr"), *args, "--format", "json"], env=env, capture_output=True, text=True, timeout=120
    )
    try:
        answer = json.loads(result.stdout)
    except json.JSONDecodeError:
        answer = {"success": False, "error-message": (result.stderr.strip() or "no answer").splitlines()[-1]}
    if result.returncode != 0 or answer.get("success") is False:
        message = " ".join(str(answer.get("error-message", "failed")).split())
        raise FlowerError(f"flwr {' '.join(args[:2])}: {message}")
    return answer


def write_run_config(folder: Path, config: RunConfig, out_dir: Path, resume: bool) -> Path:
    """The run config of fedvlm's ServerApp, a TOML file in folder: config (written beside it), out-dir, resume."""
    config_file = folder / "fedvlm.toml"
    config_file.write_text(config.to_toml(), encoding="utf-8")
    run_config = folder / "run-config.toml"
    run_config.write_text(
        f'config = "{config_file}"\nout-dir = "{out_dir.resolve()}"\nresume = {str(resume).lower()}\n',
        encoding="utf-8",
    )
    return run_config


def submit(env: dict[str, str], app_dir: Path, connection: str, run_config: Path, *flwr_args: str) -> int:
    """`flwr run` the Flower app in app_dir with run_config (a TOML file) and flwr_args; the run id."""
    answer = flwr_json(env, "run", str(app_dir), connection, "--run-config", str(run_config), *flwr_args)
    return int(answer["run-id"])


def run_status(env: dict[str, str], connection: str, run_id: int) -> str:
    """The run's status as `flwr ls` gives it, e.g. 'running' or 'finished:completed'."""
    return str(flwr_json(env, "ls", connection, "--run-id", str(run_id))["runs"][0]["status"])


def last_error(log: str) -> str | None:
    """The last exception line of a ServerApp's log, if it has one."""
    errors = [line.strip() for line in log.splitlines() if ERROR_LINE.match(line.strip())]
    return errors[-1] if errors else None


def last_round(run_dir: RunDir) -> int:
    """The last round the run directory records (-1: none)."""
    return max((row["round"] for row in run_dir.read_metrics()), default=-1)


def _show_new_rows(run_dir: RunDir, shown: int, on_row: Callable[[dict], None] | None) -> int:
    """Give on_row each recorded row of a round after shown, in order; the last round shown."""
    for row in run_dir.read_metrics():
        if row["round"] > shown:
            if on_row is not None:
                on_row(row)
            shown = row["round"]
    return shown


def _show_new_lines(stream: Service, on_log: Callable[[str], None] | None) -> None:
    for line in stream.new_lines():
        if on_log is not None:
            on_log(line)


def follow_run(
    env: dict[str, str],
    connection: str,
    run_id: int,
    run_dir: RunDir,
    services: Services,
    timeout_s: float = math.inf,
    on_row: Callable[[dict], None] | None = None,
    on_log: Callable[[str], None] | None = None,
) -> None:
    """Wait for the run to complete (on_row sees the row of each round after the last one recorded now, on_log each
    line of the run's log); FlowerError, with the ServerApp's error, if it ends otherwise or outlasts timeout_s.

    `flwr log --stream` waits for the run's end (a `flwr ls` every second would cost a core); its output, the
    ServerApp's log, goes to the services' log folder."""
    stream = services.start(f"run-{run_id}", [str(BIN / "flwr"), "log", str(run_id), connection, "--stream"])
    deadline, shown = time.monotonic() + timeout_s, last_round(run_dir)
    while stream.process.poll() is None and time.monotonic() < deadline:
        services.note_descendants()
        shown = _show_new_rows(run_dir, shown, on_row)
        _show_new_lines(stream, on_log)
        time.sleep(0.5)
    services.stop(stream)
    _show_new_rows(run_dir, shown, on_row)
    _show_new_lines(stream, on_log)
    status = run_status(env, connection, run_id)
    while not status.startswith("finished") and time.monotonic() < deadline:  # the stream ended before the run
        time.sleep(5)
        shown = _show_new_rows(run_dir, shown, on_row)
        status = run_status(env, connection, run_id)
    if status == "finished:completed":
        return
    if not status.startswith("finished"):
        raise FlowerError(f"run {run_id} did not finish within {timeout_s:.0f} s")
    why = last_error(stream.log_text()) or "no exception in the ServerApp's log"
    raise FlowerError(f"run {run_id} ended {status}: {why}")
