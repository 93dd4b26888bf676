"""The [model] section: a built-in preset, or a local directory holding any Hugging Face VLM."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from vlm.base_model import ensure_base_model
from vlm.presets import PRESETS


class ModelSettings(BaseModel):
    """Which base model every party loads (model.path wins over preset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: str = "tiny"
    path: str = ""

    @model_validator(mode="after")
    def _known_preset(self) -> ModelSettings:
        if not self.path and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(sorted(PRESETS))}")
        return self

    def directory(self) -> Path:
        """model.path, or the cached pre-trained preset (built on first use)."""
        return Path(self.path) if self.path else ensure_base_model(self.preset)
