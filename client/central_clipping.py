"""The client side of central DP with client-side clipping: Flower's clipping mods, only when the server asks."""

from __future__ import annotations

from flwr.app import Context, Message
from flwr.clientapp.mod import adaptiveclipping_mod, fixedclipping_mod
from flwr.clientapp.typing import ClientAppCallable
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from contract.messages import CONFIG, instruction_of, reply_arrays


def central_clipping_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Clip the update with Flower's fixed or adaptive mod when the train config carries a clipping norm.

    A site that declines the round (privacy budget) sends no update; its reply passes through unclipped.
    """
    if KEY_CLIPPING_NORM not in msg.content[CONFIG]:
        return call_next(msg, context)
    inner: list[Message] = []

    def train(message: Message, ctx: Context) -> Message:
        inner.append(call_next(message, ctx))
        return inner[0]

    adaptive = instruction_of(msg).run_config.privacy.central.adaptive
    clipped = (adaptiveclipping_mod if adaptive else fixedclipping_mod)(msg, context, train)
    if inner and inner[0].has_content() and reply_arrays(inner[0]) is None:
        return inner[0]
    return clipped
