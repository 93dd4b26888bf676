"""What a run's figures came from: Python, every installed package, threads, CPU, GPU and the base model."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from importlib import metadata
from pathlib import Path

import torch

from storage.durable import replace_file

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE")


def _cpu() -> dict:
    """CPU model and flags as the kernel reports them, and the instruction set torch's kernels dispatch to."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    return {
        "model": fields.get("model name") or platform.processor() or platform.machine(),
        "flags": sorted(fields.get("flags", "").split()),
        "cores": os.cpu_count(),
        "torch_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _cuda() -> dict | None:
    if not torch.cuda.is_available():
        return None
    index = torch.cuda.current_device()
    return {
        "device": torch.cuda.get_device_name(index),
        "capability": ".".join(map(str, torch.cuda.get_device_capability(index))),
        "cuda": torch.version.cuda,
        "devices": torch.cuda.device_count(),
    }


def describe(base_model_hash: str, threads_per_site: int) -> dict:
    """This process's environment, with a hash over everything but the hash itself."""
    packages = {
        re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower(): dist.version  # PEP 503 names, as the lock has them
        for dist in metadata.distributions()
        if dist.metadata["Name"]
    }
    environment = {
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation()},
        "platform": platform.platform(),
        "packages": dict(sorted(packages.items())),
        "threads": {
            "server_torch": torch.get_num_threads(),
            "server_torch_interop": torch.get_num_interop_threads(),
            "per_site_torch": threads_per_site,
            "variables": {name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ},
        },
        "cpu": _cpu(),
        "cuda": _cuda(),
        "base_model_hash": base_model_hash,
    }
    environment["hash"] = hashlib.sha256(json.dumps(environment, sort_keys=True).encode()).hexdigest()
    return environment


def record(path: Path, environment: dict, resumed_from: int | None) -> None:
    """Write environment.json: the environment a run started in, and that of every resume after it."""
    if resumed_from is None or not path.is_file():
        recorded = {**environment, "resumes": []}
    else:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        recorded["resumes"].append({"from_round": resumed_from, **environment})
    replace_file(path, json.dumps(recorded, indent=2, sort_keys=True) + "\n")
