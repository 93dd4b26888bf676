"""fedvlm's ServerApp for tests, run by Flower in its own process.

It records under FEDVLM_SPY's "dir" every reply the server receives (arrays as safetensors; the other records and
the arrays' names as text), the global adapter each train reply answered, the round configs sent and the server
optimizer state checkpointed. It injects the faults FEDVLM_SPY asks for: "poison_from" (from that round on,
"poisoned"'s update arrives sign-flipped and 100 times as large, and gate "poison" fails every aggregate holding
it), "reject_round" (gate "round-two" fails that round) and "leaves" (in "leave_rounds", the grid lists no node for
site "leaves", as a SuperLink lists no node whose SuperNode went offline)."""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import torch
from flwr.app import ArrayRecord, Context, Message
from flwr.serverapp import Grid, ServerApp
from safetensors.torch import save_file

from contract.messages import reply_site
from evaluation import gates
from server import app as fedvlm_server
from server import federation

SPY = json.loads(os.environ.get("FEDVLM_SPY", "{}"))
app = ServerApp()


def _append(folder: Path, name: str, payload: dict) -> None:
    with (folder / name).open("a", encoding="utf-8") as sink:
        sink.write(json.dumps(payload) + "\n")


def _save(state: dict[str, torch.Tensor], path: Path) -> None:
    save_file({key: value.detach().contiguous() for key, value in state.items()}, str(path))


def _record(folder: Path, current: dict) -> None:
    """Record every reply, the global state a train reply answered, round configs and checkpointed moments."""
    check_train, check_evaluate, count = (
        federation.usable_train_reply,
        federation.usable_evaluate_reply,
        itertools.count(),
    )

    def seen(reply: Message, sent: dict | None) -> None:
        index = next(count)
        entry = {"index": index, "round": current["round"], "type": reply.metadata.message_type}
        if reply.has_content():
            records = {name: record for name, record in reply.content.items() if name != "arrays"}
            arrays = list(reply.content["arrays"].keys()) if "arrays" in reply.content else []
            entry |= {"site": reply_site(reply), "content": f"{records!r} arrays: {arrays!r}"}
            if "metrics" in reply.content:
                entry["metrics"] = dict(reply.content["metrics"].items())
            if "arrays" in reply.content and sent is not None:
                _save(reply.content["arrays"].to_torch_state_dict(), folder / f"received-{index}.safetensors")
                _save(sent, folder / f"sent-{index}.safetensors")
        _append(folder, "replies.jsonl", entry)

    def train(reply: Message, global_state: dict) -> bool:
        seen(reply, global_state)
        return check_train(reply, global_state)

    def evaluate(reply: Message, *rest: object) -> bool:
        seen(reply, None)
        return check_evaluate(reply, *rest)

    federation.usable_train_reply, federation.usable_evaluate_reply = train, evaluate
    make_round_config, save = federation.Federation._round_config, federation.save_checkpoint

    def round_config(self: federation.Federation):
        record = make_round_config(self)
        _append(folder, "round_configs.jsonl", dict(record.items()))
        return record

    def checkpointing(checkpoints: Path, checkpoint, state: dict, moments: dict) -> None:
        tensors = {key: torch.as_tensor(value) for key, value in moments.items()}
        if tensors:
            _save(tensors, folder / f"moments-{checkpoint.round}.safetensors")
        return save(checkpoints, checkpoint, state, moments)

    federation.Federation._round_config, federation.save_checkpoint = round_config, checkpointing


def _poison(first_round: int, poisoned: str, current: dict) -> None:
    check = federation.usable_train_reply

    def poisoning(reply: Message, global_state: dict) -> bool:
        if current["round"] >= first_round and check(reply, global_state) and reply_site(reply) == poisoned:
            arrays = reply.content["arrays"].to_torch_state_dict()
            flipped = {key: global_state[key] - 100 * (value - global_state[key]) for key, value in arrays.items()}
            reply.content["arrays"] = ArrayRecord(flipped)
        return check(reply, global_state)

    federation.usable_train_reply = poisoning
    gate = lambda evidence: {"passed": not (evidence.server_round >= first_round and poisoned in evidence.sites)}  # noqa: E731
    gates.GATES["poison"] = (gates.GateSettings, lambda settings: gate)


def _reject(server_round: int) -> None:
    gate = lambda evidence: {"passed": evidence.server_round != server_round}  # noqa: E731
    gates.GATES["round-two"] = (gates.GateSettings, lambda settings: gate)


class _Departing:
    """The grid, without the node of a site in some rounds (its node id learned from the site's first reply)."""

    def __init__(self, grid: Grid, site: str, rounds: list[int], current: dict) -> None:
        self._grid, self._rounds, self._current, self._node = grid, rounds, current, None
        check = federation.usable_train_reply

        def learning(reply: Message, global_state: dict) -> bool:
            if reply.has_content() and reply_site(reply) == site:
                self._node = reply.metadata.src_node_id
            return check(reply, global_state)

        federation.usable_train_reply = learning

    def get_node_ids(self) -> list[int]:
        nodes = list(self._grid.get_node_ids())
        gone = self._current["round"] in self._rounds and self._node is not None
        return [node for node in nodes if not (gone and node == self._node)]

    def __getattr__(self, name: str) -> object:
        return getattr(self._grid, name)


def _track_rounds(current: dict) -> None:
    round_loop = federation.Federation._round

    def tracking(self: federation.Federation, server_round: int, *rest: object):
        current["round"] = server_round
        return round_loop(self, server_round, *rest)

    federation.Federation._round = tracking


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Install the spies and faults FEDVLM_SPY asks for, then run fedvlm's ServerApp."""
    current = {"round": 0}
    _track_rounds(current)
    if "dir" in SPY:
        _record(Path(SPY["dir"]), current)
    if "poison_from" in SPY:  # wraps the recording: what is recorded is what the server received
        _poison(SPY["poison_from"], SPY["poisoned"], current)
    if "reject_round" in SPY:
        _reject(SPY["reject_round"])
    if "leaves" in SPY:
        grid = _Departing(grid, SPY["leaves"], SPY["leave_rounds"], current)
    fedvlm_server.main(grid, context)
