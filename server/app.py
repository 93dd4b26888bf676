"""The fedvlm Flower ServerApp (`flwr run`: the Deployment Engine, and simulation, `fedvlm simulate` included)."""

from __future__ import annotations

from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from contract.run_config import RunConfig, load_config
from server.federation import Federation
from server.run_dir import RunDir


def start(grid: Grid, config: RunConfig, out_dir: Path, resume: bool) -> None:
    """Write the resolved config and run the round loop into out_dir (a new run refuses an existing one)."""
    run_dir = RunDir(out_dir)
    if not resume and run_dir.metrics.exists():
        raise FileExistsError(f"{run_dir.root}: already holds a run; resume it or choose another out-dir")
    run_dir.mark()
    run_dir.config.write_text(config.to_toml(), encoding="utf-8")
    Federation(grid, config, run_dir).run(resume=resume)


app = ServerApp()


def run_overrides(text: str) -> list[str]:
    """The run config's `overrides`: 'section.key=value' entries separated by ';' (as `fedvlm simulate --set`)."""
    return [entry.strip() for entry in text.split(";") if entry.strip()]


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point for `flwr run .` (Deployment Engine or simulation): run config keys config, overrides, out-dir,
    resume (resume reads RUN_DIR/config.toml, overrides apply on top)."""
    run_config = context.run_config
    out_dir, resume = Path(str(run_config["out-dir"])), bool(run_config.get("resume", False))
    source = RunDir(out_dir).config if resume else (str(run_config.get("config", "")) or None)
    config = load_config(source, run_overrides(str(run_config.get("overrides", ""))))
    start(grid, config, out_dir, resume)
