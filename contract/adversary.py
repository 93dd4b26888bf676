"""`[[simulation.adversary]]` tables: a simulated site that attacks the federation (simulation only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

UPDATE_KINDS = ("sign-flip", "scale", "noise")  # act on the site's update before it replies
DATA_KINDS = ("label-flip", "toxic", "bias", "pii-leak")  # act on the site's records after loading
NEEDS_FACTOR = ("scale", "noise")
DEFAULT_BIAS_GROUP = "sex=F"

AdversaryKind = Literal["sign-flip", "scale", "noise", "label-flip", "toxic", "bias", "pii-leak"]


class AdversarySettings(BaseModel):
    """One adversarial site: which one, how it attacks, from which round."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: int = Field(ge=0)  # the site's index (its Simulation Engine partition-id), below federation.sites
    kind: AdversaryKind
    from_round: int = Field(1, ge=1)
    factor: float | None = Field(None, ge=0.0)  # scale: the update's multiplier; noise: the noise's standard deviation
    group: str | None = None  # bias: the group answered wrongly, "<attribute>=<value>" (default "sex=F")

    @model_validator(mode="after")
    def _fits_kind(self) -> AdversarySettings:
        if self.kind in NEEDS_FACTOR and self.factor is None:
            raise ValueError(f"factor: required for kind '{self.kind}'")
        if self.kind not in NEEDS_FACTOR and self.factor is not None:
            raise ValueError(f"factor: only for kinds {', '.join(NEEDS_FACTOR)}, not '{self.kind}'")
        if self.group is not None and self.kind != "bias":
            raise ValueError(f"group: only for kind 'bias', not '{self.kind}'")
        if self.group is not None and not _is_group(self.group):
            raise ValueError("group: expected '<attribute>=<value>'")
        return self

    def bias_group(self) -> tuple[str, str]:
        """The (attribute, value) a bias adversary answers wrongly for."""
        name, _, value = (self.group or DEFAULT_BIAS_GROUP).partition("=")
        return name, value


def _is_group(text: str) -> bool:
    name, separator, value = text.partition("=")
    return bool(separator and name.strip() and value.strip())
