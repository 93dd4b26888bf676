"""Run a federation in Flower's simulation runtime: `flwr run` of fedvlm's apps on a private simulation SuperLink,
one virtual SuperNode per site (Ray)."""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import torch

from audit.canaries import secret_path
from audit.report import write_report
from contract.data_layout import SERVER_EVAL, site_folder
from contract.run_config import ConfigError, RunConfig
from server.display import RoundDisplay
from server.run_dir import RunDir
from simulations.audit_canaries import plant_canaries
from simulations.canaries import site_canaries, write_canaries
from simulations.flower_cli import last_round
from simulations.interrupt import stopping_on_interrupt
from simulations.ray_watchdog import watched
from simulations.simulation_link import SimulationLink
from simulations.synth import is_complete, write_scenario
from vlm.loading import check_model_dir

SIMULATION_APP = Path(__file__).resolve().parent / "flower_app"  # fedvlm's apps, virtual sites playing adversaries
RAY_ACTOR_LINE = re.compile(r"^\(ClientAppActor pid=\d+\) ")  # a virtual site's output, as Ray forwards it
COLOURS = re.compile(r"\x1b\[[0-9;]*m")


class NoRoundTrained(RuntimeError):
    """Every round of the run was skipped without a single usable update (each site's reason is in its log)."""


def ray_cpus(cpus_per_site: float) -> tuple[int, int]:
    """Ray's logical CPUs (the machine's, scaled) and a site's share of them, both whole numbers as Flower's
    federation config needs: a site's fractional share of a core becomes whole by counting CPUs in fractions."""
    share = Fraction(cpus_per_site).limit_denominator(100)
    return (os.cpu_count() or 1) * share.denominator, share.numerator


def federation_config(config: RunConfig) -> str:
    """`flwr run --federation-config`: a virtual SuperNode per site, Ray's resources per site (a GPU share when CUDA
    is present), Ray's own logs kept to errors."""
    machine, site = ray_cpus(config.simulation.cpus_per_site)
    gpus = config.simulation.gpus_per_site if torch.cuda.is_available() else 0.0
    return (
        f"num-supernodes={config.federation.sites} client-resources-num-cpus={site} "
        f'client-resources-num-gpus={gpus} init-args-num-cpus={machine} init-args-logging-level="ERROR"'
    )


def preflight(config: RunConfig) -> None:
    """Before anything starts: model.path must hold a model, data.root server-eval/ and one folder per site."""
    if config.model.path:
        try:
            check_model_dir(config.model.path)
        except FileNotFoundError as error:
            raise ConfigError(f"model.path: {error}") from None
    if not config.data.root:
        return
    root = Path(config.data.root)
    needed = [root / SERVER_EVAL] + [site_folder(root, i) for i in range(config.federation.sites)]
    missing = [str(path) for path in needed if not path.is_dir()]
    if missing:
        raise ConfigError(f"data.root: missing folder(s) {', '.join(missing)}")


def write_synthetic_data(config: RunConfig, run_dir: RunDir) -> None:
    """Without data.root: the scenario's site datasets and server-eval set, written once, whole, into the run,
    with the audit's canaries (simulation.audit) planted in the sites' data and their secret beside the run."""
    if config.data.root or is_complete(run_dir.data):
        return
    shutil.rmtree(run_dir.data, ignore_errors=True)
    write_scenario(
        config.data.scenario,
        config.federation.sites,
        run_dir.data,
        records_per_site=config.data.records_per_site,
        eval_records=config.data.eval_records,
        seed=config.data.seed,
        descriptors=config.data.descriptors,
    )
    plant_canaries(config, run_dir.data, secret_path(run_dir.root))


def record_canaries(config: RunConfig, run_dir: RunDir) -> None:
    """With synthetic data: each pii-leak adversary's canaries, in its site's data folder, for the audit."""
    if config.data.root:
        return
    for adversary in config.simulation.adversary:
        if adversary.kind == "pii-leak":
            write_canaries(site_folder(run_dir.data, adversary.site), site_canaries(config.data.seed, adversary.site))


def report(out_dir: Path) -> None:
    """Write RUN_DIR/report.html; a failure is one line on stderr and never hides the run's result."""
    try:
        write_report(out_dir)
    except Exception as error:  # the run's own outcome matters more than its report
        print(f"fedvlm: report.html not written: {type(error).__name__}: {error}", file=sys.stderr)


def show_site_log(line: str) -> None:
    """Print a line of the run's log that a virtual site wrote (its skipped records, its failure), as Ray gives it;
    Flower's own lines and the ServerApp's stay in the log."""
    plain = COLOURS.sub("", line)
    if RAY_ACTOR_LINE.match(plain) and "Manually terminating ClientAppActor" not in plain:
        print(plain, file=sys.stderr, flush=True)


def simulate(config: RunConfig, out_dir: Path, resume: bool = False, app_dir: Path = SIMULATION_APP) -> None:
    """Build the base model (cached) and write synthetic data if asked, then `flwr run` the Flower app in app_dir
    (fedvlm's; tests give their own) on a private simulation SuperLink, showing each round as it is recorded."""
    config.model.directory()
    run_dir = RunDir(out_dir)
    run_dir.mark()
    write_synthetic_data(config, run_dir)
    record_canaries(config, run_dir)
    threads = str(config.simulation.threads_per_site)
    scratch = Path(tempfile.mkdtemp(prefix="fedvlm-simulation-"))
    ray_tmp = scratch / "ray"
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}
    display = RoundDisplay(config.federation.rounds, completed=max(last_round(run_dir), 0))
    try:
        with (
            watched(ray_tmp),
            stopping_on_interrupt(out_dir, scratch),
            SimulationLink(scratch, {**env, "RAY_TMPDIR": str(ray_tmp)}) as link,
            display,
        ):
            link.run(app_dir, config, out_dir, resume, federation_config(config), display.show, show_site_log)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(out_dir)
    rounds = [row for row in RunDir(out_dir).read_metrics() if row["round"] > 0]
    if rounds and not any(row["participants"] for row in rounds):
        raise NoRoundTrained(
            f"no round could train: no site sent a usable update in any of {len(rounds)} round(s) "
            "(each site's reason is in the messages above)"
        )
