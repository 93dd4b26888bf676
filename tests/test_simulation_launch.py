"""The parts of `fedvlm simulate`'s launch that run without Flower running: Ray's CPUs, the federation config as
Flower parses it, what a run's log shows the user, and a log read line by line."""

from __future__ import annotations

import subprocess
import sys

import pytest
from flwr.common.config import parse_config_args
from flwr.supercore.utils import simulation_config_from_json

from contract.run_config import load_config
from simulations import runner
from simulations.flower_cli import last_error
from simulations.processes import Service


@pytest.mark.parametrize(
    ("cpus_per_site", "expected"),
    [(1.0, (2, 1)), (0.5, (4, 1)), (1.5, (4, 3)), (2.0, (2, 2)), (0.25, (8, 1))],
)
def test_a_sites_share_of_the_cpus_becomes_whole_numbers_in_the_same_ratio(monkeypatch, cpus_per_site, expected):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    assert runner.ray_cpus(cpus_per_site) == expected


def test_flower_parses_the_federation_config_into_the_runs_sizes(monkeypatch):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(runner.torch.cuda, "is_available", lambda: False)
    config = load_config(None, ["federation.sites=3", "simulation.cpus_per_site=0.5"])
    # As `flwr run --federation-config` parses it (flwr/cli/run/run.py): keys with '_', into SimulationConfig.
    parsed = {
        key.replace("-", "_"): value for key, value in parse_config_args([runner.federation_config(config)]).items()
    }
    simulation = simulation_config_from_json(parsed)
    assert (simulation.num_supernodes, simulation.client_resources_num_cpus, simulation.init_args_num_cpus) == (3, 1, 4)
    assert (simulation.client_resources_num_gpus, simulation.init_args_logging_level) == (0.0, "ERROR")


def test_the_user_sees_what_virtual_sites_log_and_not_flowers_lines(capsys):
    lines = [
        "\x1b[36m(ClientAppActor pid=2243)\x1b[0m 12/03/2026 07:44:20:WARNING:skipped record: m.jsonl:4: bad JSON",
        "\x1b[92mINFO \x1b[0m:      configure_train: Sampled 2 nodes (out of 2)",
        "\x1b[36m(ClientAppActor pid=2243)\x1b[0m \x1b[93mWARNING \x1b[0m:   Manually terminating ClientAppActor",
        "round   1  sites 2/2  loss  3.744  vqa_accuracy 0.438  accepted",
    ]
    for line in lines:
        runner.show_site_log(line)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "(ClientAppActor pid=2243) 12/03/2026 07:44:20:WARNING:skipped record: m.jsonl:4: bad JSON\n"
    )


def test_a_failed_runs_reason_is_the_last_exception_line_of_its_log():
    log = "\n".join(
        [
            "Traceback (most recent call last):",
            '  File "/work/main/server/app.py", line 52, in main',
            "ValueError: the first one",
            "12/03/2026 07:24:11:ERROR:Simulation raised an exception",
            "FileNotFoundError: /run/data/server-eval: no server evaluation set",
            "\x1b[91mERROR \x1b[0m:     Exit Code: 700",
        ]
    )
    assert last_error(log) == "FileNotFoundError: /run/data/server-eval: no server evaluation set"
    assert last_error("INFO: round 1\nround 2 accepted\n") is None


def test_a_services_log_is_read_in_complete_lines_once_each(tmp_path):
    log = tmp_path / "run.log"
    service = Service("run", subprocess.Popen([sys.executable, "-c", "pass"]), log)
    service.process.wait()
    assert service.new_lines() == []
    log.write_bytes(b"first\nsecond line, half")
    assert service.new_lines() == ["first"]
    with log.open("ab") as sink:
        sink.write(b" written\nthird \xff\n")
    assert service.new_lines() == ["second line, half written", "third \ufffd"]
    assert service.new_lines() == []
