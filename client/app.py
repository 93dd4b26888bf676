"""The fedvlm Flower ClientApp: train LoRA on the site's filtered records; evaluate an adapter locally."""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import replace

import torch
from flwr.app import ArrayRecord, Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from client.central_clipping import central_clipping_mod
from client.dp_round import begin_dp_round
from client.role import RoleOf, SiteRole
from client.site import model_dir_for, site_data, site_model, verify_base_model
from contract.messages import (
    ARRAYS,
    BUDGET_EXHAUSTED,
    DP_EMPTY_STEPS,
    DP_SAMPLED_RECORDS,
    NUM_EXAMPLES,
    SITE_SECONDS,
    TRAIN_FINAL_LOSS,
    TRAIN_LOSS,
    TRAIN_STEPS,
    TRAINED,
    UNIT_WEIGHT,
    VQA_CORRECT,
    VQA_TOTAL,
    RoundInstruction,
    evaluate_reply,
    group_metrics,
    instruction_of,
    site_failure_text,
    train_reply,
)
from contract.node_config import NodeConfig
from evaluation.utility import score_vqa
from privacy.dp.dp_sgd import train_lora_dp
from vlm.adapters import adapter_state, load_adapter_state
from vlm.training import round_span, train_lora

DP_OPTIMIZER_STATE = "dp-optimizer"  # context state: the site's optimizer moments, carried across DP rounds
log = logging.getLogger("fedvlm.site")


class SiteFailure(RuntimeError):
    """What the server learns of a failed site: its name and the error's type, with the message only when fedvlm
    wrote it (files, lines, fields, never values; the site's data-path shown as <data-path>)."""


OWN_PACKAGES = ("client", "contract", "fedvlm", "privacy", "vlm", "evaluation", "server", "simulations", "storage")


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
            # The traceback stays in the site's log, at debug level only.
            node = NodeConfig.from_context(context)
            reason = describe_failure(error)
            if node.data_path:
                reason = reason.replace(node.data_path, "<data-path>")
            log.error("site %s failed: %s", handler.__name__, reason)
            log.debug("site %s failed", handler.__name__, exc_info=True)
            raise SiteFailure(site_failure_text(node.site, reason)) from None

    return run


def _prepare(msg: Message, node: NodeConfig, role: SiteRole | None = None):
    instruction = instruction_of(msg)
    config = instruction.run_config
    torch.set_num_threads(config.simulation.threads_per_site)
    model_dir = model_dir_for(config, node)
    verify_base_model(model_dir, instruction.base_model_hash)
    model, processor = site_model(str(model_dir), config.lora)
    load_adapter_state(model, msg.content[ARRAYS].to_torch_state_dict())
    folder, schema = str(node.data_folder(instruction)), config.data.attribute_schema()
    pii_cache = node.pii_cache_folder()
    data = site_data(folder, config.data.holdout_fraction, config.privacy.pii, schema, pii_cache)
    if role is not None:
        if role.skips_pii_filter:
            raw_settings = config.privacy.pii.model_copy(update={"enabled": False})
            raw = site_data(folder, config.data.holdout_fraction, raw_settings, schema, pii_cache)
            data = replace(raw, load_report=data.load_report, filter_counts=data.filter_counts)
        data = replace(data, train=role.records(data.train))
    return instruction, model, processor, data


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big")


def train(msg: Message, context: Context, role_of: RoleOf | None = None) -> Message:
    """Train the received global adapter on this site's training split; reply with the update and counts.

    Under DP, a site whose next round would pass its privacy budget replies without arrays, with its ledger's
    figures and status 'budget-exhausted'; the spend of a round is written to the ledger before its first step.
    A simulated site whose role_of gives it a role this round alters its records or its update as that role says.
    """
    started = time.monotonic()
    node = NodeConfig.from_context(context)
    role = role_of(instruction_of(msg), node) if role_of is not None else None
    instruction, model, processor, data = _prepare(msg, node, role)
    config, server_round = instruction.run_config, instruction.server_round
    torch.manual_seed(_seed(config.data.seed, server_round, node.stable_id))
    batches_seed = _seed(config.data.seed, server_round, node.stable_id, "batches")
    span = round_span(server_round, config.federation.rounds)
    settings = role.train_settings(config.train) if role is not None else config.train
    metrics = {NUM_EXAMPLES: len(data.train), **data.counts()}
    if config.privacy.central.enabled:
        metrics[UNIT_WEIGHT] = 1
    if config.privacy.dp.enabled:
        result = _train_dp(instruction, node, context, model, processor, data, settings, batches_seed, metrics)
        if result is None:
            metrics[NUM_EXAMPLES] = 0
            return train_reply(msg, node.site, BUDGET_EXHAUSTED, metrics, dataset=data.manifest)
    else:
        result = train_lora(
            model, processor, data.train, data.images, settings, batches_seed, span, instruction.proximal_mu
        )
    metrics.update({TRAIN_LOSS: result.mean_loss, TRAIN_FINAL_LOSS: result.final_loss, TRAIN_STEPS: result.steps})
    adapter = adapter_state(model)
    if role is not None:
        adapter = role.update(adapter, msg.content[ARRAYS].to_torch_state_dict())
    metrics[SITE_SECONDS] = time.monotonic() - started
    return train_reply(msg, node.site, TRAINED, metrics, adapter, data.manifest)


def _train_dp(
    instruction: RoundInstruction, node: NodeConfig, context: Context, model, processor, data, settings, seed, metrics
):
    """DP-SGD for this round, its figures added to metrics; None when the round would pass the site's budget."""
    config = instruction.run_config
    dp_round = begin_dp_round(instruction, node, len(data.train))
    metrics.update(dp_round.metrics())
    if dp_round.refused:
        return None
    kept = context.state.array_records.get(DP_OPTIMIZER_STATE)
    result = train_lora_dp(
        model,
        processor,
        data.train,
        data.images,
        settings,
        dp_round.ledger.plan,
        seed,
        config.privacy.dp.secure_rng,
        optimizer_state=kept.to_torch_state_dict() if kept else None,
        span=round_span(instruction.server_round, config.federation.rounds),
        proximal_mu=instruction.proximal_mu,
    )
    context.state[DP_OPTIMIZER_STATE] = ArrayRecord(result.optimizer_state)
    metrics.update({DP_EMPTY_STEPS: result.empty_steps, DP_SAMPLED_RECORDS: result.sampled_records})
    return result


def evaluate(msg: Message, context: Context) -> Message:
    """Score the received adapter on this site's held-out split: counts overall and per attribute group."""
    instruction, model, processor, data = _prepare(msg, NodeConfig.from_context(context))
    score = score_vqa(model, processor, data.holdout)
    metrics = {NUM_EXAMPLES: score.total, VQA_CORRECT: score.correct, VQA_TOTAL: score.total}
    metrics.update(group_metrics(score.group_counts(instruction.run_config.data.min_group_size)))
    return evaluate_reply(msg, metrics)


def build_client_app(mods: list[Mod] | None = None, role_of: RoleOf | None = None) -> ClientApp:
    """A ClientApp whose train messages pass through mods (default: central DP's client-side clipping).

    role_of (simulation only) gives a site its role in a round, e.g. an adversary's; without it every site is honest.
    """
    client_app = ClientApp()
    handler = functools.update_wrapper(functools.partial(train, role_of=role_of), train)
    client_app.train(mods=[central_clipping_mod] if mods is None else mods)(_contained(handler))
    client_app.evaluate()(_contained(evaluate))
    return client_app


app = build_client_app()
