"""Load a saved network from a savepoint and evaluate it on one split (nothing else is loaded)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from snnexp.config import ConfigError, ExperimentConfig, config_from_dict
from snnexp.data import load_split
from snnexp.dtypes import DTYPES
from snnexp.errors import ResultsError
from snnexp.losses import Loss
from snnexp.modules.first_spike import FirstSpikeNetwork, SteppedNetwork
from snnexp.modules.readout import SteppedReadoutNetwork
from snnexp.run.build import build_loss, build_network, resolve_device, thread_mode
from snnexp.run.evaluate import EvalResult, evaluate
from snnexp.run.results import CONFIG_FILE, load_checkpoint, resolve_savepoint


@dataclass
class SavedNetwork:
    """A network restored from a savepoint, with the config and loss of its run."""

    cfg: ExperimentConfig
    model: FirstSpikeNetwork | SteppedReadoutNetwork
    loss_fn: Loss
    epoch: int
    run_dir: Path
    epoch_dir: Path
    device: torch.device


def read_run_config(run_dir: Path) -> ExperimentConfig:
    """The resolved config.yaml that training wrote into ``run_dir``."""
    path = run_dir / CONFIG_FILE
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise ResultsError(f"{run_dir} is not a snnexp result folder (no {CONFIG_FILE})") from error
    except yaml.YAMLError as error:
        raise ResultsError(
            f"{path} is not valid YAML ({error}); restore it from a backup"
        ) from error
    try:
        return config_from_dict(data or {}, source=str(path))
    except ConfigError as error:
        raise ResultsError(f"the run's config does not validate:\n{error}") from error


def load_saved_network(path: Path, epoch: int | None = None, device: str = "auto") -> SavedNetwork:
    """Restore the network of a run folder (latest savepoint, or ``epoch``) or of an
    ``epoch_<N>`` folder."""
    run_dir, epoch_dir = resolve_savepoint(path, epoch)
    cfg = read_run_config(run_dir)
    checkpoint = load_checkpoint(epoch_dir)
    target = resolve_device(device)
    model = build_network(cfg, training=False)
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ResultsError(
            f"savepoint {epoch_dir} does not fit the run's config.yaml ({error}); was the config "
            "edited after training?"
        ) from error
    return SavedNetwork(
        cfg=cfg,
        model=model.to(target),
        loss_fn=build_loss(cfg),
        epoch=int(checkpoint["epoch"]),
        run_dir=run_dir,
        epoch_dir=epoch_dir,
        device=target,
    )


def evaluate_saved(
    saved: SavedNetwork,
    split: str = "test",
    batch_size: int | None = None,
    simulator: str = "exact",
    dt: float | None = None,
    sim_time: float | None = None,
    data_dir: Path | None = None,
) -> EvalResult:
    """Loss and accuracy of a saved network on one split of its dataset.

    ``simulator="stepped"`` evaluates the saved weights with the time-stepped simulator, with
    step ``dt`` over [0, ``sim_time``] (default: the config's model.dt and model.sim_time);
    ``simulator="analog"`` the ANN of a converted network (its ReLU twin, same weights).
    ``data_dir`` is the data root (``--data-dir``; default: dataset.root, $SNNEXP_DATA, ./data).
    """
    data = load_split(saved.cfg.dataset, split, data_dir)
    data.input_times = data.input_times.to(saved.device, DTYPES[saved.cfg.model.dtype])
    data.labels = data.labels.to(saved.device)
    model: torch.nn.Module = saved.model
    loss_fn = saved.loss_fn
    if simulator == "analog":
        model, loss_fn = relu_twin(saved)
    if simulator == "stepped":
        if not isinstance(saved.model, FirstSpikeNetwork):
            raise ValueError("the stepped simulator evaluates first-spike networks only")
        model_cfg = saved.cfg.model
        model = SteppedNetwork(saved.model, dt or model_cfg.dt, sim_time or model_cfg.sim_time)
    with thread_mode(saved.cfg):
        return evaluate(model, loss_fn, data, batch_size or saved.cfg.training.batch_size_eval)


def relu_twin(saved: SavedNetwork) -> tuple[torch.nn.Module, Loss]:
    """The ANN of a converted network (the ReLU network its weights stand for) and its loss."""
    from snnexp.config import config_to_dict
    from snnexp.conversion.codes import CODES
    from snnexp.conversion.convert import analog_view, code_gain
    from snnexp.conversion.summary import read_conversion
    from snnexp.rules.ann import build_loss

    summary = read_conversion(saved.run_dir)
    if summary is None:
        raise ResultsError(f"{saved.run_dir} is not a converted run (no conversion.json)")
    gain = code_gain(CODES[summary["code"]], float(summary["threshold"]))
    twin = analog_view(config_to_dict(saved.cfg), saved.model.state_dict(), gain)
    return twin.to(saved.device), build_loss(saved.cfg)
