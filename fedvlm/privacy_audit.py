"""`fedvlm audit privacy RUN_DIR`: score the secret canaries with the run's published adapter, bound ε empirically."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from audit.canaries import Canary, read_secret, secret_path
from audit.errors import AuditError
from audit.privacy_audit import accountant_epsilon, audit_figures, default_guesses
from contract.run_config import ConfigError, RunConfig, load_config
from fedvlm.cli_args import positive_int
from server.run_dir import RunDir
from storage.durable import replace_file

if TYPE_CHECKING:
    from evaluation.canary_scores import CanaryScores

AUDIT_FILE = "privacy_audit.json"
DEFAULT_DELTA = 1e-5  # the audit's δ when the run had no DP


def run_delta(config: RunConfig) -> float:
    """The δ of the run's DP guarantee (sites' DP-SGD, else central DP), else DEFAULT_DELTA."""
    if config.privacy.dp.enabled:
        return config.privacy.dp.delta
    return config.privacy.central.delta if config.privacy.central.enabled else DEFAULT_DELTA


def _inputs(run_dir: RunDir, secret: Path) -> tuple[tuple[Canary, ...], RunConfig]:
    """The secret's canaries and the run's configuration, or ConfigError naming what is missing."""
    if not run_dir.root.is_dir():
        raise ConfigError(f"{run_dir.root}: not a folder")
    try:
        canaries = read_secret(secret)
    except AuditError as error:
        raise ConfigError(str(error)) from None
    if len({len(canary.alternatives) for canary in canaries}) != 1:
        raise ConfigError(f"{secret}: canaries with different numbers of alternatives")
    if not (run_dir.adapter / "adapter_config.json").is_file():
        raise ConfigError(f"{run_dir.adapter}: no published adapter (the run never completed a round)")
    return canaries, load_config(run_dir.config)


def _scores(config: RunConfig, run_dir: RunDir, canaries: tuple[Canary, ...]) -> CanaryScores:
    """The canaries scored by the run's published adapter on its base model (imported late: torch is slow)."""
    from evaluation.canary_scores import CanaryProbe, load_published, score_canaries

    try:
        model, processor = load_published(config.model.directory(), run_dir.adapter)
    except Exception as error:  # a damaged adapter or base model: one line, not a traceback
        raise ConfigError(f"{run_dir.adapter}: cannot load the adapter ({type(error).__name__}: {error})") from None
    probes = [CanaryProbe(c.image(), c.question, c.answer, c.alternatives) for c in canaries]
    return score_canaries(model, processor, probes)


def _print(figures: dict) -> None:
    accountant = figures["accountant_epsilon"]
    rows = [
        ("canaries (included)", f"{figures['canaries']} ({figures['included']})"),
        ("guesses (correct)", f"{figures['guesses']} ({figures['correct']})"),
        (f"empirical ε, {figures['confidence']:.0%} lower bound", f"{figures['epsilon_lower_bound']:.3f}"),
        ("accountant's ε", "∞ (no DP)" if accountant is None else f"{accountant:.3f}"),
        ("δ", f"{figures['delta']:g}"),
        ("membership AUC", "-" if figures["auc"] is None else f"{figures['auc']:.3f}"),
        (
            f"exposure, bits of {math.log2(figures['candidates']):.2f} (included / excluded)",
            " / ".join(
                "-" if x is None else f"{x:.2f}" for x in (figures["exposure_included"], figures["exposure_excluded"])
            ),
        ),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


def cmd_privacy(args: argparse.Namespace) -> int:
    run_dir = RunDir(Path(args.run_dir))
    secret = Path(args.secret) if args.secret else secret_path(run_dir.root)
    canaries, config = _inputs(run_dir, secret)
    k = args.k if args.k is not None else default_guesses(len(canaries))
    if 2 * k > len(canaries):
        raise ConfigError(
            f"--k {k}: two sides of {k} guesses need at least {2 * k} canaries, the secret has {len(canaries)}"
        )
    scores = _scores(config, run_dir, canaries)
    figures = audit_figures(
        scores.margins,
        [canary.included for canary in canaries],
        scores.ranks,
        1 + len(canaries[0].alternatives),
        k,
        run_delta(config),
        accountant_epsilon(run_dir.read_metrics()),
    )
    replace_file(run_dir.root / AUDIT_FILE, json.dumps(figures, indent=1))
    _print(figures)
    print(f"wrote {run_dir.root / AUDIT_FILE}")
    if not figures["within_accountant"]:
        print("fedvlm audit: FAILED: the empirical ε exceeds the accountant's ε (a bug to find)", file=sys.stderr)
        return 1
    return 0


def add_privacy_command(audit: argparse._SubParsersAction) -> None:
    """`audit privacy RUN_DIR [--secret FILE] [--k K]`."""
    privacy = audit.add_parser("privacy", help="empirical privacy audit with the run's canaries, beside the accountant")
    privacy.add_argument("run_dir", metavar="RUN_DIR")
    privacy.add_argument("--secret", metavar="FILE", help="the canaries' secret (default: RUN_DIR.audit-secret.json)")
    privacy.add_argument(
        "--k", type=positive_int, metavar="K", help="guesses on each side (default: a fifth of the canaries)"
    )
    privacy.set_defaults(handler=cmd_privacy)
