import json
import platform

import torch

from server import environment


def test_describes_python_packages_threads_cpu_and_base_model():
    described = environment.describe("ab" * 32, threads_per_site=1)
    assert described["python"]["version"] == platform.python_version()
    assert described["packages"]["torch"] == torch.__version__
    assert {"flwr", "transformers", "peft", "opacus", "presidio-analyzer"} <= described["packages"].keys()
    assert described["threads"]["server_torch"] == torch.get_num_threads()
    assert described["threads"]["per_site_torch"] == 1
    assert described["cpu"]["torch_capability"] == torch.backends.cpu.get_cpu_capability()
    assert described["cpu"]["flags"] == sorted(described["cpu"]["flags"])
    assert described["cuda"] is None or described["cuda"]["device"]
    assert described["base_model_hash"] == "ab" * 32


def test_hash_tells_environments_apart():
    first = environment.describe("ab" * 32, threads_per_site=1)
    assert environment.describe("ab" * 32, threads_per_site=1)["hash"] == first["hash"]
    assert environment.describe("ab" * 32, threads_per_site=2)["hash"] != first["hash"]
    assert environment.describe("cd" * 32, threads_per_site=1)["hash"] != first["hash"]


def test_a_resume_is_added_never_replacing_the_start(tmp_path):
    path = tmp_path / "environment.json"
    started = environment.describe("ab" * 32, threads_per_site=1)
    environment.record(path, started, resumed_from=None)
    resumed = environment.describe("ab" * 32, threads_per_site=2)
    environment.record(path, resumed, resumed_from=3)
    recorded = json.loads(path.read_text())
    assert recorded["hash"] == started["hash"]
    assert [(r["from_round"], r["hash"]) for r in recorded["resumes"]] == [(3, resumed["hash"])]
