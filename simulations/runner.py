"""Run a federation on the Flower Simulation Engine (Ray), one virtual SuperNode per site."""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import torch
from flwr.simulation import run_simulation

from audit.canaries import secret_path
from audit.report import write_report
from client.app import build_client_app
from contract.data_layout import SERVER_EVAL, site_folder
from contract.run_config import ConfigError, RunConfig
from server.app import build_server_app
from server.run_dir import RunDir
from simulations.adversaries import adversary_of
from simulations.audit_canaries import plant_canaries
from simulations.canaries import site_canaries, write_canaries
from simulations.interrupt import stopping_on_interrupt
from simulations.ray_watchdog import watched
from simulations.synth import is_complete, write_scenario
from vlm.loading import check_model_dir


class NoRoundTrained(RuntimeError):
    """Every round of the run was skipped without a single usable update (each site's reason is in its log)."""


def _for_users(record: logging.LogRecord) -> bool:
    """Flower's records a user should see: not its notice that run_simulation is deprecated (for fedvlm's
    developers), nor a traceback per failed site (the server records each failure; the site logs its reason)."""
    message = record.getMessage()
    return not (
        "`run_simulation` function is deprecated" in message
        or "ClientAppException" in message
        or message.startswith("An exception was raised when processing a message by RayBackend")
    )


def backend_config(config: RunConfig, ray_tmp: Path) -> dict:
    """Ray resources: num_cpus per virtual client, a GPU share when CUDA is present, a private temp dir."""
    gpus = config.simulation.gpus_per_site if torch.cuda.is_available() else 0.0
    return {
        "client_resources": {"num_cpus": config.simulation.cpus_per_site, "num_gpus": gpus},
        "init_args": {
            "num_cpus": os.cpu_count() or 1,
            "_temp_dir": str(ray_tmp),
            "include_dashboard": False,
            "logging_level": "ERROR",
            "log_to_driver": True,
        },
    }


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


def simulate(config: RunConfig, out_dir: Path, resume: bool = False) -> None:
    """Build the base model (cached) and write synthetic data if asked, then run the apps under Ray."""
    config.model.directory()
    run_dir = RunDir(out_dir)
    run_dir.mark()
    write_synthetic_data(config, run_dir)
    record_canaries(config, run_dir)
    threads = str(config.simulation.threads_per_site)
    os.environ.update(
        OMP_NUM_THREADS=threads,
        MKL_NUM_THREADS=threads,
        TOKENIZERS_PARALLELISM="false",
    )
    flwr_log = logging.getLogger("flwr")
    flwr_log.setLevel(logging.WARNING)
    flwr_log.addFilter(_for_users)
    # Ray's tip about a future default; fedvlm requests GPUs only where CUDA is present.
    warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
    ray_tmp = Path(tempfile.mkdtemp(prefix="fedvlm-ray-"))
    try:
        with watched(ray_tmp), stopping_on_interrupt(out_dir, ray_tmp):
            run_simulation(
                server_app=build_server_app(config, out_dir, resume),
                client_app=build_client_app(role_of=adversary_of),
                num_supernodes=config.federation.sites,
                backend_config=backend_config(config, ray_tmp),
            )
    finally:
        flwr_log.removeFilter(_for_users)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    report(out_dir)
    rounds = [row for row in RunDir(out_dir).read_metrics() if row["round"] > 0]
    if rounds and not any(row["participants"] for row in rounds):
        raise NoRoundTrained(
            f"no round could train: no site sent a usable update in any of {len(rounds)} round(s) "
            "(each site's reason is in the messages above)"
        )
