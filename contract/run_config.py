"""The run configuration: the libraries' settings and the federation-level sections, validated before anything runs.

Each library owns the settings of its concern (`[model]`, `[lora]` and `[train]` in vlm, `[privacy.pii]` and
`[privacy.dp]` in privacy, gate tables in evaluation); this module composes them with the sections that only a
federation has: data, federation, aggregation, simulation and central DP.
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    model_serializer,
    model_validator,
)

from audit.settings import AuditSettings
from contract.adversary import AdversarySettings
from evaluation.gates import GateSettings, validate_gate_settings
from privacy.dp.settings import DpSettings
from privacy.pii.settings import PiiSettings
from vlm.attributes import DEFAULT_ATTRIBUTES, DEFAULT_MIN_GROUP_SIZE, AttributeSchema
from vlm.lora import LoraSettings
from vlm.model_settings import ModelSettings
from vlm.training import TrainSettings

# Keys that were renamed: the old name is refused with a message naming the new one.
RENAMED = {
    "simulation.clients": "federation.sites",
    "simulation.cpus_per_client": "simulation.cpus_per_site",
    "simulation.gpus_per_client": "simulation.gpus_per_site",
    "simulation.threads_per_client": "simulation.threads_per_site",
}


class ConfigError(ValueError):
    """A configuration problem; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    # Synthetic data only: questions and captions name the record's sex and age ("a 71-year-old woman"), so a bias
    # can be taught and tested counterfactually. Off in the demo: its words are not in the tiny preset's vocabulary.
    descriptors: bool = False

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


class FederationSection(_Section):
    """The sites, rounds and participation (simulation and deployment alike)."""

    sites: int = Field(4, ge=1)
    rounds: int = Field(15, ge=1)
    fraction_train: float = Field(1.0, gt=0.0, le=1.0)
    min_train_nodes: int = Field(2, ge=1)
    round_timeout_s: float = Field(600.0, gt=0.0)


class AggregationSection(_Section):
    """Which Flower strategy aggregates the adapters, and its parameters."""

    strategy: Literal["fedavg", "fedavgm", "fedprox", "fedadam", "fedyogi", "fedmedian", "fedtrimmedavg", "krum"] = (
        "fedavg"
    )
    proximal_mu: float = Field(0.01, ge=0.0)
    server_learning_rate: float | None = Field(None, gt=0.0)  # default: 1.0 for fedavgm, 0.01 for fedadam/fedyogi
    server_momentum: float = Field(0.0, ge=0.0, lt=1.0)  # fedavgm
    trim_beta: float = Field(0.2, gt=0.0, lt=0.5)
    num_malicious_nodes: int = Field(0, ge=0)

    def server_rate(self) -> float:
        """The server optimizer's learning rate: as set, else the strategy's own default."""
        if self.server_learning_rate is not None:
            return self.server_learning_rate
        return 1.0 if self.strategy == "fedavgm" else 0.01


class CanaryAuditSection(_Section):
    """`[simulation.audit]`: canaries for `fedvlm audit privacy` (synthetic data only; 0 canaries: none).

    Which canaries exist and which went into training is drawn from the OS's randomness when the data is written
    and kept in `<out>.audit-secret.json` beside the run directory, never here: this configuration reaches every party.
    A secret already at that path is used as it is (the same canaries for several runs); move it away for new ones.
    """

    canaries: int = Field(0, ge=0, le=1024)  # audit.canaries.MAX_CANARIES: no repeats, no answer in a question
    alternatives: int = Field(63, ge=1, le=4095)  # other random answers per canary, among which exposure ranks


class SimulationSection(_Section):
    """Flower Simulation Engine resources per virtual site."""

    cpus_per_site: float = Field(1.0, gt=0.0)
    gpus_per_site: float = Field(0.25, ge=0.0, le=1.0)  # used only when CUDA is present
    threads_per_site: int = Field(1, ge=1)
    adversary: tuple[AdversarySettings, ...] = ()  # [[simulation.adversary]] tables: attacking virtual sites
    audit: CanaryAuditSection = CanaryAuditSection()


class CentralDpSection(_Section):
    """Site-level DP of the aggregate (Flower's DP strategy wrappers), with Flower's RDP accountant."""

    enabled: bool = False
    clipping: Literal["server", "client"] = "server"  # who clips each site's update
    adaptive: bool = False  # adaptive clipping norm (Andrew et al.) instead of a fixed one
    noise_multiplier: float = Field(1.0, gt=0.0)
    clipping_norm: float = Field(1.0, gt=0.0)  # the initial norm when adaptive
    clipped_count_stddev: float | None = Field(None, gt=0.0)  # adaptive only; Flower's default: sites per round / 20
    delta: float = Field(1e-5, gt=0.0, lt=1.0)


# The demo's gates: accuracy against the current global, the gap between groups, the privacy budgets.
DEFAULT_GATES = {"utility": {}, "bias": {}, "privacy": {}}


def _default_gates() -> dict[str, GateSettings]:
    return validate_gate_settings(DEFAULT_GATES)


FEDERATION_KEYS = ("quarantine", "quarantine_rounds", "group_testing_from")  # [gates] keys that are not gates
GROUP_TESTING_FROM = 8  # updates in a rejected round from which its culprits are searched by groups of sites


class GatesSection(_Section):
    """`[gates]`: what happens to the culprits of a rejected round, beside the `[gates.<name>]` tables.

    Without any gate table the demo's gates apply; with one or more, exactly those.
    """

    quarantine: bool | None = None  # None: on, except under privacy.central (each trial would be a release)
    quarantine_rounds: int = Field(3, ge=1)
    group_testing_from: int = Field(GROUP_TESTING_FROM, ge=2)
    tables: dict[str, SerializeAsAny[GateSettings]] = Field(default_factory=_default_gates)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: object) -> object:
        """Federation-level keys stay; every other key is a gate table, validated by its gate's settings."""
        if not isinstance(data, dict):
            return data
        own = {key: value for key, value in data.items() if key in FEDERATION_KEYS}
        tables = {key: value for key, value in data.items() if key not in own}
        if "tables" in tables and isinstance(tables["tables"], dict) and len(tables) == 1:
            tables = tables["tables"]  # already split (a model_dump of this section)
        return {**own, "tables": validate_gate_settings(tables or DEFAULT_GATES)}

    @model_serializer(mode="wrap")
    def _flat(self, handler: object) -> dict:
        data = handler(self)  # type: ignore[operator]
        return {**{key: value for key, value in data.items() if key != "tables"}, **data["tables"]}


class PrivacySection(_Section):
    """Privacy controls at the sites and of the aggregate."""

    pii: PiiSettings = PiiSettings()
    dp: DpSettings = DpSettings()
    central: CentralDpSection = CentralDpSection()


class RunConfig(_Section):
    """The whole configuration; its defaults are the hospital demo."""

    model: ModelSettings = ModelSettings()
    lora: LoraSettings = LoraSettings()
    data: DataSection = DataSection()
    train: TrainSettings = TrainSettings()
    federation: FederationSection = FederationSection()
    aggregation: AggregationSection = AggregationSection()
    simulation: SimulationSection = SimulationSection()
    privacy: PrivacySection = PrivacySection()
    audit: AuditSettings = AuditSettings()
    gates: GatesSection = GatesSection()  # [gates] and its [gates.<name>] tables, built by name (evaluation.gates)

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.federation.min_train_nodes > self.federation.sites:
            raise ValueError(
                f"federation.min_train_nodes ({self.federation.min_train_nodes}) exceeds "
                f"federation.sites ({self.federation.sites})"
            )
        self._check_adversaries()
        if self.simulation.audit.canaries and self.data.root:
            raise ValueError("simulation.audit.canaries: needs synthetic data (data.root empty)")
        central = self.privacy.central
        if central.enabled and self.aggregation.strategy != "fedavg":
            raise ValueError("privacy.central needs aggregation.strategy = 'fedavg' (its noise fits an average)")
        count_stddev = central.clipped_count_stddev or self.sites_per_round() / 20
        if central.enabled and central.adaptive and central.noise_multiplier >= 2 * count_stddev:
            raise ValueError(
                f"privacy.central.noise_multiplier ({central.noise_multiplier}) must stay below 2 x "
                f"clipped_count_stddev ({count_stddev:g}) with adaptive clipping"
            )
        for name, gate in self.gates.tables.items():
            if central.enabled and gate.judges_sites() and gate.mode == "enforce":
                raise ValueError(
                    f"gates.{name}: it judges each site's update before the central noise, so its verdicts are not "
                    f"covered by the central ε; set gates.{name}.mode = 'warn' or remove it under privacy.central"
                )
        if central.enabled and self.gates.quarantine:
            raise ValueError(
                "gates.quarantine: its attribution trials would each be a release under privacy.central; "
                "set gates.quarantine = false"
            )
        return self

    def quarantine(self) -> bool:
        """Whether rejected rounds are attributed and their culprits quarantined (off under central DP)."""
        return self.gates.quarantine if self.gates.quarantine is not None else not self.privacy.central.enabled

    def _check_adversaries(self) -> None:
        tables = self.simulation.adversary
        for index, adversary in enumerate(tables):
            key = f"simulation.adversary.{index}"
            if adversary.site >= self.federation.sites:
                raise ValueError(
                    f"{key}.site ({adversary.site}) must be below federation.sites ({self.federation.sites})"
                )
            if any(adversary.overlaps(earlier) for earlier in tables[:index]):
                raise ValueError(f"{key}.site ({adversary.site}): that site already has an adversary in those rounds")
            if adversary.kind == "bias":
                name, value = adversary.bias_group()
                if value not in self.data.attributes.get(name, []):
                    raise ValueError(f"{key}.group: '{name}={value}' is not a value declared in data.attributes")

    def sites_per_round(self) -> int:
        """Sites sampled each round: fraction_train of the sites, at least min_train_nodes."""
        return max(int(self.federation.fraction_train * self.federation.sites), self.federation.min_train_nodes)

    def to_toml(self) -> str:
        """The resolved configuration as TOML."""
        return tomli_w.dumps(self.model_dump(exclude_none=True))


@cache
def run_config_from_json(text: str) -> RunConfig:
    """A run config as it crossed the wire (parsed once per process and text)."""
    return RunConfig.model_validate_json(text)


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


def _refuse_renamed(data: dict, source: str) -> None:
    for old, new in RENAMED.items():
        section, key = old.split(".")
        if isinstance(data.get(section), dict) and key in data[section]:
            raise ConfigError(f"{source}: invalid configuration\n  {old}: renamed; use {new}")


def _read_toml(path: Path | str) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
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


def load_config(path: Path | str | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a configuration; every problem raises ConfigError naming file and key."""
    source = str(path) if path else "default configuration"
    data = apply_overrides(_read_toml(path) if path else {}, overrides or [])
    _refuse_renamed(data, source)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
