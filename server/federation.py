"""The server's round loop: sample, train, aggregate, evaluate, gate, accept or roll back (or find the culprit,
quarantine it and accept the aggregate without it), checkpoint."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid

from contract.data_layout import SERVER_EVAL
from contract.messages import RoundInstruction, reply_dataset, reply_site
from contract.run_config import RunConfig
from evaluation.gates import RoundEvidence, Verdict, build_gates, judge
from evaluation.items import ItemResults
from evaluation.leakage import identity_pairs
from server import environment
from server.attribution import attribute
from server.audit_trail import AuditTrail
from server.central_dp import CentralLedger
from server.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from server.display import RoundDisplay
from server.evaluator import Assessment, ServerEvaluator
from server.quarantine import Quarantine, sampling_without
from server.replies import (
    array_bytes,
    dp_by_site,
    failure_reasons,
    pii_by_site,
    refused_budget,
    site_evaluation,
    train_summary,
    usable_evaluate_reply,
    usable_train_reply,
)
from server.run_dir import RunDir
from server.strategies import build_strategy, load_optimizer_state, optimizer_state, restore, snapshot
from vlm.adapters import state_bytes, state_hash
from vlm.loading import weights_hash
from vlm.training import rate_share, round_span


def data_root(config: RunConfig, run_dir: RunDir) -> Path:
    """config data.root, else the run directory's data/ (synthetic data that the simulation runner wrote)."""
    root = Path(config.data.root) if config.data.root else run_dir.data
    if not (root / SERVER_EVAL).is_dir():
        raise FileNotFoundError(
            f"{root / SERVER_EVAL}: no server evaluation set; set data.root, or write synthetic data there with "
            "`fedvlm data synth`"
        )
    return root


class Federation:
    """One run of the round loop over a Grid, writing everything into a run directory."""

    def __init__(self, grid: Grid, config: RunConfig, run_dir: RunDir) -> None:
        self.grid, self.config, self.run_dir = grid, config, run_dir
        self.gates = build_gates(config.gates.tables)
        self.audit = AuditTrail(run_dir, config.audit)
        safety = config.gates.tables.get("safety")
        self.probes = (safety.probes, safety.max_new_tokens) if safety is not None else (0, 0)
        self.current: Assessment | None = None  # the current global's per-question results and answers (memory only)
        self.updates: dict[str, dict[str, torch.Tensor]] = {}  # this round's site updates (memory only)
        contributions = config.gates.tables.get("contributions")
        self.site_questions = contributions.questions if contributions is not None else 0
        self.site_swaps = contributions.swaps if contributions is not None else {}
        self.site_items: dict[str, ItemResults] = {}  # this round's sites' own adapters on those questions
        self.probe_sites = safety is not None and safety.sites
        self.site_generations: dict[str, tuple[str, ...]] = {}  # and their answers to the safety probes
        leakage = config.gates.tables.get("leakage")
        self.identity_pairs = identity_pairs(leakage.texts, config.privacy.pii) if leakage is not None else []
        self.identity_images = leakage.images if leakage is not None else 0
        self.site_preferences: dict[str, tuple[float, ...]] = {}  # and their preference for identities
        self.quarantine = Quarantine(config.gates.quarantine_rounds)
        self.model_dir = config.model.directory()
        self.data_root = data_root(config, run_dir)
        self.evaluator = ServerEvaluator(
            self.model_dir,
            config.lora,
            self.data_root / SERVER_EVAL,
            config.data.attribute_schema(),
            config.data.min_group_size,
        )
        self.strategy = build_strategy(config)
        self.base_model_hash = weights_hash(self.model_dir)
        self.dp_steps: dict[str, int] = {}  # DP-SGD steps each site reported; a site's ledger may never hold fewer
        self.central = self._central_ledger(releases=0)

    def _round_config(self) -> ConfigRecord:
        instruction = RoundInstruction(
            run_config=self.config,
            base_model_hash=self.base_model_hash,
            data_root=str(self.data_root.resolve()),
            federation_id=self.run_dir.federation_id(),
            site_state_root=str(self.run_dir.site_state.resolve()),
            dp_recorded_steps=dict(self.dp_steps),
        )
        return instruction.encode()

    def _privacy(self, replies: list) -> dict:
        """metrics.jsonl's privacy: each site's DP-SGD ledger figures, and the central ε (or None)."""
        sites = dp_by_site(replies, self.config.privacy.dp.accountant)
        self.dp_steps.update({site: figures["steps"] for site, figures in sites.items()})
        return {"sites": sites, "central": self.central.record(self.strategy) if self.central else None}

    def run(self, resume: bool) -> None:
        """Rounds from the start (round 0 = the starting model) or from the last checkpoint."""
        if resume:
            checkpoint, global_state = self._resume()
        else:
            self._record_environment(resumed_from=None)
            self.audit.run_start(self.base_model_hash)
            checkpoint, global_state = self._start()
        rounds = self.config.federation.rounds
        with RoundDisplay(rounds, completed=checkpoint.round) as display:
            if not resume:
                display.show(self.run_dir.read_metrics()[0])
            for server_round in range(checkpoint.round + 1, rounds + 1):
                row, global_state, checkpoint = self._round(server_round, global_state, checkpoint)
                if server_round == rounds:
                    row["site_evaluation"] = self._evaluate_sites(server_round, global_state)
                self._commit(row, checkpoint, global_state)
                display.show(row)
        self.audit.run_end(rounds, state_hash(global_state))

    def _record_environment(self, resumed_from: int | None) -> None:
        described = environment.describe(self.base_model_hash, self.config.simulation.threads_per_site)
        environment.record(self.run_dir.environment, described, resumed_from=resumed_from)

    def _assess(self, state: dict) -> Assessment:
        return self.evaluator.assess(state, *self.probes)

    def _judge(self, server_round: int, assessment: Assessment, current: dict, row: dict, sites: tuple) -> Verdict:
        """The gates' verdict on an assessed aggregate holding sites' updates, against the current global."""

        def held(per_site: dict) -> dict:
            return {site: per_site[site] for site in sites if site in per_site}

        span = round_span(server_round, self.config.federation.rounds)
        evidence = RoundEvidence(
            updates=held(self.updates),
            site_items=held(self.site_items),
            site_generations=held(self.site_generations),
            site_preferences=held(self.site_preferences),
            server_round=server_round,
            rate_share=rate_share(self.config.train, span) if server_round else 1.0,  # round 0 trains nothing
            candidate=assessment.summary,
            current=current,
            train=row.get("train", {}),
            privacy=row["privacy"],
            sites=sites,
            candidate_items=assessment.items,
            current_items=self.current.items if self.current else None,
            generations=assessment.generations,
            current_generations=self.current.generations if self.current else None,
        )
        return judge(self.gates, evidence)

    def _start(self) -> tuple[Checkpoint, dict]:
        global_state = self.evaluator.initial_state()
        assessment = self._assess(global_state)
        evaluation = assessment.summary
        checkpoint = Checkpoint(0, 0, evaluation)
        self.current = assessment
        privacy = self._privacy([])
        # Round 0: every gate's figures on the base model (recorded; the starting model is not judged away).
        verdict = self._judge(0, assessment, evaluation, {"privacy": privacy}, ())
        row = {
            "round": 0,
            "status": "accepted",
            "accepted": True,
            "sampled": 0,
            "participants": 0,
            "failures": 0,
            "utility": evaluation,
            "bytes": {"down": 0, "up": 0},
            "privacy": privacy,
            "gates": verdict.results,
            "aggregated_sites": [],
            "attribution": None,
            "quarantined": self.quarantine.record(0),
            "adapter_hash": state_hash(global_state),
        }
        self._commit(row, checkpoint, global_state)
        return checkpoint, global_state

    def _resume(self) -> tuple[Checkpoint, dict]:
        """Back to the last checkpoint; publishing first refuses an adapter that does not fit the model."""
        checkpoint, global_state, moments = load_checkpoint(self.run_dir.checkpoints)
        self.evaluator.publish(global_state, self.run_dir.adapter)
        load_optimizer_state(self.strategy, moments)
        recorded = self.run_dir.read_metrics()
        self.run_dir.truncate_metrics(checkpoint.round)
        kept = self.run_dir.read_metrics()
        self._restore_privacy(kept)
        self.quarantine = Quarantine.from_record(self.config.gates.quarantine_rounds, kept[-1].get("quarantined"))
        self.current = self._assess(global_state)
        self._record_environment(resumed_from=checkpoint.round)
        if self.audit.last_round() < 0:  # a run directory older than its audit log
            self.audit.run_start(self.base_model_hash)
        discarded = sorted({row["round"] for row in recorded} - {row["round"] for row in kept})
        self.audit.resume(checkpoint.round, discarded)
        audited = self.audit.last_round()
        unaudited = [row for row in kept if row["round"] > audited]  # committed, then a crash before its entry
        for row in unaudited:
            self.audit.round(row, with_files=row is unaudited[-1])
        return checkpoint, global_state

    def _restore_privacy(self, rows: list[dict]) -> None:
        """Sites' recorded DP steps and central releases, as the kept metrics rows say."""
        for row in rows:
            privacy = row.get("privacy") or {}
            self.dp_steps.update({site: figures["steps"] for site, figures in privacy.get("sites", {}).items()})
        central = (rows[-1].get("privacy") or {}).get("central") if rows else None
        if central:
            self.central = self._central_ledger(central["releases"])

    def _central_ledger(self, releases: int) -> CentralLedger | None:
        central = self.config.privacy.central
        return CentralLedger(central, self.config.sites_per_round(), releases) if central.enabled else None

    def _commit(self, row: dict, checkpoint: Checkpoint, global_state: dict) -> None:
        """Metrics row, then checkpoint, then the published adapter: each step redoable after a crash."""
        self.run_dir.append_metrics(row)
        save_checkpoint(self.run_dir.checkpoints, checkpoint, global_state, optimizer_state(self.strategy))
        self.evaluator.publish(global_state, self.run_dir.adapter)
        self.audit.round(row)

    def _round(self, server_round: int, global_state: dict, checkpoint: Checkpoint) -> tuple[dict, dict, Checkpoint]:
        started = time.monotonic()
        kept = Checkpoint(server_round, checkpoint.last_accepted_round, checkpoint.accepted_evaluation)
        out = self.quarantine.kept_out(server_round)
        nodes = list(self.grid.get_node_ids())
        reason = self.quarantine.shortfall(server_round, nodes, self.config.federation.min_train_nodes)
        if reason is not None:
            row = {"round": server_round, "sampled": 0, "participants": 0, "refused": 0, "failures": 0}
            row["privacy"] = self._privacy([])
            return self._skip(row, reason, checkpoint, started, global_state), global_state, kept
        sent = ArrayRecord(global_state)
        with sampling_without(self.strategy, self.grid, self.quarantine.hidden_nodes(server_round)) as grid:
            messages = list(self.strategy.configure_train(server_round, sent, self._round_config(), grid))
        replies = list(self.grid.send_and_receive(messages, timeout=self.config.federation.round_timeout_s))
        # In site order: the aggregate's float sums must not depend on which reply arrived first.
        usable = sorted((reply for reply in replies if usable_train_reply(reply, global_state)), key=reply_site)
        self.quarantine.learn(usable)
        valid = [reply for reply in usable if reply_site(reply) not in out]  # a site sampled before its id was known
        refused = sum(refused_budget(reply) for reply in replies)
        row = {
            "round": server_round,
            "train_phase_seconds": round(time.monotonic() - started, 3),
            "sampled": len(messages),
            "participants": len(valid),
            "refused": refused,
            "failures": len(messages) - len(usable) - refused,
            "bytes": {
                "down": len(messages) * state_bytes(global_state),
                "up": sum(array_bytes(reply.content["arrays"]) for reply in usable),
            },
        }
        if reasons := failure_reasons(replies):
            row["site_failures"] = reasons
        self.updates = {reply_site(reply): _update(reply, global_state) for reply in valid}
        if valid:
            row["update_hashes"] = {reply_site(reply): _update_hash(reply) for reply in valid}
            row["dataset_hashes"] = {reply_site(reply): reply_dataset(reply) for reply in valid}
            row["train"] = train_summary(valid)
            row["pii"] = {"sites": pii_by_site(valid)}
        saved = snapshot(self.strategy)
        # Central DP noise is sized for every sampled site's update: with fewer, the round is not released.
        required = self.config.sites_per_round() if self.central else self.config.federation.min_train_nodes
        aggregated = self.strategy.aggregate_train(server_round, valid)[0] if len(valid) >= required else None
        if aggregated is not None and self.central:
            self.central.release()  # the gate will see it, accepted or not
        row["privacy"] = self._privacy(replies)
        ignored = len(usable) - len(valid)
        if aggregated is None:
            restore(self.strategy, saved)
            reason = f"{len(valid)} usable replies, {required} required" if len(valid) < required else "no aggregate"
            row["quarantined"] = self.quarantine.record(server_round, ignored=ignored)
            return self._skip(row, reason, checkpoint, started, global_state), global_state, kept
        candidate = {key: value.to(torch.float32) for key, value in aggregated.to_torch_state_dict().items()}
        sites = _sites(valid)
        judging = time.monotonic()
        self._assess_sites(global_state)
        assessment = self._assess(candidate)
        verdict = self._judge(server_round, assessment, checkpoint.accepted_evaluation, row, sites)
        row.update(
            status="accepted" if verdict.accepted else "rejected",
            accepted=verdict.accepted,
            utility=assessment.summary,
            gates=verdict.results,
            aggregated_sites=list(sites) if verdict.accepted else [],
            attribution=None,
            candidate_hash=state_hash(candidate),
        )
        added: tuple[str, ...] = ()
        if not verdict.accepted and self.config.quarantine():
            restore(self.strategy, saved)
            assessment, candidate, added = self._attribute(server_round, valid, checkpoint, row)
        elif not verdict.accepted:
            restore(self.strategy, saved)
        row["quarantined"] = self.quarantine.record(server_round, added, ignored)
        row["gate_seconds"] = round(time.monotonic() - judging, 3)  # evaluations and gates, trials included
        if not row["accepted"]:
            return self._finish(row, started, global_state), global_state, kept
        self.current = assessment
        accepted = Checkpoint(server_round, server_round, assessment.summary)
        return self._finish(row, started, candidate), candidate, accepted

    def _assess_sites(self, global_state: dict) -> None:
        """Each site's own adapter (the global plus its update alone) on the per-site gates' items."""
        self.site_items, self.site_generations, self.site_preferences = {}, {}, {}
        for site, update in self.updates.items():
            own = {key: global_state[key] + update[key] for key in global_state}
            if self.site_questions:
                self.site_items[site] = self.evaluator.question_items(own, self.site_questions, self.site_swaps)
            if self.probe_sites:
                self.site_generations[site] = self.evaluator.probe_answers(own, *self.probes)
            if self.identity_pairs:
                self.site_preferences[site] = self.evaluator.identity_preferences(
                    own, self.identity_pairs, self.identity_images
                )

    def _attribute(
        self, server_round: int, valid: list[Message], checkpoint: Checkpoint, row: dict
    ) -> tuple[Assessment | None, dict | None, tuple[str, ...]]:
        """After a rejection: find the culprit, quarantine it, and accept the aggregate without it if it passed."""

        def judge_subset(state: dict, sites: tuple[str, ...]) -> tuple[Assessment, Verdict]:
            assessment = self._assess(state)
            return assessment, self._judge(server_round, assessment, checkpoint.accepted_evaluation, row, sites)

        failed = [result for result in row["gates"].values() if result.get("passed") is False]
        named = tuple(site for result in failed for site in result.get("figures", {}).get("strays", ()))
        min_updates, group_testing_from = self.config.federation.min_train_nodes, self.config.gates.group_testing_from
        found = attribute(self.strategy, server_round, valid, min_updates, judge_subset, named, group_testing_from)
        row["attribution"] = found.record()
        trial = found.accepted
        if trial is None:
            return None, None, ()
        self.quarantine.add(found.suspects, server_round)
        restore(self.strategy, trial.strategy_after)
        row.update(
            status="accepted",
            accepted=True,
            utility=trial.assessment.summary,
            aggregated_sites=list(trial.sites),
        )
        row["attribution"]["gates"] = trial.verdict.results
        return trial.assessment, trial.state, found.suspects

    def _skip(self, row: dict, reason: str, checkpoint: Checkpoint, started: float, global_state: dict) -> dict:
        """A round without a candidate: nothing judged, the global adapter kept."""
        not_judged = {"passed": None, "figures": {}, "reason": "not judged: no aggregate"}
        row.update(
            status="skipped",
            accepted=False,
            utility=checkpoint.accepted_evaluation,
            reason=reason,
            gates={name: {**not_judged, "mode": settings.mode} for name, (settings, _) in self.gates.items()},
            aggregated_sites=[],
            attribution=None,
        )
        row.setdefault("quarantined", self.quarantine.record(row["round"]))
        return self._finish(row, started, global_state)

    def _evaluate_sites(self, server_round: int, global_state: dict) -> dict:
        sent = ArrayRecord(global_state)
        messages = list(self.strategy.configure_evaluate(server_round, sent, self._round_config(), self.grid))
        replies = self.grid.send_and_receive(messages, timeout=self.config.federation.round_timeout_s)
        return site_evaluation([reply for reply in replies if usable_evaluate_reply(reply)])

    @staticmethod
    def _finish(row: dict, started: float, global_state: dict) -> dict:
        row["adapter_hash"] = state_hash(global_state)
        row["seconds"] = round(time.monotonic() - started, 3)
        return row


def _sites(replies: list[Message]) -> tuple[str, ...]:
    return tuple(sorted(reply_site(reply) for reply in replies))


def _update(reply: Message, global_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A site's update: its adapter minus the global adapter it received."""
    arrays = reply.content["arrays"].to_torch_state_dict()
    return {key: arrays[key].to(torch.float32) - global_state[key] for key in global_state}


def _update_hash(reply: Message) -> str:
    return state_hash(reply.content["arrays"].to_torch_state_dict())
