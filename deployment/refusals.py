"""Why Flower refused a SuperNode, in one line, from what the SuperNode logged (Flower 1.42's codes and messages)."""

from __future__ import annotations

import re

# (pattern in the SuperNode's log, what it means); the first that matches names the cause.
REFUSALS: tuple[tuple[str, str], ...] = (
    (r"certificate has expired", "the SuperLink's TLS certificate has expired"),
    (r"certificate is not yet valid", "the SuperLink's TLS certificate is not valid yet"),
    (
        r"CERTIFICATE_VERIFY_FAILED",
        "the SuperLink's TLS certificate is not signed by the CA this SuperNode trusts (wrong CA)",
    ),
    (r"code: 2004\]", "its public key is not registered with the SuperLink (flwr supernode register)"),
    (r"code: 2001\]", "it presented no authentication key; the SuperLink admits registered SuperNodes only"),
    (r"Exit Code: 303", "it connects in plaintext (--insecure); the SuperLink requires TLS"),
    (r"WRONG_VERSION_NUMBER|wrong version number", "plaintext and TLS ends do not match"),
)


def refusal_reason(log_text: str) -> str | None:
    """The cause of a refused SuperNode named by its log, or None when the log names none of the known ones."""
    for pattern, meaning in REFUSALS:
        if re.search(pattern, log_text):
            return meaning
    return None
