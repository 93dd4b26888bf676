"""What the server accepts from a site's reply, and the counts it keeps of them."""

from __future__ import annotations

import math
from collections import Counter

import torch
from flwr.app import ArrayRecord, Message

from contract.messages import (
    BUDGET_EXHAUSTED,
    COUNT_PREFIXES,
    NUM_EXAMPLES,
    SITE_SECONDS,
    TRAIN_LOSS,
    TRAINED,
    VQA_CORRECT,
    VQA_TOTAL,
    dp_figures,
    failure_reason,
    groups_from_metrics,
    pii_entities,
    reply_arrays,
    reply_metrics,
    reply_site,
    reply_status,
)


def array_bytes(record: ArrayRecord) -> int:
    """Payload bytes of an ArrayRecord."""
    return sum(array.numpy().nbytes for array in record.values())


def usable_train_reply(reply: Message, global_state: dict[str, torch.Tensor]) -> bool:
    """A reply that can be aggregated: no error, the global adapter's keys and shapes, finite values, examples > 0."""
    arrays, metrics = reply_arrays(reply), reply_metrics(reply)
    if arrays is None or metrics is None or set(arrays.keys()) != set(global_state):
        return False
    for key, array in arrays.items():
        values = array.numpy()
        if tuple(values.shape) != tuple(global_state[key].shape) or not torch.isfinite(torch.from_numpy(values)).all():
            return False
    examples, loss = metrics.get(NUM_EXAMPLES), metrics.get(TRAIN_LOSS)
    return isinstance(examples, int) and examples > 0 and isinstance(loss, float) and math.isfinite(loss)


def failure_reasons(replies: list[Message]) -> list[str]:
    """Why each failed site failed, as the site said it (its name and the error); other errors by their code."""
    return sorted(reason for reply in replies if (reason := failure_reason(reply)) is not None)


def usable_evaluate_reply(reply: Message) -> bool:
    """An evaluation reply with its counts."""
    return reply_metrics(reply) is not None


def train_summary(replies: list[Message]) -> dict:
    """Example-weighted loss, summed record counts and the sites' compute time of a round's usable replies."""
    metrics = [reply.content["metrics"] for reply in replies]
    examples = [int(m[NUM_EXAMPLES]) for m in metrics]
    counts: Counter = Counter()
    for m in metrics:
        counts.update({k: int(v) for k, v in m.items() if k.startswith(COUNT_PREFIXES)})
    return {
        "loss": sum(n * float(m[TRAIN_LOSS]) for n, m in zip(examples, metrics)) / sum(examples),
        "examples": sum(examples),
        "site_seconds": sum(float(m[SITE_SECONDS]) for m in metrics),
        "counts": dict(sorted(counts.items())),
    }


def refused_budget(reply: Message) -> bool:
    """A site that declined the round because it would pass its privacy budget."""
    return reply_status(reply) == BUDGET_EXHAUSTED


def pii_by_site(replies: list[Message]) -> dict[str, dict[str, int]]:
    """Each site's PII filter report (entities found per field and type; non-zero counts only), by site."""
    return {reply_site(reply): pii_entities(reply.content["metrics"]) for reply in replies}


def dp_by_site(replies: list[Message], accountant: str) -> dict[str, dict]:
    """Each replying site's DP-SGD ledger figures (cumulative ε and steps), by site; refusals included."""
    sites = {}
    for reply in replies:
        metrics = reply_metrics(reply)
        figures = dp_figures(metrics) if metrics is not None else None
        if figures is None:
            continue
        status = BUDGET_EXHAUSTED if refused_budget(reply) else TRAINED
        sites[reply_site(reply)] = {**figures, "accountant": accountant, "status": status}
    return sites


def site_evaluation(replies: list[Message]) -> dict:
    """Sum the sites' held-out counts, overall and per attribute group."""
    totals: Counter = Counter()
    for reply in replies:
        totals.update({k: int(v) for k, v in reply.content["metrics"].items() if k != NUM_EXAMPLES})
    correct, total = totals[VQA_CORRECT], totals[VQA_TOTAL]
    return {
        "sites": len(replies),
        "vqa_accuracy": correct / total if total else 0.0,
        "correct": correct,
        "total": total,
        "groups": groups_from_metrics(totals),
    }
