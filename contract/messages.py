"""What crosses the wire between the ServerApp and the ClientApps: the round instruction, a site's reply, and the
names of every metric a reply carries. Both sides encode and decode here and nowhere else."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

from contract.run_config import RunConfig, run_config_from_json
from privacy.pii.report import ENTITY_METRIC_PREFIX

# Record names in a reply's RecordDict.
ARRAYS, METRICS, CONFIG, SITE_RECORD = "arrays", "metrics", "config", "site"

# A train reply's site record: the site's name and status.
TRAINED = "trained"
BUDGET_EXHAUSTED = "budget-exhausted"  # the site declined: this round would pass its privacy budget

# Metric keys.
NUM_EXAMPLES = "num-examples"
TRAIN_LOSS, TRAIN_FINAL_LOSS, TRAIN_STEPS = "train-loss", "train-final-loss", "train-steps"
SITE_SECONDS = "site-seconds"
UNIT_WEIGHT = "unit-weight"  # 1 at every site: under central DP every site weighs the same in the average
VQA_CORRECT, VQA_TOTAL = "vqa-correct", "vqa-total"
COUNT_PREFIXES = ("records-", "pii-")  # loader, split and PII filter counts
GROUP_PREFIX = "group|"  # group|<attribute>|<value>|<correct or total>, name and value URL-quoted
DP_EMPTY_STEPS, DP_SAMPLED_RECORDS, DP_REFUSED = "dp-empty-steps", "dp-sampled-records", "dp-refused"
DP_FIGURES = {  # metrics.jsonl's name of each DP-SGD ledger figure -> its reply metric key
    "epsilon": "dp-epsilon",
    "delta": "dp-delta",
    "noise_multiplier": "dp-noise-multiplier",
    "sample_rate": "dp-sample-rate",
    "steps": "dp-steps",
    "max_grad_norm": "dp-max-grad-norm",
    "budget_epsilon": "dp-budget-epsilon",
}

# Run config sections only the server uses: they never travel (a site needs no gate, nor the server's key path).
SERVER_ONLY_SECTIONS = {"gates", "audit"}

# Keys of the round instruction that Flower's strategies add themselves.
SERVER_ROUND, PROXIMAL_MU = "server-round", "proximal-mu"


@dataclass(frozen=True)
class RoundInstruction:
    """What the server sends every site with a train or evaluate message (its 'config' record)."""

    run_config: RunConfig  # as a site sees it: the server-only sections at their defaults
    base_model_hash: str
    data_root: str  # simulation: the root of every site's folder; a deployed site reads its node config instead
    federation_id: str
    site_state_root: str  # simulation: where virtual sites keep their state (privacy ledgers)
    dp_recorded_steps: dict[str, int] = field(default_factory=dict)  # DP steps the server recorded per site
    server_round: int = 0  # set by Flower's strategy
    proximal_mu: float = 0.0  # set by FedProx

    def encode(self) -> ConfigRecord:
        """The ConfigRecord the strategy sends (Flower adds the round and FedProx's mu)."""
        return ConfigRecord(
            {
                "run-config": self.run_config.model_dump_json(exclude=SERVER_ONLY_SECTIONS),
                "base-model-hash": self.base_model_hash,
                "data-root": self.data_root,
                "federation-id": self.federation_id,
                "site-state-root": self.site_state_root,
                "dp-recorded-steps": json.dumps(self.dp_recorded_steps, sort_keys=True),
            }
        )

    @classmethod
    def decode(cls, record: ConfigRecord) -> RoundInstruction:
        """The instruction a site received."""
        return cls(
            run_config=run_config_from_json(str(record["run-config"])),
            base_model_hash=str(record["base-model-hash"]),
            data_root=str(record["data-root"]),
            federation_id=str(record["federation-id"]),
            site_state_root=str(record["site-state-root"]),
            dp_recorded_steps={k: int(v) for k, v in json.loads(str(record["dp-recorded-steps"])).items()},
            server_round=int(record.get(SERVER_ROUND, 0)),
            proximal_mu=float(record.get(PROXIMAL_MU, 0.0)),
        )


def instruction_of(msg: Message) -> RoundInstruction:
    """The round instruction a message carries."""
    return RoundInstruction.decode(msg.content[CONFIG])


def train_reply(
    msg: Message,
    site: str,
    status: str,
    metrics: Mapping,
    arrays: dict[str, torch.Tensor] | None = None,
    dataset: str = "",
) -> Message:
    """A site's reply to a train message: its update (none when it declined), counts and its site record (name,
    status, and the hash of its dataset's manifest)."""
    record = ConfigRecord({"name": site, "status": status, "dataset": dataset})
    content = RecordDict({METRICS: MetricRecord(dict(metrics)), SITE_RECORD: record})
    if arrays is not None:
        content[ARRAYS] = ArrayRecord(arrays)
    return Message(content, reply_to=msg)


def evaluate_reply(msg: Message, metrics: Mapping) -> Message:
    """A site's reply to an evaluate message: its held-out counts."""
    return Message(RecordDict({METRICS: MetricRecord(dict(metrics))}), reply_to=msg)


SITE_FAILURE = re.compile(r"<site-failure>(.*?)</site-failure>", re.DOTALL)


def site_failure_text(site: str, reason: str) -> str:
    """What a failed site's error says, tagged so that the server finds it inside Flower's and Ray's wrappings."""
    return f"<site-failure>{site}: {reason}</site-failure>"


def failure_reason(reply: Message) -> str | None:
    """Why a site failed, as it said it (site_failure_text); None for a reply without error, the error's code for
    an error the site did not describe (a timeout, a lost node)."""
    if not reply.has_error():
        return None
    found = SITE_FAILURE.search(reply.error.reason or "")
    return found.group(1) if found else f"node {reply.metadata.src_node_id}: Flower error code {reply.error.code}"


def node_site_name(node_id: int) -> str:
    """The name of a site that names itself neither in node config nor in its reply."""
    return f"node-{node_id}"


def reply_site(reply: Message) -> str:
    """The site's name from its reply, else its node id."""
    if reply.has_content() and SITE_RECORD in reply.content.config_records:
        return str(reply.content[SITE_RECORD]["name"])
    return node_site_name(reply.metadata.src_node_id)


def reply_dataset(reply: Message) -> str | None:
    """The dataset-manifest hash a train reply's site record states (None without one)."""
    if reply.has_error() or not reply.has_content() or SITE_RECORD not in reply.content.config_records:
        return None
    return str(reply.content[SITE_RECORD].get("dataset", "")) or None


def reply_status(reply: Message) -> str | None:
    """The status a train reply's site record states (None without one, or on an error)."""
    if reply.has_error() or not reply.has_content() or SITE_RECORD not in reply.content.config_records:
        return None
    return str(reply.content[SITE_RECORD].get("status"))


def reply_metrics(reply: Message) -> MetricRecord | None:
    """A reply's metrics, if it carries any."""
    if reply.has_error() or not reply.has_content() or METRICS not in reply.content.metric_records:
        return None
    return reply.content[METRICS]


def reply_arrays(reply: Message) -> ArrayRecord | None:
    """A train reply's update, if it carries one."""
    if reply.has_error() or not reply.has_content() or ARRAYS not in reply.content.array_records:
        return None
    return reply.content[ARRAYS]


def dp_metrics(figures: Mapping[str, float | int]) -> dict[str, float | int]:
    """A site's DP-SGD ledger figures (by metrics.jsonl name) under their reply keys."""
    return {DP_FIGURES[name]: value for name, value in figures.items()}


def dp_figures(metrics: Mapping) -> dict | None:
    """The DP-SGD ledger figures a reply's metrics carry, by metrics.jsonl name (None without DP)."""
    if DP_FIGURES["epsilon"] not in metrics:
        return None
    figures = {name: metrics[key] for name, key in DP_FIGURES.items()}
    figures["steps"] = int(figures["steps"])
    return figures


def pii_entities(metrics: Mapping) -> dict[str, int]:
    """The PII filter's non-zero entity counts a reply carries, as '<field>|<entity type>' -> count."""
    return {
        key.removeprefix(ENTITY_METRIC_PREFIX): int(value)
        for key, value in metrics.items()
        if key.startswith(ENTITY_METRIC_PREFIX) and value
    }


def group_metrics(groups: Mapping[str, Mapping[str, Mapping[str, int]]]) -> dict[str, int]:
    """Flatten group counts (small groups already suppressed at the site) into 'group|<name>|<value>|<field>'."""
    return {
        f"{GROUP_PREFIX}{quote(name, safe='')}|{quote(value, safe='')}|{field_name}": count
        for name, values in groups.items()
        for value, counts in values.items()
        for field_name, count in counts.items()
    }


def groups_from_metrics(metrics: Mapping[str, int]) -> dict[str, dict[str, dict[str, int]]]:
    """The inverse of group_metrics, summing nothing: other keys are ignored."""
    groups: dict[str, dict[str, dict[str, int]]] = {}
    for key, count in metrics.items():
        if key.startswith(GROUP_PREFIX):
            name, value, field_name = key[len(GROUP_PREFIX) :].split("|")
            groups.setdefault(unquote(name), {}).setdefault(unquote(value), {})[field_name] = int(count)
    return groups
