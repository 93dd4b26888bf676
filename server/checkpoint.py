"""Checkpoints: what resume needs to continue a killed run from its last completed round."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

STATE = "state.json"
GLOBAL = "global_adapter.safetensors"
OPTIMIZER = "server_optimizer.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """The round loop's position: last completed round, last accepted round and its evaluation."""

    round: int
    last_accepted_round: int
    accepted_evaluation: dict


def _atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    write(partial)
    os.replace(partial, path)


def save_checkpoint(
    folder: Path, checkpoint: Checkpoint, adapter: dict[str, torch.Tensor], optimizer: dict[str, np.ndarray]
) -> None:
    """Write tensors first and the state file last, each atomically, so a crash leaves the previous one valid."""
    folder.mkdir(parents=True, exist_ok=True)
    _atomic(folder / GLOBAL, lambda p: save_file({k: v.contiguous() for k, v in adapter.items()}, p))
    if optimizer:
        _atomic(folder / OPTIMIZER, lambda p: save_numpy({k: np.ascontiguousarray(v) for k, v in optimizer.items()}, p))
    _atomic(folder / STATE, lambda p: p.write_text(json.dumps(asdict(checkpoint), indent=2)))


def load_checkpoint(folder: Path) -> tuple[Checkpoint, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """The saved position, global adapter and server-optimizer state; a clear error if absent or broken."""
    state_file = folder / STATE
    if not state_file.is_file():
        raise FileNotFoundError(f"{state_file}: no checkpoint to resume from")
    try:
        checkpoint = Checkpoint(**json.loads(state_file.read_text()))
    except (json.JSONDecodeError, TypeError) as error:
        raise ValueError(f"{state_file}: corrupt checkpoint ({error})") from None
    adapter = load_file(folder / GLOBAL)
    optimizer = load_numpy(folder / OPTIMIZER) if (folder / OPTIMIZER).is_file() else {}
    return checkpoint, adapter, optimizer
