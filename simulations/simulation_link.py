"""A SuperLink in simulation mode on loopback, private to one run: it takes `flwr run` of fedvlm's app, and it and
every process it started are stopped when the run ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from contract.run_config import RunConfig
from server.run_dir import RunDir
from simulations.flower_cli import BIN, FlowerError, flower_env, follow_run, submit, write_connection, write_run_config
from simulations.processes import Services, free_port, wait_for_port

CONNECTION = "fedvlm-simulation"


class SimulationLink:
    """Context manager: a `flower-superlink --simulation` with its FLWR_HOME, logs and run config in workdir."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        home = workdir / "flwr-home"
        home.mkdir()
        (workdir / "logs").mkdir()
        self.services = Services(flower_env(home, env), workdir / "logs")

    def __enter__(self) -> SimulationLink:
        port = free_port()
        command = [str(BIN / "flower-superlink"), "--insecure", "--simulation", "--isolation", "subprocess"]
        link = self.services.start("superlink", [*command, "--host", "127.0.0.1", "--port", str(port)])
        try:
            wait_for_port("127.0.0.1", port, 60, link)
        except (RuntimeError, TimeoutError) as error:
            self.services.stop_all()
            raise FlowerError(f"the simulation SuperLink did not start: {error}") from None
        write_connection(self.services.env, CONNECTION, f"127.0.0.1:{port}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.services.stop_all()

    def run(
        self,
        app_dir: Path,
        config: RunConfig,
        out_dir: Path,
        resume: bool,
        federation_config: str,
        on_row: Callable[[dict], None],
        on_log: Callable[[str], None],
    ) -> None:
        """`flwr run` the app with config into out_dir and follow it to its end (on_row sees each new row, on_log
        each line of the run's log)."""
        run_config = write_run_config(self.workdir, config, out_dir, resume)
        env = self.services.env
        run_id = submit(env, app_dir, CONNECTION, run_config, "--federation-config", federation_config)
        follow_run(env, CONNECTION, run_id, RunDir(out_dir), self.services, on_row=on_row, on_log=on_log)
