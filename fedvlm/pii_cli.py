"""`fedvlm pii scan PATH` and `fedvlm pii filter IN OUT`: the site's PII filter as a command (counts, never values)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from contract.run_config import ConfigError, load_config
from fedvlm.cli_args import output_folder, written_whole
from privacy.pii.report import REPORT_FILE

if TYPE_CHECKING:
    from vlm.records import LoadReport


def _print_problems(report: LoadReport | None) -> None:
    """Each skipped record's file, line and field (never the value), on stderr."""
    for problem in report.messages() if report else ():
        print(f"skipped {problem}", file=sys.stderr)


def _filter_run(args: argparse.Namespace, source: Path, out: Path | None) -> dict:
    from privacy.pii.pipeline import PiiFilter
    from privacy.pii.text import PiiUnavailable
    from vlm.records import DatasetError, load_dataset

    config = load_config(args.config, list(args.set))
    try:
        records, loading = load_dataset(source, config.data.attribute_schema())
        _print_problems(loading)
        report = PiiFilter(config.privacy.pii).run(records, out, show_progress=True)
    except DatasetError as error:
        _print_problems(error.report)
        raise ConfigError(str(error)) from None
    except PiiUnavailable as error:
        raise ConfigError(f"PII filter cannot run, nothing was filtered: {error}") from None
    return {"loading": loading.as_counts(), **report.as_json()}


def cmd_scan(args: argparse.Namespace) -> int:
    """Print what the filter would find and do, as counts by field and entity type."""
    print(json.dumps(_filter_run(args, Path(args.path), None), indent=1))
    return 0


def cmd_filter(args: argparse.Namespace) -> int:
    """Write a filtered copy of a dataset (same format) plus pii_report.json, whole or not at all."""
    source, out = Path(args.source), output_folder(Path(args.out), "OUT")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: output folder exists and is not empty")
    if out.resolve() == source.resolve():
        raise ConfigError(f"{out}: output must differ from the input")
    with written_whole(out) as staging:  # an interrupted or failed run leaves nothing behind
        summary = _filter_run(args, source, staging)
        (staging / REPORT_FILE).write_text(json.dumps(summary, indent=1), encoding="utf-8")
    events = summary["events"]
    print(f"kept {events['records-out']} of {events['records-in']} records; report: {out / REPORT_FILE}")
    return 0


def add_pii_commands(commands: argparse._SubParsersAction) -> None:
    """The `pii` command group."""
    group = commands.add_parser("pii", help="PII filtering of a dataset")
    pii = group.add_subparsers(dest="pii_command", required=True)
    scan = pii.add_parser("scan", help="count the PII in a dataset (by field and entity type, never values)")
    scan.add_argument("path", help="dataset folder (metadata.jsonl + images)")
    pii_filter = pii.add_parser("filter", help="write a filtered copy of a dataset plus pii_report.json")
    pii_filter.add_argument("source", metavar="IN", help="dataset folder")
    pii_filter.add_argument("out", metavar="OUT", help="new folder for the filtered dataset")
    for command, handler in ((scan, cmd_scan), (pii_filter, cmd_filter)):
        command.add_argument("--config", help="TOML configuration whose [privacy.pii] applies")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key")
        command.set_defaults(handler=handler)
