"""What the server accepts from a site's reply, and the counts it keeps of them."""

from __future__ import annotations

import math
from collections import Counter

import torch
from flwr.app import ArrayRecord, Message

from evaluation.utility import groups_from_metrics
from fedvlm.messages import BUDGET_EXHAUSTED, SITE_RECORD, TRAINED


def array_bytes(record: ArrayRecord) -> int:
    """Payload bytes of an ArrayRecord."""
    return sum(array.numpy().nbytes for array in record.values())


def usable_train_reply(reply: Message, global_state: dict[str, torch.Tensor]) -> bool:
    """A reply that can be aggregated: no error, the global adapter's keys and shapes, finite values, examples > 0."""
    if reply.has_error() or not reply.has_content():
        return False
    content = reply.content
    if "arrays" not in content.array_records or "metrics" not in content.metric_records:
        return False
    arrays, metrics = content["arrays"], content["metrics"]
    if set(arrays.keys()) != set(global_state):
        return False
    for key, array in arrays.items():
        values = array.numpy()
        if tuple(values.shape) != tuple(global_state[key].shape) or not torch.isfinite(torch.from_numpy(values)).all():
            return False
    examples, loss = metrics.get("num-examples"), metrics.get("train-loss")
    return isinstance(examples, int) and examples > 0 and isinstance(loss, float) and math.isfinite(loss)


def usable_evaluate_reply(reply: Message) -> bool:
    """An evaluation reply with its counts."""
    return not reply.has_error() and reply.has_content() and "metrics" in reply.content.metric_records


def train_summary(replies: list[Message]) -> dict:
    """Example-weighted loss, summed record counts and client compute time of a round's usable replies."""
    metrics = [reply.content["metrics"] for reply in replies]
    examples = [int(m["num-examples"]) for m in metrics]
    counts: Counter = Counter()
    for m in metrics:
        counts.update({k: int(v) for k, v in m.items() if k.startswith(("records-", "pii-"))})
    return {
        "loss": sum(n * float(m["train-loss"]) for n, m in zip(examples, metrics)) / sum(examples),
        "examples": sum(examples),
        "client_seconds": sum(float(m["client-seconds"]) for m in metrics),
        "counts": dict(sorted(counts.items())),
    }


def site_of(reply: Message) -> str:
    """The site's name from its reply (node-config site-name or site-<partition-id>), else its node id."""
    if reply.has_content() and SITE_RECORD in reply.content.config_records:
        return str(reply.content[SITE_RECORD]["name"])
    return f"node-{reply.metadata.src_node_id}"


def refused_budget(reply: Message) -> bool:
    """A site that declined the round because it would pass its privacy budget."""
    return (
        not reply.has_error()
        and reply.has_content()
        and SITE_RECORD in reply.content.config_records
        and reply.content[SITE_RECORD].get("status") == BUDGET_EXHAUSTED
    )


def pii_by_site(replies: list[Message]) -> dict[str, dict[str, int]]:
    """Each site's PII filter report (entities found per field and type; non-zero counts only), by site."""
    sites = {}
    for reply in replies:
        metrics = reply.content["metrics"]
        sites[site_of(reply)] = {
            key.removeprefix("pii|"): int(value) for key, value in metrics.items() if key.startswith("pii|") and value
        }
    return sites


DP_FIGURES = {
    "dp-epsilon": "epsilon",
    "dp-delta": "delta",
    "dp-noise-multiplier": "noise_multiplier",
    "dp-sample-rate": "sample_rate",
    "dp-steps": "steps",
    "dp-max-grad-norm": "max_grad_norm",
    "dp-budget-epsilon": "budget_epsilon",
}


def dp_by_site(replies: list[Message], accountant: str) -> dict[str, dict]:
    """Each replying site's DP-SGD ledger figures (cumulative ε and steps), by site; refusals included."""
    sites = {}
    for reply in replies:
        if reply.has_error() or not reply.has_content() or "metrics" not in reply.content.metric_records:
            continue
        metrics = reply.content["metrics"]
        if "dp-epsilon" not in metrics:
            continue
        figures = {name: metrics[key] for key, name in DP_FIGURES.items()}
        figures["steps"] = int(figures["steps"])
        sites[site_of(reply)] = {
            **figures,
            "accountant": accountant,
            "status": BUDGET_EXHAUSTED if refused_budget(reply) else TRAINED,
        }
    return sites


def site_evaluation(replies: list[Message]) -> dict:
    """Sum the sites' held-out counts, overall and per attribute group."""
    totals: Counter = Counter()
    for reply in replies:
        totals.update({k: int(v) for k, v in reply.content["metrics"].items() if k != "num-examples"})
    correct, total = totals["vqa-correct"], totals["vqa-total"]
    return {
        "sites": len(replies),
        "vqa_accuracy": correct / total if total else 0.0,
        "correct": correct,
        "total": total,
        "groups": groups_from_metrics(totals),
    }
