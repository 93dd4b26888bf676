"""Gates by name: the registry and the judging call, with the built-in gates registered on import."""

from evaluation.gates import bias, contributions, leakage, privacy, safety, updates, utility  # noqa: F401  (registers the built-in gates)
from evaluation.gates.registry import (
    GATES,
    Gate,
    GateSettings,
    RoundEvidence,
    Verdict,
    build_gates,
    judge,
    outcome,
    register_gate,
    validate_gate_settings,
)

__all__ = [
    "GATES",
    "Gate",
    "GateSettings",
    "RoundEvidence",
    "Verdict",
    "build_gates",
    "judge",
    "outcome",
    "register_gate",
    "validate_gate_settings",
]
