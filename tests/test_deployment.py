"""The same ServerApp and ClientApp on Flower's Deployment Engine: a local SuperLink, two SuperNodes, `flwr run`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simulations.synth import write_scenario

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def test_deployment_engine_runs_the_apps_on_node_data_paths(tmp_path, tiny_model_dir):
    data = write_scenario("hospital", 2, tmp_path / "data", records_per_site=24, eval_records=16)
    config = tmp_path / "fedvlm.toml"
    config.write_text(
        f'[model]\npreset = "tiny-test"\n[data]\nroot = "{data}"\n[train]\nlocal_steps = 3\nbatch_size = 4\n'
        "[federation]\nrounds = 2\nsites = 2\n"
    )
    link_port = _free_port()
    flwr_home = tmp_path / "flwr-home"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text(
        f'[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = "127.0.0.1:{link_port}"\ninsecure = true\n'
    )
    env = {**os.environ, "FLWR_HOME": str(flwr_home), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(name: str, *command: str) -> subprocess.Popen:
        with (logs / f"{name}.log").open("w") as log:
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    services = []
    try:
        services.append(
            start(
                "superlink",
                str(BIN / "flower-superlink"),
                "--insecure",
                "--port",
                str(link_port),
                "--disable-runtime-dependency-installation",
            )
        )
        _wait_for_port(link_port)
        for site in (0, 1):
            services.append(
                start(
                    f"supernode-{site}",
                    str(BIN / "flower-supernode"),
                    "--insecure",
                    "--superlink",
                    f"127.0.0.1:{link_port}",
                    "--port",
                    str(_free_port()),
                    "--node-config",
                    f"data-path='{data / f'site-{site}'}'",
                )
            )
        out = tmp_path / "run"
        result = subprocess.run(
            [
                str(BIN / "flwr"),
                "run",
                str(REPO),
                "local",
                "--stream",
                "--run-config",
                f"out-dir='{out}' config='{config}'",
            ],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        assert [row["round"] for row in rows] == [0, 1, 2]
        assert [(row["participants"], row["accepted"]) for row in rows[1:]] == [(2, True), (2, True)]
        assert rows[2]["train"]["counts"]["records-kept"] == 48
    finally:
        for service in services:
            os.killpg(service.pid, signal.SIGTERM)
        for service in services:
            try:
                service.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(service.pid, signal.SIGKILL)
