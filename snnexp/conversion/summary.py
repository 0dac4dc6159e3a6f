"""Reading a converted run's conversion.json (torch-free: the command line and the figures)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snnexp.errors import ResultsError
from snnexp.run.files import CONVERSION_FILE


def read_conversion(run_dir: Path) -> dict[str, Any] | None:
    """The conversion.json of a converted run; None for any other run."""
    path = run_dir / CONVERSION_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ResultsError(
            f"{path} cannot be read ({error}); convert the ANN again with snnexp convert"
        ) from error


def total_spikes(measures: dict[str, Any]) -> float:
    """Spikes per sample of all hidden layers together."""
    return sum(layer["mean"] for layer in measures["spikes_per_sample"].values())


def comparison(summary: dict[str, Any], split: str) -> str:
    """One line: ANN and SNN accuracy on ``split``, spikes and operations per sample."""
    snn = summary["snn"][split]
    ann = summary["ann"]
    return (
        f"ANN {100 * ann['accuracy'][split]:.2f} % | SNN ({summary['code']}, "
        f"{summary['steps']} steps) {100 * snn['accuracy']:.2f} % | "
        f"{total_spikes(snn):.0f} spikes and {snn['synops_per_sample'] / 1e6:.3f} M synaptic "
        f"operations per sample (ANN: {ann['macs_per_sample'] / 1e6:.3f} M MACs)"
    )
