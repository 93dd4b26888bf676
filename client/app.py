"""The fedvlm Flower ClientApp: train LoRA on the site's filtered records; evaluate an adapter locally."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from client.central_clipping import central_clipping_mod
from client.dp_round import begin_dp_round, site_name
from client.site import data_path_for, model_dir_for, site_data, site_model, verify_base_model
from evaluation.utility import group_metrics, score_vqa
from fedvlm.config import RunConfig
from fedvlm.messages import BUDGET_EXHAUSTED, SITE_RECORD, TRAINED, UNIT_WEIGHT_KEY
from privacy.dp.dp_sgd import train_lora_dp
from vlm.adapters import adapter_state, load_adapter_state
from vlm.training import round_span, train_lora

app = ClientApp()
DP_OPTIMIZER_STATE = "dp-optimizer"  # context state: the site's optimizer moments, carried across DP rounds
log = logging.getLogger("fedvlm.site")


class SiteFailure(RuntimeError):
    """What the server learns of a failed site: the error's type, never its message (paths, text)."""


OWN_PACKAGES = ("client", "fedvlm", "privacy", "vlm", "evaluation", "server", "simulations")


def describe_failure(error: Exception) -> str:
    """One line for the site's log: the error's type, with its message only when fedvlm wrote it.

    fedvlm's messages name files, lines, fields and keys, never values; a library's message may quote data.
    """
    name = type(error).__name__
    own = type(error).__module__.split(".")[0] in OWN_PACKAGES
    return f"{name}: {error}" if own and str(error) else name


def _contained(handler: Callable[[Message, Context], Message]) -> Callable[[Message, Context], Message]:
    @functools.wraps(handler)
    def run(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as error:
            # The details stay in the site's log: one line, the traceback at debug level only.
            log.error("site %s failed: %s", handler.__name__, describe_failure(error))
            log.debug("site %s failed", handler.__name__, exc_info=True)
            raise SiteFailure(type(error).__name__) from None

    return run


def _prepare(msg: Message, context: Context):
    settings = msg.content["config"]
    config = RunConfig.model_validate_json(str(settings["run-config"]))
    torch.set_num_threads(config.simulation.threads_per_client)
    model_dir = model_dir_for(config, dict(context.node_config))
    verify_base_model(model_dir, str(settings["base-model-hash"]))
    model, processor = site_model(str(model_dir), config.lora.settings())
    load_adapter_state(model, msg.content["arrays"].to_torch_state_dict())
    data_path = data_path_for(dict(context.node_config), str(settings["data-root"]))
    data = site_data(
        data_path, config.data.holdout_fraction, config.privacy.pii.model_dump_json(), config.data.attribute_schema()
    )
    return config, settings, model, processor, data


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big")


@app.train(mods=[central_clipping_mod])
@_contained
def train(msg: Message, context: Context) -> Message:
    """Train the received global adapter on this site's training split; reply with the update and counts.

    Under DP, a site whose next round would pass its privacy budget replies without arrays, with its ledger's
    figures and status 'budget-exhausted'; the spend of a round is written to the ledger before its first step.
    """
    started = time.monotonic()
    config, settings, model, processor, data = _prepare(msg, context)
    server_round = int(settings["server-round"])
    site = site_name(dict(context.node_config), context.node_id)
    stable_id = context.node_config.get("partition-id", context.node_id)  # stable across simulation runs
    torch.manual_seed(_seed(config.data.seed, server_round, stable_id))
    train_settings = config.train.settings(float(settings.get("proximal-mu", 0.0)))
    batches_seed = _seed(config.data.seed, server_round, stable_id, "batches")
    span = round_span(server_round, config.federation.rounds)
    metrics = MetricRecord({"num-examples": len(data.train), **data.counts()})
    if config.privacy.central.enabled:
        metrics[UNIT_WEIGHT_KEY] = 1
    if config.privacy.dp.enabled:
        dp_round = begin_dp_round(
            config, dict(settings), dict(context.node_config), site, server_round, len(data.train)
        )
        metrics.update(dp_round.metrics())
        if dp_round.refused:
            metrics["num-examples"] = 0
            status = ConfigRecord({"name": site, "status": BUDGET_EXHAUSTED})
            return Message(RecordDict({"metrics": metrics, SITE_RECORD: status}), reply_to=msg)
        kept = context.state.array_records.get(DP_OPTIMIZER_STATE)
        result = train_lora_dp(
            model,
            processor,
            data.train,
            data.images,
            train_settings,
            dp_round.ledger.plan,
            batches_seed,
            config.privacy.dp.secure_rng,
            optimizer_state=kept.to_torch_state_dict() if kept else None,
            span=span,
        )
        context.state[DP_OPTIMIZER_STATE] = ArrayRecord(result.optimizer_state)
        metrics.update({"dp-empty-steps": result.empty_steps, "dp-sampled-records": result.sampled_records})
    else:
        result = train_lora(model, processor, data.train, data.images, train_settings, batches_seed, span)
    metrics.update({"train-loss": result.mean_loss, "train-final-loss": result.final_loss, "train-steps": result.steps})
    arrays = ArrayRecord(adapter_state(model))
    metrics["client-seconds"] = time.monotonic() - started
    status = ConfigRecord({"name": site, "status": TRAINED})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics, SITE_RECORD: status}), reply_to=msg)


@app.evaluate()
@_contained
def evaluate(msg: Message, context: Context) -> Message:
    """Score the received adapter on this site's held-out split: counts overall and per attribute group."""
    config, _, model, processor, data = _prepare(msg, context)
    score = score_vqa(model, processor, data.holdout)
    metrics = {"num-examples": score.total, "vqa-correct": score.correct, "vqa-total": score.total}
    metrics.update(group_metrics(score.group_counts(config.data.min_group_size)))
    return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=msg)
