"""The [audit] section: the run's audit log, optionally signed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class AuditSettings(BaseModel):
    """Where the server's Ed25519 signing key is (PEM, from `fedvlm audit keygen`); empty: entries are unsigned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    signing_key: str = ""
