"""`[[simulation.adversary]]` tables: a simulated site that attacks the federation (simulation only)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

UPDATE_KINDS = ("sign-flip", "scale", "noise")  # act on the site's update before it replies
DATA_KINDS = ("label-flip", "toxic", "bias", "pii-leak")  # act on the site's records after loading
NEEDS_FACTOR = ("scale", "noise")
TAKES_FACTOR = (*NEEDS_FACTOR, "bias")
DEFAULT_BIAS_GROUP = "sex=F"

AdversaryKind = Literal["sign-flip", "scale", "noise", "label-flip", "toxic", "bias", "pii-leak"]


class AdversarySettings(BaseModel):
    """One adversarial site: which one, how it attacks, from which round (and until which, if it stops)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    site: int = Field(ge=0)  # the site's index (its Simulation Engine partition-id), below federation.sites
    kind: AdversaryKind
    from_round: int = Field(1, ge=1)
    until_round: int | None = Field(None, ge=1)  # the last round it attacks (None: to the end of the run)
    # scale: the update's multiplier; noise: the noise's standard deviation; bias: its local steps' multiplier (≥ 1)
    factor: float | None = Field(None, ge=0.0)
    group: str | None = None  # bias: the group answered wrongly, "<attribute>=<value>" (default "sex=F")

    @field_validator("until_round")
    @classmethod
    def _not_before_from_round(cls, value: int | None, info: ValidationInfo) -> int | None:
        from_round = info.data.get("from_round", 1)
        if value is not None and value < from_round:
            raise ValueError(f"{value} is before from_round ({from_round})")
        return value

    @model_validator(mode="after")
    def _fits_kind(self) -> AdversarySettings:
        if self.kind in NEEDS_FACTOR and self.factor is None:
            raise ValueError(f"factor: required for kind '{self.kind}'")
        if self.kind not in TAKES_FACTOR and self.factor is not None:
            raise ValueError(f"factor: only for kinds {', '.join(TAKES_FACTOR)}, not '{self.kind}'")
        if self.kind == "bias" and self.factor is not None and self.factor < 1:
            raise ValueError("factor: a bias adversary's local steps' multiplier, at least 1")
        if self.group is not None and self.kind != "bias":
            raise ValueError(f"group: only for kind 'bias', not '{self.kind}'")
        if self.group is not None and not _is_group(self.group):
            raise ValueError("group: expected '<attribute>=<value>'")
        return self

    def attacks_in(self, server_round: int) -> bool:
        """Whether the site plays this role in server_round."""
        return self.from_round <= server_round and (self.until_round is None or server_round <= self.until_round)

    def overlaps(self, other: AdversarySettings) -> bool:
        """Whether both tables give the same site a role in some round."""
        first = max(self.from_round, other.from_round)
        ends = [end for end in (self.until_round, other.until_round) if end is not None]
        return self.site == other.site and (not ends or first <= min(ends))

    def bias_group(self) -> tuple[str, str]:
        """The (attribute, value) a bias adversary answers wrongly for."""
        name, _, value = (self.group or DEFAULT_BIAS_GROUP).partition("=")
        return name, value


def _is_group(text: str) -> bool:
    name, separator, value = text.partition("=")
    return bool(separator and name.strip() and value.strip())
