"""fedvlm on Flower's Deployment Engine, secured: TLS, SuperNode authentication, refusals, faults, `flwr run .`."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from audit.verify import verify_log
from contract.run_config import load_config
from deployment.credentials import private_folder, write_node_key, write_tls_files
from deployment.local_federation import LocalFederation
from simulations.flower_cli import FlowerError
from simulations.synth import write_scenario
from tests.small_run import SMALL_RUN

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


FLOWER_COMMANDS = ("flower-superlink", "flower-supernode", "flower-superexec", "flwr-")


def _started_by_pytest(process: psutil.Process) -> bool:
    """Whether the process inherited pytest's environment (not another run's on the same machine)."""
    try:
        return "PYTEST_CURRENT_TEST" in process.environ()
    except psutil.Error:  # gone, or not ours to read
        return False


def flower_processes() -> list[psutil.Process]:
    """Every running Flower process (SuperLink, SuperNode, SuperExec, app processes) started from these tests."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if any(name in command for name in FLOWER_COMMANDS) and _started_by_pytest(process):
            found.append(process)
    return found


@pytest.fixture(autouse=True)
def nothing_left_running():
    """No Flower process a test started outlives it."""
    before = {process.pid for process in flower_processes()}

    def started() -> list[psutil.Process]:
        return [process for process in flower_processes() if process.pid not in before]

    yield
    deadline = time.monotonic() + 20
    while started() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert started() == []


def small_config(rounds: int, *extra: str):
    return load_config(None, [*SMALL_RUN, "federation.sites=2", f"federation.rounds={rounds}", *extra])


def rows_of(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _manifest(folder: Path) -> str:
    """SHA-256 of a dataset folder's metadata.jsonl, then of each of its images' SHA-256 in the file's order."""
    metadata = (folder / "metadata.jsonl").read_bytes()
    digest = hashlib.sha256(metadata)
    for line in metadata.decode().splitlines():
        digest.update(hashlib.sha256((folder / json.loads(line)["file_name"]).read_bytes()).digest())
    return digest.hexdigest()


def test_federation_up_runs_over_tls_and_refuses_an_unregistered_supernode(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    small = [part for override in SMALL_RUN for part in ("--set", override)]
    result = subprocess.run(
        [str(BIN / "fedvlm"), "federation", "up", "--sites", "2", "--rounds", "2", "--out", str(out)]
        + ["--with-intruder", *small],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "intruder refused: its public key is not registered" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    rows = rows_of(out)
    assert [row["round"] for row in rows] == [0, 1, 2]
    assert [row["aggregated_sites"] for row in rows[1:]] == [["site-0", "site-1"]] * 2
    assert all(row["accepted"] for row in rows)
    assert verify_log(out / "audit.jsonl", expected_run_id=(out / "federation_id").read_text().strip())
    assert rows[1]["dataset_hashes"] == {site: _manifest(out / "data" / site) for site in ("site-0", "site-1")}
    # each site's state (its PII-filtered copy) is kept under its state-path, across runs
    assert {path.name for path in (out / "site-state").iterdir()} == {"site-0", "site-1"}
    assert all(any((out / "site-state" / site / "pii").iterdir()) for site in ("site-0", "site-1"))


def test_supernodes_without_the_right_credentials_are_refused_with_the_reason(tmp_path):
    config = small_config(1)
    with LocalFederation(config, tmp_path / "run") as federation:
        federation.start_superlink()
        registered = write_node_key(federation.keys, "registered")
        federation.register(registered)
        wrong_ca = write_tls_files(private_folder(tmp_path / "other-ca"))
        assert "no authentication key" in federation.refusal_of("no-key", None)
        assert "wrong CA" in federation.refusal_of("wrong-ca", registered, ca=wrong_ca.ca_certificate)
        assert "plaintext" in federation.refusal_of("plaintext", registered, insecure=True)
        assert "not registered" in federation.refusal_of("unregistered", write_node_key(federation.keys, "other"))


def test_a_supernode_refuses_an_expired_superlink_certificate(tmp_path):
    long_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=90)
    with LocalFederation(small_config(1), tmp_path / "run") as federation:
        expired = write_tls_files(private_folder(tmp_path / "expired"), valid_from=long_ago, days=30)
        federation.tls = expired
        federation.start_superlink()
        with pytest.raises(FlowerError, match="flwr supernode register: .*"):
            federation.register(write_node_key(federation.keys, "site"))  # the flwr CLI refuses it too
        assert "has expired" in federation.refusal_of("site", write_node_key(federation.keys, "other"))


def _wait(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(what)


def _app_process(service) -> psutil.Process | None:
    """The app process (flwr-clientapp / flwr-serverapp) running under a SuperNode or SuperLink, if any."""
    for child in psutil.Process(service.process.pid).children(recursive=True):
        if any("flwr-clientapp" in part or "flwr-serverapp" in part for part in child.cmdline()):
            return child
    return None


def test_a_supernode_killed_mid_round_is_left_out_and_rejoins(tmp_path, tiny_model_dir):
    config = small_config(3, "federation.sites=3", "federation.min_train_nodes=1", "federation.round_timeout_s=120")
    out = tmp_path / "run"
    with LocalFederation(config, out) as federation:
        federation.prepare()
        shutil.rmtree(federation.sites[2].data)  # site-2's data-path does not exist: it fails, the others go on
        federation.start_superlink()
        for site in federation.sites:
            federation.register(site.key)
            federation.start_supernode(site)
        federation.wait_online(3)
        killed = federation.sites[1]
        run_id = federation.submit()
        # Kill site-1's SuperNode while it trains in round 1 (its ClientApp process is running).
        _wait(lambda: len(rows_of(out)) >= 1 if (out / "metrics.jsonl").exists() else False, 300, "round 0")
        _wait(lambda: _app_process(killed.service), 300, "site-1 training")
        federation.services.kill(killed.service)
        _wait(lambda: len(rows_of(out)) >= 2, 300, "round 1")
        federation.start_supernode(killed)
        federation.wait_for_run(run_id, 900)
    rows = rows_of(out)
    assert [row["round"] for row in rows] == [0, 1, 2, 3]
    assert rows[1]["aggregated_sites"] == ["site-0"] and rows[1]["accepted"]
    assert "site-1" in rows[3]["aggregated_sites"]
    missing = "site-2: DatasetError: <data-path>: dataset folder does not exist"
    assert any(missing in row.get("site_failures", []) for row in rows[1:])
    assert all("site-2" not in row["aggregated_sites"] for row in rows)


def test_a_killed_serverapp_or_superlink_resumes_from_its_last_accepted_round(tmp_path, tiny_model_dir):
    out = tmp_path / "run"
    with LocalFederation(small_config(4), out) as federation:
        federation.prepare()
        federation.start_superlink()
        for site in federation.sites:
            federation.register(site.key)
            federation.start_supernode(site)
        federation.wait_online(2)
        run_id = federation.submit()
        # The ServerApp process dies after round 1: the run ends; a resumed run goes on from the last checkpoint.
        _wait(lambda: len(rows_of(out)) >= 2 if (out / "metrics.jsonl").exists() else False, 600, "round 1")
        _app_process(federation.superlink).kill()
        _wait(lambda: federation.run_status(run_id).startswith("finished"), 120, "the killed run to end")
        federation.submit(resume=True)
        # The whole SuperLink dies after round 3 (SIGKILL). In Flower 1.42 its restarted database still holds the
        # nodes as online (a SuperNode then hangs or is refused with code 2004), so the federation starts afresh:
        # a new SuperLink, the keys registered again, the SuperNodes restarted; the run resumes from its directory.
        _wait(lambda: len(rows_of(out)) >= 4, 600, "round 3")
        federation.services.kill(federation.superlink)
        for site in federation.sites:
            federation.services.kill(site.service)
        federation.start_superlink(fresh=True)
        for site in federation.sites:
            federation.register(site.key)
            federation.start_supernode(site)
        federation.wait_online(2)
        federation.run_app(resume=True, timeout_s=900)
    rows = rows_of(out)
    assert [row["round"] for row in rows] == [0, 1, 2, 3, 4]
    assert all(row["accepted"] for row in rows)
    entries = verify_log(out / "audit.jsonl", expected_run_id=(out / "federation_id").read_text().strip())
    assert [entry["kind"] for entry in entries].count("resume") == 2
    assert [entry["payload"]["row"]["round"] for entry in entries if entry["kind"] == "round"] == [0, 1, 2, 3, 4]


def test_flwr_run_runs_a_two_site_simulation(tmp_path, tiny_model_dir):
    data = write_scenario("hospital", 2, tmp_path / "data", records_per_site=24, eval_records=16)
    flwr_home = tmp_path / "flwr-home"
    flwr_home.mkdir()
    (flwr_home / "config.toml").write_text('[superlink]\ndefault = "local"\n\n[superlink.local]\naddress = ":local:"\n')
    env = {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    out = tmp_path / "run"
    overrides = "; ".join([*SMALL_RUN, "federation.sites=2", "federation.rounds=2", f"data.root='{data}'"])
    try:
        result = subprocess.run(
            [str(BIN / "flwr"), "run", str(REPO), "local", "--stream"]
            + ["--federation-config", "num-supernodes=2 client-resources-num-cpus=1"]
            + ["--run-config", f'out-dir="{out}" overrides="{overrides}"'],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        rows = rows_of(out)
        assert [row["round"] for row in rows] == [0, 1, 2]
        assert [row["aggregated_sites"] for row in rows[1:]] == [["site-0", "site-1"]] * 2
        assert set(rows[1]["gates"]) == {"utility", "bias", "privacy"}
        assert (out / "audit.jsonl").is_file()
    finally:  # `flwr run` leaves its local simulation SuperLink running: stop the one this FLWR_HOME started
        for process in flower_processes():
            if process.environ().get("FLWR_HOME") == str(flwr_home):
                process.terminate()
