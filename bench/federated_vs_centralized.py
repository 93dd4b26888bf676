"""Federated (non-IID sites, FedAvg) vs centralized LoRA on the pooled data, same LoRA budget.

Both start from the same base model and LoRA initialisation, use the same LoRA config, optimizer,
batch size and number of examples processed (rounds x sites x local steps x batch size), and are
scored on the same server-eval set. Prints both accuracies and their ratio (goal: >= 0.9).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from peft import PeftModel
from PIL import Image
from rich.console import Console
from rich.table import Table

from bench.runs import DEMO_CONFIG, simulate
from client.site import site_data
from contract.data_layout import SERVER_EVAL, site_folder
from contract.run_config import RunConfig, load_config
from evaluation.utility import score_vqa
from vlm.lora import load_with_lora
from vlm.records import Record, load_dataset
from vlm.training import train_lora


def pooled_training_data(config: RunConfig, data_root: Path) -> tuple[list[Record], dict[str, Image.Image]]:
    """Every site's filtered training split, pooled, with the records' images."""
    sites = [
        site_data(
            str(site_folder(data_root, i)),
            config.data.holdout_fraction,
            config.privacy.pii,
            config.data.attribute_schema(),
        )
        for i in range(config.federation.sites)
    ]
    records = [record for site in sites for record in site.train]
    return records, {key: image for site in sites for key, image in site.images.items()}


def centralized_lora(config: RunConfig, data_root: Path) -> tuple[PeftModel, object, int]:
    """One LoRA trained on the pooled data with as many examples as the federation processes; model, processor,
    steps."""
    records, images = pooled_training_data(config, data_root)
    peft_model, processor = load_with_lora(config.model.directory(), config.lora)
    steps = config.federation.rounds * config.federation.sites * config.train.local_steps
    settings = config.train.model_copy(update={"local_steps": steps})
    train_lora(peft_model, processor, records, images, settings, seed=config.data.seed)
    return peft_model, processor, steps


def centralized_accuracy(config: RunConfig, data_root: Path) -> tuple[float, int]:
    """Train one LoRA on every site's training split pooled; return server-eval accuracy and steps."""
    peft_model, processor, steps = centralized_lora(config, data_root)
    eval_records, _ = load_dataset(data_root / SERVER_EVAL)
    return score_vqa(peft_model, processor, eval_records).accuracy, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default=DEMO_CONFIG, help="TOML configuration (default: the hospital demo's)")
    args = parser.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory(prefix="fedvlm-bench-") as tmp:
        out = Path(tmp) / "federated"
        started = time.monotonic()
        rows = simulate(out, "--config", args.config)
        federated_seconds = time.monotonic() - started
        federated = [row for row in rows if row["accepted"]][-1]["utility"]["vqa_accuracy"]
        started = time.monotonic()
        centralized, steps = centralized_accuracy(config, Path(config.data.root) if config.data.root else out / "data")
        centralized_seconds = time.monotonic() - started
    table = Table(title="federated vs centralized (server-eval vqa_accuracy)")
    for column in ("setting", "vqa_accuracy", "wall s"):
        table.add_column(column)
    table.add_row("round 0 (base model)", f"{rows[0]['utility']['vqa_accuracy']:.3f}", "")
    table.add_row(f"federated, {config.federation.sites} non-IID sites", f"{federated:.3f}", f"{federated_seconds:.0f}")
    table.add_row(f"centralized, pooled, {steps} steps", f"{centralized:.3f}", f"{centralized_seconds:.0f}")
    console = Console()
    console.print(table)
    console.print(f"federated / centralized = {federated / centralized:.3f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
