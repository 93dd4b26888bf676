"""The utility gate: an accuracy floor, and no regression against the current global beyond noise and margin."""

from __future__ import annotations

from pydantic import Field

from evaluation.gates.noise import paired_change, z_score
from evaluation.gates.registry import Gate, GateSettings, RoundEvidence, outcome, register_gate


class UtilityGateSettings(GateSettings):
    """`[gates.utility]`: the floor, the allowed regression, and how sure a regression must be to count."""

    min_accuracy: float = Field(0.0, ge=0.0, le=1.0)  # the candidate's server-eval accuracy must reach it
    max_regression: float = Field(0.06, ge=0.0, le=1.0)  # accuracy the candidate may lose against the current
    confidence: float = Field(0.99, ge=0.5, lt=1.0)  # one-sided: rejected only if clearly over max_regression


@register_gate("utility", UtilityGateSettings)
def utility_gate(settings: UtilityGateSettings) -> Gate:
    """Rejects a candidate under the floor, or whose paired regression's lower bound exceeds max_regression."""
    z = z_score(settings.confidence)

    def judge(evidence: RoundEvidence) -> dict:
        accuracy = float(evidence.candidate["vqa_accuracy"])
        figures: dict = {"vqa_accuracy": accuracy, "min_accuracy": settings.min_accuracy}
        reasons = []
        if accuracy < settings.min_accuracy:
            reasons.append(f"accuracy {accuracy:.3f} under {settings.min_accuracy}")
        if evidence.candidate_items is None:
            return outcome(settings, False, figures, "cannot judge: no per-question results")
        if evidence.current_items is not None:
            change = paired_change(evidence.current_items.hits, evidence.candidate_items.hits)
            bound = change.regression - z * change.standard_error
            figures.update(
                worse=change.worse,
                better=change.better,
                total=change.total,
                regression=change.regression,
                standard_error=change.standard_error,
                regression_lower_bound=bound,
                max_regression=settings.max_regression,
            )
            if bound > settings.max_regression:
                reasons.append(f"regression {change.regression:.3f} clearly over {settings.max_regression}")
        return outcome(settings, not reasons, figures, "; ".join(reasons))

    return judge
