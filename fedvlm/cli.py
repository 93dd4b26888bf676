"""The `fedvlm` command line."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from contract.run_config import ConfigError, RunConfig, load_config
from fedvlm.audit_cli import add_audit_commands
from fedvlm.cli_args import clear_run_dir, output_folder, positive_int, written_whole
from fedvlm.federation_cli import add_federation_commands
from fedvlm.pii_cli import add_pii_commands
from server.run_dir import RunDir


def _rounds_done(out: Path) -> int:
    from server.checkpoint import load_checkpoint

    try:
        return load_checkpoint(RunDir(out).checkpoints)[0].round
    except (OSError, ValueError) as error:
        raise ConfigError(f"{out}: cannot resume ({error})") from None


def _simulate_config(args: argparse.Namespace, out: Path) -> RunConfig:
    rounds = [f"federation.rounds={args.rounds}"] if args.rounds is not None else []
    if args.resume:
        if args.config or args.set or args.sites is not None:
            raise ConfigError("--resume continues with RUN_DIR/config.toml: only --rounds may change")
        config = load_config(out / "config.toml", rounds)
        done = _rounds_done(out)
        if config.federation.rounds < done:
            raise ConfigError(f"--rounds {config.federation.rounds}: {out} has already run {done} rounds")
        return config
    sites = [f"federation.sites={args.sites}"] if args.sites is not None else []
    return load_config(args.config, list(args.set) + rounds + sites)


def cmd_simulate(args: argparse.Namespace) -> int:
    from simulations.flower_cli import FlowerError
    from simulations.runner import NoRoundTrained, preflight, simulate

    out = output_folder(Path(args.out), "--out")
    if args.resume and not (out / "checkpoints").is_dir():
        raise ConfigError(f"{out}: nothing to resume (no checkpoints/)")
    config = _simulate_config(args, out)
    preflight(config)
    if not args.resume:
        clear_run_dir(out, args.overwrite)
    try:
        simulate(config, out, resume=args.resume)
    except (NoRoundTrained, FlowerError) as error:
        print(f"fedvlm: error: {error}", file=sys.stderr)
        return 1
    _print_summary(RunDir(out))
    return 0


def _print_summary(run_dir: RunDir) -> None:
    rows = run_dir.read_metrics()
    final = [row for row in rows if row["accepted"]][-1]
    print(
        f"vqa_accuracy on server-eval: round 0 {rows[0]['utility']['vqa_accuracy']:.3f} -> "
        f"round {final['round']} {final['utility']['vqa_accuracy']:.3f} (last accepted); "
        f"run directory: {run_dir.root}"
    )


def cmd_data_synth(args: argparse.Namespace) -> int:
    from simulations.synth import is_complete, write_scenario

    out = output_folder(Path(args.out), "--out")
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            raise ConfigError(f"{out}: folder exists and is not empty; pass --overwrite to replace a synthetic dataset")
        if not is_complete(out):
            raise ConfigError(f"{out}: not a dataset written by fedvlm data synth; refusing to delete it")
        shutil.rmtree(out)
    with written_whole(out) as staging:  # an interrupted run leaves nothing behind
        write_scenario(args.scenario, args.sites, staging, args.records, args.eval_records, args.seed)
    print(f"wrote {args.sites} site datasets and server-eval under {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Every subcommand and its options."""
    parser = argparse.ArgumentParser(prog="fedvlm", description="Federated LoRA fine-tuning of VLMs on Flower.")
    commands = parser.add_subparsers(dest="command", required=True)

    simulate = commands.add_parser("simulate", help="run a federation on the Flower Simulation Engine")
    simulate.add_argument("--config", help="TOML configuration (default: the hospital demo)")
    simulate.add_argument("--rounds", type=positive_int, help="override federation.rounds")
    simulate.add_argument("--sites", type=positive_int, help="override federation.sites (virtual sites)")
    simulate.add_argument("--out", default="runs/simulate", help="run directory (default: runs/simulate)")
    simulate.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any key")
    simulate.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    simulate.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    simulate.set_defaults(handler=cmd_simulate)

    data = commands.add_parser("data", help="datasets").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write synthetic site datasets and a server-eval set")
    synth.add_argument("--scenario", choices=["hospital", "retail"], required=True)
    synth.add_argument("--sites", type=positive_int, required=True)
    synth.add_argument("--out", required=True)
    synth.add_argument("--records", type=positive_int, default=240, help="records per site")
    synth.add_argument("--eval-records", type=positive_int, default=240)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--overwrite", action="store_true", help="replace a dataset fedvlm data synth wrote there")
    synth.set_defaults(handler=cmd_data_synth)

    add_pii_commands(commands)
    add_audit_commands(commands)
    add_federation_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; configuration and set-up errors print one clear message and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as error:
        print(f"fedvlm: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fedvlm: interrupted; nothing partial was kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
