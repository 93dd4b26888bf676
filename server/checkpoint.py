"""Checkpoints: what resume needs to continue a killed run from its last completed round.

Each checkpoint is a folder `round-NNNN/` (state, global adapter, server-optimizer moments) written
whole under a temporary name and renamed; the file `LATEST` then names it, replaced atomically. A
crash at any point leaves `LATEST` naming a complete checkpoint.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file as load_numpy
from safetensors.numpy import save_file as save_numpy
from safetensors.torch import load_file, save_file

from storage.durable import replace_file, replace_folder

LATEST = "LATEST"
STATE = "state.json"
GLOBAL = "global_adapter.safetensors"
OPTIMIZER = "server_optimizer.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """The round loop's position: last completed round, last accepted round and its evaluation."""

    round: int
    last_accepted_round: int
    accepted_evaluation: dict


def save_checkpoint(
    folder: Path, checkpoint: Checkpoint, adapter: dict[str, torch.Tensor], optimizer: dict[str, np.ndarray]
) -> None:
    """Write a complete round folder, point LATEST at it, then drop older round folders."""
    name = f"round-{checkpoint.round:04d}"

    def write(staging: Path) -> None:
        save_file({k: v.contiguous() for k, v in adapter.items()}, staging / GLOBAL)
        if optimizer:
            save_numpy({k: np.ascontiguousarray(v) for k, v in optimizer.items()}, staging / OPTIMIZER)
        (staging / STATE).write_text(json.dumps(asdict(checkpoint), indent=2), encoding="utf-8")

    replace_folder(folder / name, write)
    replace_file(folder / LATEST, name)
    for old in folder.glob("round-*"):
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)


def load_checkpoint(folder: Path) -> tuple[Checkpoint, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """The saved position, global adapter and server-optimizer state; a clear error if absent or broken."""
    pointer = folder / LATEST
    if not pointer.is_file():
        raise FileNotFoundError(f"{pointer}: no checkpoint to resume from")
    current = folder / pointer.read_text(encoding="utf-8").strip()
    try:
        checkpoint = Checkpoint(**json.loads((current / STATE).read_text(encoding="utf-8")))
        adapter = load_file(current / GLOBAL)
    except (OSError, json.JSONDecodeError, TypeError) as error:
        raise ValueError(f"{current}: corrupt checkpoint ({type(error).__name__})") from None
    optimizer = load_numpy(current / OPTIMIZER) if (current / OPTIMIZER).is_file() else {}
    return checkpoint, adapter, optimizer
