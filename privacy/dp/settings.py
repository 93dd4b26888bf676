"""The [privacy.dp] section: sample-level DP-SGD at every site (Opacus), with a per-site ε ledger and budget."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DpSettings(BaseModel):
    """Noise (fixed, or reaching a target ε over the whole federation), clipping, accountant and budget."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    target_epsilon: float | None = Field(None, gt=0.0)  # for the whole planned federation, not per round
    noise_multiplier: float | None = Field(None, gt=0.0)  # fixed, instead of target_epsilon
    delta: float = Field(1e-5, gt=0.0, lt=1.0)
    max_grad_norm: float = Field(1.0, gt=0.0)
    accountant: Literal["rdp", "prv"] = "rdp"
    budget_epsilon: float | None = Field(None, gt=0.0)  # per site; a site never trains past it (default: target)
    secure_rng: bool = False  # sampling and noise from the OS's CSPRNG
    # One record is one DP sample, so it gives one pair per step: its question (the task the gates score;
    # a caption-only record gives its caption), or its caption or question at random.
    record_pair: Literal["question", "random"] = "question"

    @model_validator(mode="after")
    def _one_noise_source(self) -> DpSettings:
        if self.enabled and (self.target_epsilon is None) == (self.noise_multiplier is None):
            raise ValueError("set exactly one of target_epsilon and noise_multiplier")
        if self.enabled and self.budget_epsilon is None and self.target_epsilon is None:
            raise ValueError("budget_epsilon: required with a fixed noise_multiplier")
        return self

    @property
    def budget(self) -> float:
        """The ε a site may spend in this federation."""
        budget = self.budget_epsilon if self.budget_epsilon is not None else self.target_epsilon
        assert budget is not None, "validated: budget_epsilon or target_epsilon is set"
        return budget
