"""`fedvlm audit keygen|verify|report|privacy`: the server's signing key, an auditor's check of a run directory,
its report, the empirical privacy audit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from audit.errors import AuditError
from audit.keys import generate_keypair, load_public_key
from audit.log import LOG_NAME
from audit.report import write_report
from audit.verify import verify_files, verify_log, verify_run_end
from contract.run_config import ConfigError
from fedvlm.privacy_audit import add_privacy_command
from server.run_dir import RunDir

PRIVATE_KEY, PUBLIC_KEY = "audit_signing_key.pem", "audit_signing_key.pub.pem"


def cmd_keygen(args: argparse.Namespace) -> int:
    out = Path(args.out)
    private, public = out / PRIVATE_KEY, out / PUBLIC_KEY
    if private.exists() or public.exists():
        raise ConfigError(f"{out}: already holds a signing key; refusing to replace it")
    out.mkdir(parents=True, exist_ok=True)
    try:
        generate_keypair(private, public)
    except AuditError as error:
        raise ConfigError(str(error)) from None
    print(f"wrote {private} (keep it on the server; set audit.signing_key) and {public} (give it to auditors)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    run_dir = RunDir(Path(args.run_dir))
    try:
        public_key = load_public_key(Path(args.public_key)) if args.public_key else None
        run_id = (run_dir.root / "federation_id").read_text(encoding="utf-8").strip()
    except AuditError as error:
        print(f"fedvlm audit: FAILED: {error}", file=sys.stderr)
        return 1
    except OSError:
        print(f"fedvlm audit: FAILED: {run_dir.root}: not a run directory (no federation_id)", file=sys.stderr)
        return 1
    try:
        entries = verify_log(run_dir.root / LOG_NAME, public_key=public_key, expected_run_id=run_id)
        verify_run_end(entries)
        files = verify_files(entries, run_dir.root)
    except AuditError as error:
        print(f"fedvlm audit: FAILED: {error}", file=sys.stderr)
        return 1
    rounds = sum(entry["kind"] == "round" for entry in entries)
    signed = "signed entries checked against the public key" if public_key else "unsigned check (no --public-key)"
    ended = "run ended" if entries[-1]["kind"] == "run-end" else "run incomplete (no run-end entry)"
    print(f"audit log verified: {len(entries)} entries ({rounds} rounds), {len(files)} files; {signed}; {ended}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    root = Path(args.run_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    try:
        path, record = write_report(root, Path(args.out) if args.out else None)
    except OSError as error:
        raise ConfigError(f"cannot write the report: {error}") from None
    audit = "audit log verified" if record.audit.verified else f"audit log FAILED: {record.audit.message}"
    run = "run complete" if record.audit.complete else "run INCOMPLETE"
    print(f"wrote {path} ({audit}; {run})")
    return 0


def add_audit_commands(commands: argparse._SubParsersAction) -> None:
    """The `audit` command group."""
    group = commands.add_parser("audit", help="the run's tamper-evident audit log")
    audit = group.add_subparsers(dest="audit_command", required=True)
    keygen = audit.add_parser("keygen", help="write an Ed25519 key pair for signing audit entries")
    keygen.add_argument("--out", required=True, help="folder for the two PEM files")
    keygen.set_defaults(handler=cmd_keygen)
    verify = audit.add_parser("verify", help="recompute the log's chain and every hash it names")
    verify.add_argument("run_dir", metavar="RUN_DIR")
    verify.add_argument("--public-key", help="the server's public key (PEM): every entry must carry its signature")
    verify.set_defaults(handler=cmd_verify)
    report = audit.add_parser("report", help="write a self-contained HTML report of a run directory")
    report.add_argument("run_dir", metavar="RUN_DIR")
    report.add_argument("--out", metavar="FILE", help="the HTML file (default: RUN_DIR/report.html)")
    report.set_defaults(handler=cmd_report)
    add_privacy_command(audit)
