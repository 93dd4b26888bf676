"""A secured local federation on loopback: a SuperLink with TLS and SuperNode authentication, N registered
SuperNodes on synthetic site data, `flwr run` of fedvlm's app, and every process stopped by PID at the end."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contract.data_layout import site_folder, site_name
from contract.run_config import RunConfig
from deployment.credentials import NodeKey, TlsFiles, private_folder, write_node_key, write_tls_files
from deployment.refusals import refusal_reason
from deployment.wire import CountingRelay, WireCount
from server.run_dir import RunDir
from simulations.flower_cli import (
    BIN,
    FlowerError,
    flower_env,
    flwr_json,
    follow_run,
    run_status,
    submit,
    write_connection,
    write_run_config,
)
from simulations.processes import Service, Services, free_port, wait_for_port
from simulations.runner import write_synthetic_data

APP_DIR = Path(__file__).resolve().parents[1]  # the fedvlm project: pyproject.toml names the Flower app
CONNECTION = "fedvlm-local"


@dataclass
class Site:
    """A SuperNode of the federation: its name, key, folders, relay and process."""

    name: str
    key: NodeKey
    data: Path
    state: Path
    relay: CountingRelay | None = None
    service: Service | None = None

    @property
    def wire(self) -> WireCount:
        """Bytes this site exchanged with the SuperLink so far."""
        return self.relay.count if self.relay else WireCount()


@dataclass
class LocalFederation:
    """One SuperLink and its SuperNodes on loopback, for a config; use as a context manager (stops everything)."""

    config: RunConfig
    out: Path
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="fedvlm-federation-")))
    sites: list[Site] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        os.chmod(self.workdir, 0o700)
        self.keys = private_folder(self.workdir / "keys")
        self.tls: TlsFiles = write_tls_files(self.keys)
        home = self.workdir / "flwr-home"
        home.mkdir()
        (self.workdir / "logs").mkdir()
        self.services = Services(flower_env(home), self.workdir / "logs")
        self.run_dir = RunDir(self.out)
        self.database = self.workdir / "superlink.db"

    def __enter__(self) -> LocalFederation:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop every process started, by PID, and the relays; remove the private folder (keys, logs)."""
        self.services.stop_all()
        for site in self.sites:
            if site.relay is not None:
                site.relay.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ---- set-up -------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Build the base model (cached); without data.root, write the synthetic site datasets into the run's data/."""
        self.config.model.directory()
        self.run_dir.mark()
        write_synthetic_data(self.config, self.run_dir)
        root = Path(self.config.data.root) if self.config.data.root else self.run_dir.data
        for index in range(self.config.federation.sites):
            name = site_name(index)
            key = write_node_key(self.keys, name)
            self.sites.append(Site(name, key, site_folder(root, index), self.run_dir.site_state / name))

    def start_superlink(self, fresh: bool = False) -> None:
        """flower-superlink with TLS (self.tls) and SuperNode authentication, its state in a database (fresh: a new
        one, on a new port; the keys must then be registered again)."""
        tls = self.tls
        if fresh:
            self.database = self.workdir / f"superlink-{time.monotonic_ns()}.db"
            self.port = 0
        self.port = self.port or free_port()
        write_connection(self.services.env, CONNECTION, f"127.0.0.1:{self.port}", self.tls.ca_certificate)
        link = self.services.start(
            "superlink",
            [
                str(BIN / "flower-superlink"),
                "--ssl-ca-certfile", str(tls.ca_certificate),
                "--ssl-certfile", str(tls.server_certificate),
                "--ssl-keyfile", str(tls.server_key),
                "--enable-supernode-auth",
                "--database", str(self.database),
                "--port", str(self.port),
            ],
        )  # fmt: skip
        wait_for_port("127.0.0.1", self.port, 60, link)

    @property
    def superlink(self) -> Service:
        """The SuperLink process started last."""
        return next(service for service in reversed(self.services.started) if service.name == "superlink")

    def register(self, key: NodeKey) -> int:
        """`flwr supernode register`: admit key's SuperNode; its node id."""
        return int(flwr_json(self.services.env, "supernode", "register", str(key.public), CONNECTION)["node-id"])

    def start_supernode(self, site: Site) -> None:
        """flower-supernode for site, over TLS with its key, through a relay that counts its bytes."""
        if site.relay is None or site.relay.target_port != self.port:
            if site.relay is not None:
                site.relay.stop()
            site.relay = CountingRelay("127.0.0.1", self.port)
            site.relay.start()
        site.state.mkdir(parents=True, exist_ok=True)
        node_config = f"data-path='{site.data}' state-path='{site.state}' site-name='{site.name}'"
        site.service = self.services.start(site.name, self._supernode_command(site.relay.port, site.key, node_config))

    def _supernode_command(
        self, link_port: int, key: NodeKey | None, node_config: str, ca: Path | None = None, insecure: bool = False
    ) -> list[str]:
        command = [str(BIN / "flower-supernode"), "--superlink", f"127.0.0.1:{link_port}", "--port", str(free_port())]
        command += ["--insecure"] if insecure else ["--root-certificates", str(ca or self.tls.ca_certificate)]
        if key is not None:
            command += ["--auth-supernode-private-key", str(key.private)]
        return command + ["--node-config", node_config]

    def wait_online(self, count: int, timeout_s: float = 120) -> None:
        """Return once count SuperNodes are online; name a SuperNode that exited, and why."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for site in self.sites:
                if site.service is not None and site.service.process.poll() is not None:
                    why = (
                        refusal_reason(site.service.log_text()) or f"exited with code {site.service.process.returncode}"
                    )
                    raise FlowerError(f"{site.name} refused: {why}")
            nodes = flwr_json(self.services.env, "supernode", "list", CONNECTION)["nodes"]
            if sum(node.get("status") == "online" for node in nodes) >= count:
                return
            time.sleep(1)
        raise FlowerError(f"fewer than {count} SuperNodes online after {timeout_s:.0f} s")

    def refusal_of(
        self, name: str, key: NodeKey | None, ca: Path | None = None, insecure: bool = False, timeout_s: float = 60
    ) -> str | None:
        """Start a SuperNode that should be refused; why it was (one line), or None if it was let in."""
        service = self.services.start(name, self._supernode_command(self.port, key, "", ca, insecure))
        try:
            service.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.services.stop(service)
            return None
        return refusal_reason(service.log_text()) or f"exited with code {service.process.returncode}"

    # ---- the run -----------------------------------------------------------------------------------------------

    def run_app(
        self, resume: bool = False, timeout_s: float = 3600, on_row: Callable[[dict], None] | None = None
    ) -> int:
        """`flwr run` fedvlm's app on this federation and follow it to its end (on_row sees each new metrics row);
        the run id."""
        run_id = self.submit(resume)
        self.wait_for_run(run_id, timeout_s, on_row)
        return run_id

    def submit(self, resume: bool = False) -> int:
        """`flwr run` fedvlm's app with this federation's config into out (resume: continue the run there); the run
        id."""
        run_config = write_run_config(self.workdir, self.config, self.out, resume)
        return submit(self.services.env, APP_DIR, CONNECTION, run_config)

    def wait_for_run(self, run_id: int, timeout_s: float, on_row: Callable[[dict], None] | None = None) -> None:
        """Wait for the run to complete (on_row sees each new metrics row); FlowerError if it does not."""
        follow_run(self.services.env, CONNECTION, run_id, self.run_dir, self.services, timeout_s, on_row)

    def run_status(self, run_id: int) -> str:
        """The run's status as `flwr ls` gives it, e.g. 'running' or 'finished:completed'."""
        return run_status(self.services.env, CONNECTION, run_id)
