"""`fedvlm federation up`: try the Deployment Engine path on one machine, secured as a real federation is."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from contract.run_config import ConfigError, load_config
from deployment.credentials import LOOPBACK_NAMES, private_folder, write_node_key, write_tls_files
from deployment.local_federation import LocalFederation
from fedvlm.cli_args import clear_run_dir, output_folder, positive_int
from simulations.flower_cli import FlowerError


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _print_row(row: dict) -> None:
    accuracy = row.get("utility", {}).get("vqa_accuracy")
    figure = f"vqa_accuracy {accuracy:.3f}" if isinstance(accuracy, float) else "no evaluation"
    reason = f" ({row['reason']})" if row.get("reason") else ""
    print(
        f"round {row['round']:>3}  sites {row.get('participants', 0)}  {figure}  {row.get('status')}{reason}",
        flush=True,
    )


def cmd_up(args: argparse.Namespace) -> int:
    out = output_folder(Path(args.out), "--out")
    config = load_config(
        args.config, list(args.set) + [f"federation.sites={args.sites}", f"federation.rounds={args.rounds}"]
    )
    clear_run_dir(out, args.overwrite)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        with LocalFederation(config, out) as federation:
            federation.prepare()
            print(f"CA, SuperLink certificate and {args.sites} site keys written to a private folder")
            federation.start_superlink()
            print(f"SuperLink on 127.0.0.1:{federation.port}: TLS, SuperNode authentication")
            for site in federation.sites:
                print(f"registered {site.name} as node {federation.register(site.key)}")
                federation.start_supernode(site)
            federation.wait_online(args.sites)
            print(f"{args.sites} SuperNodes online over TLS")
            if args.with_intruder:
                why = federation.refusal_of("intruder", write_node_key(federation.keys, "intruder"))
                if why is None:
                    raise FlowerError("intruder NOT refused: a SuperNode with an unregistered key was let in")
                print(f"intruder refused: {why}")
            federation.run_app(on_row=_print_row)
            wire = {site.name: site.wire for site in federation.sites}
        for name, count in wire.items():
            print(f"{name}: {count.up} bytes up, {count.down} bytes down over TLS (all rounds, app included)")
        print(f"run directory: {out} (check it with: fedvlm audit verify {out})")
        return 0
    except FlowerError as error:
        print(f"fedvlm federation: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fedvlm federation: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _new_private_folder(path: Path) -> Path:
    if path.exists():
        raise ConfigError(f"{path}: already exists; refusing to replace keys or certificates")
    return private_folder(path)


def cmd_certs(args: argparse.Namespace) -> int:
    files = write_tls_files(_new_private_folder(Path(args.out)), (*args.host, *LOOPBACK_NAMES), days=args.days)
    print(f"wrote {files.ca_certificate} (give it to every site), {files.server_certificate} and {files.server_key}")
    return 0


def cmd_node_key(args: argparse.Namespace) -> int:
    key = write_node_key(_new_private_folder(Path(args.out)), args.name)
    print(f"wrote {key.private} (keep it at the site) and {key.public} (register it: flwr supernode register)")
    return 0


def add_federation_commands(commands: argparse._SubParsersAction) -> None:
    """`fedvlm federation up`."""
    group = commands.add_parser("federation", help="a local federation on Flower's Deployment Engine")
    federation = group.add_subparsers(dest="federation_command", required=True)
    up = federation.add_parser(
        "up", help="start a SuperLink and N SuperNodes on loopback with TLS and authentication, run, stop"
    )
    up.add_argument("--sites", type=positive_int, default=2, help="SuperNodes, one per synthetic site")
    up.add_argument("--rounds", type=positive_int, default=3)
    up.add_argument("--out", default="runs/federation", help="run directory (default: runs/federation)")
    up.add_argument("--config", help="TOML configuration (default: the hospital demo)")
    up.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key")
    up.add_argument("--with-intruder", action="store_true", help="also start an unregistered SuperNode")
    up.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    up.set_defaults(handler=cmd_up)
    certs = federation.add_parser("certs", help="write a CA and the SuperLink's TLS certificate and key")
    certs.add_argument("--out", required=True, help="a new folder (mode 0700)")
    certs.add_argument("--host", action="append", default=[], help="the SuperLink's DNS name or address (repeat)")
    certs.add_argument("--days", type=positive_int, default=365)
    certs.set_defaults(handler=cmd_certs)
    node_key = federation.add_parser("node-key", help="write a SuperNode's P-384 OpenSSH key pair")
    node_key.add_argument("--out", required=True, help="a new folder (mode 0700)")
    node_key.add_argument("--name", default="supernode", help="file name of the private key (public: NAME.pub)")
    node_key.set_defaults(handler=cmd_node_key)
