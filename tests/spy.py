"""Runs of the test Flower app in tests/spy_app: what its ServerApp recorded, read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from contract.run_config import RunConfig
from simulations.runner import simulate

SPY_APP = Path(__file__).resolve().parent / "spy_app"


class Spy:
    """What the spy ServerApp wrote into folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _lines(self, name: str) -> list[dict]:
        path = self.folder / name
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []

    def replies(self) -> list[dict]:
        """Every reply the server received, in order: index, round, type, and site, content, metrics if any."""
        return self._lines("replies.jsonl")

    def round_configs(self) -> list[dict]:
        """Each round config the server sent, in order."""
        return self._lines("round_configs.jsonl")

    def received(self, index: int) -> dict[str, torch.Tensor]:
        """The adapter of train reply index, as the server received it."""
        return load_file(self.folder / f"received-{index}.safetensors")

    def sent(self, index: int) -> dict[str, torch.Tensor]:
        """The global adapter train reply index answered."""
        return load_file(self.folder / f"sent-{index}.safetensors")

    def moments(self, server_round: int) -> dict[str, torch.Tensor]:
        """The server optimizer's state checkpointed after server_round."""
        return load_file(self.folder / f"moments-{server_round}.safetensors")


def spied_simulate(config: RunConfig, out: Path, monkeypatch: pytest.MonkeyPatch, **faults: object) -> Spy:
    """simulate() the spy app with faults (see tests/spy_app/spy_server.py); what its ServerApp recorded."""
    folder = out.parent / f"{out.name}-spy"
    folder.mkdir(parents=True)
    monkeypatch.setenv("FEDVLM_SPY", json.dumps({"dir": str(folder), **faults}))
    simulate(config, out, app_dir=SPY_APP)
    return Spy(folder)
