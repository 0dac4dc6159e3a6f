"""The epoch loop: batches, loss, optimizer, scheduler, trainer plug-ins (weight bumping, DEEP R),
input noise, savepoints, resume states and the divergence guard.

Everything random in training draws from one ``torch.Generator`` seeded from the config
(``training.seeds.torch``): the weight init, the batch order of every epoch and the input noise.
Its state, the optimizer, the scheduler, the plug-ins' states and the history are saved at
every savepoint, so continuing from a savepoint gives bitwise the same weights as not stopping.
Between two batches the run can also save its resume state (:class:`EpochProgress` on top: the
epoch's batch order, position and running counts), on a stop signal
(:mod:`snnexp.run.stopping`) and every ``training.checkpoint_minutes``; resuming from it is
bitwise the same as well. After every step the weights are checked: a non-finite loss, update or
weight raises :class:`~snnexp.errors.DivergenceError` before anything saves it. Under torchrun
each rank trains on its shard of every batch (:mod:`snnexp.run.distributed`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from snnexp import __version__
from snnexp.choices import SPLITS
from snnexp.config import ConfigError, ExperimentConfig, config_to_dict
from snnexp.config.schema import TrainingConfig
from snnexp.data import EncodedSplit, load_split
from snnexp.data.encoding import intensity
from snnexp.dtypes import DTYPES
from snnexp.errors import DivergenceError, ResultsError
from snnexp.modules.readout import SteppedReadoutNetwork
from snnexp.rules import LEARNING_RULES
from snnexp.rules.deep_r import Rewiring, rewired_weights
from snnexp.rules.plugin import PluginContext, TrainerPlugin
from snnexp.rules.weight_bumping import WeightBumping
from snnexp.run.build import (
    build_loss,
    build_network,
    build_optimizer,
    build_scheduler,
    resolve_device,
    thread_mode,
)
from snnexp.run.distributed import (
    SINGLE,
    World,
    any_rank,
    check_batches,
    gather_rows,
    shard_bounds,
    shard_loss,
    sum_over_ranks,
)
from snnexp.run.evaluate import EvalResult, evaluate
from snnexp.run.results import (
    HISTORY_COLUMNS,
    PROGRESS_FILE,
    VALIDATION_COLUMNS,
    atomic_write_bytes,
    clear_resume_state,
    history_rows,
    save_resume_state,
    save_savepoint,
    table_columns,
    table_rows,
    write_history,
    write_validation,
)
from snnexp.run.stopping import RunStopped, StopSignals, signal_name
from snnexp.run.tensorboard import STATISTICS_SAMPLES, TensorBoardLog, writer_class

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
"""Version of the checkpoint layout (:meth:`Trainer.state_dict`)."""
PROGRESS_INTERVAL_S = 10.0
"""The live training-curve plot in the result folder is redrawn at most this often."""
TRACE_SPLIT = "test"
TRACE_SAMPLES = 4
"""Time-stepped savepoints store every step of the first TRACE_SAMPLES test samples."""
PLUGIN_TYPES: tuple[type[TrainerPlugin], ...] = (WeightBumping, Rewiring)
"""The trainer's plug-ins, in the order they are called (and saved)."""


def add_input_noise(
    times: torch.Tensor, mean: float, std: float, generator: torch.Generator
) -> torch.Tensor:
    """t + N(mean, std^2), reflected at 0 (negative times become |t|); +inf stays +inf."""
    noise = torch.randn(times.shape, generator=generator, dtype=times.dtype) * std + mean
    return (times + noise.to(times.device)).abs()


@dataclass
class EpochProgress:
    """Where training stands inside an epoch: its batch order, the batches done and the
    epoch's running counts (what a resume state needs to finish the epoch bitwise as if it had
    not stopped). ``started``: the ``time.perf_counter()`` at which the epoch began, shifted by
    the time spent on it before an interruption."""

    order: torch.Tensor
    lr: float
    batch: int = 0
    losses: list[float] = field(default_factory=list)
    correct: int = 0
    invalid: int = 0
    started: float = field(default_factory=time.perf_counter)

    def mean_loss(self) -> float:
        """Mean training loss of the batches that stepped (NaN if none did)."""
        return float(np.mean(self.losses)) if self.losses else math.nan

    def state_dict(self) -> dict[str, Any]:
        return {
            "order": self.order.cpu(),
            "lr": self.lr,
            "batch": self.batch,
            "losses": torch.tensor(self.losses, dtype=torch.float64),
            "correct": self.correct,
            "invalid": self.invalid,
            "seconds": time.perf_counter() - self.started,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: torch.device) -> EpochProgress:
        return cls(
            order=state["order"].to(device),
            lr=float(state["lr"]),
            batch=int(state["batch"]),
            losses=state["losses"].tolist(),
            correct=int(state["correct"]),
            invalid=int(state["invalid"]),
            started=time.perf_counter() - float(state["seconds"]),
        )


def savepoint_epochs(training: TrainingConfig) -> list[int]:
    """The configured savepoints plus the final epoch (training.epochs)."""
    return sorted({*training.savepoints, training.epochs} - {0})


_EPOCH_WITHOUT_STEP_WARNING = r"Detected call of `lr_scheduler.step\(\)` before `optimizer.step"
"""torch's warning when the scheduler steps before any optimizer step: harmless here, where the
schedule counts epochs and an epoch whose batches all bumped (``skip_step``) made no step."""


@dataclass
class Trainer:
    """Owns one run's model, optimizer, data and history; trains epoch by epoch.

    ``data_dir`` is the data root of the MNIST family (``--data-dir``; default: dataset.root,
    $SNNEXP_DATA, ./data).
    """

    cfg: ExperimentConfig
    run_dir: Path | None = None
    device_name: str | None = None
    progress: bool = True
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    """Rows of validation.csv (training.validate_every)."""
    data_dir: Path | None = None
    last_progress_plot: float = -math.inf
    stop: StopSignals = field(default_factory=StopSignals)
    saved_splits: tuple[str, ...] = SPLITS
    """The splits a savepoint evaluates and stores (all of them when training)."""
    world: World = SINGLE
    """The data-parallel ranks under torchrun (:mod:`snnexp.run.distributed`)."""

    def __post_init__(self) -> None:
        self.rule = LEARNING_RULES[self.cfg.learning.rule]
        self._resumed_epoch: EpochProgress | None = None
        self._last_state_written = time.monotonic()
        self.device = resolve_device(self.device_name or self.cfg.training.device)
        if self.world.backend == "nccl":
            self.device = torch.device("cuda", self.world.local_rank)
        seeds = self.cfg.training.seeds
        torch.manual_seed(seeds.torch)
        np.random.seed(seeds.numpy)
        self.generator = torch.Generator().manual_seed(seeds.torch)
        self.dtype = DTYPES[self.cfg.model.dtype]
        self.model = build_network(self.cfg, self.generator).to(self.device)
        self._check_initial_weights()
        self.input_generator = self.generator
        if isinstance(self.model, SteppedReadoutNetwork):
            self.input_generator = self.model.encoder.training_generator(
                self.generator, self.device, seeds.torch
            )
        self.loss_fn = build_loss(self.cfg)
        self.optimizer = build_optimizer(self.cfg, self.model)
        self.scheduler = build_scheduler(self.cfg, self.optimizer)
        context = PluginContext(
            self.cfg, self.model, self.optimizer, self.generator, self.synapse_mask
        )
        self.plugins: list[TrainerPlugin] = [
            kind(context) for kind in PLUGIN_TYPES if kind.wanted(context)
        ]
        self.splits = {name: self._load(name) for name in SPLITS}
        self._evaluated: dict[str, EvalResult] = {}
        self._forward: torch.nn.Module = self.model
        if self.world.active:
            check_batches(
                self.cfg.training.batch_size, len(self.splits["train"].labels), self.world
            )
            self._forward = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=None if self.device.type == "cpu" else [self.device]
            )
        if self.cfg.training.tensorboard:
            writer_class()
        self._tensorboard: TensorBoardLog | None = None

    def _check_initial_weights(self) -> None:
        """Weights drawn from the config must be finite (e.g. model.weight_mean 1e300 in
        float32 is not)."""
        bad = self._non_finite_parameters()
        if bad:
            raise ConfigError(
                f"the initial weights {', '.join(bad)} are not finite (inf or NaN): check "
                "model.weight_mean and model.weight_std (or the blocks' init), which must give "
                "finite values of the model's dtype"
            )

    def _non_finite_parameters(self) -> list[str]:
        """The names of the model's parameters that hold inf or NaN (one check per batch: a
        single synchronisation on a GPU)."""
        parameters = dict(self.model.named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for p in parameters.values()])
        if bool(finite.all()):
            return []
        return [name for name, ok in zip(parameters, finite.tolist(), strict=True) if not ok]

    def _load(self, name: str) -> EncodedSplit:
        split = load_split(self.cfg.dataset, name, self.data_dir)
        split.input_times = split.input_times.to(self.device, self.dtype)
        split.labels = split.labels.to(self.device)
        return split

    def train_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training split (or the rest of it, resuming an interrupted
        epoch); returns the epoch's history row. The plug-ins act around each batch's step
        (:mod:`snnexp.rules.plugin`): e.g. a batch that needs weight bumping makes no optimizer
        step (``skip_step``, published) or makes it before the bump. After each batch the run
        stops if a signal asked it to, and writes its resume state when one is due."""
        cfg = self.cfg.training
        train = self.splits["train"]
        progress = self._resumed_epoch or self._begin_epoch(len(train.labels))
        self._resumed_epoch = None
        self._evaluated.clear()
        self.model.train()
        if isinstance(self.model, SteppedReadoutNetwork):
            self.model.generator = self.input_generator
        n_batches = math.ceil(len(progress.order) / cfg.batch_size)
        for batch in range(progress.batch, n_batches):
            start = batch * cfg.batch_size
            index = progress.order[start : start + cfg.batch_size]
            times, labels = train.input_times[index], train.labels[index]
            if cfg.input_noise.std > 0 or cfg.input_noise.mean != 0:
                times = add_input_noise(
                    times, cfg.input_noise.mean, cfg.input_noise.std, self.generator
                )
            rows = len(labels)
            if self.world.active:
                times, labels = self._shard(times, labels)
            self.optimizer.zero_grad()
            outputs, hidden = self._forward(times)
            self._shard_encoder(None)
            predictions = self.loss_fn.predict(outputs)
            correct, invalid = (predictions == labels).sum().item(), (predictions < 0).sum().item()
            if self.world.active:
                correct, invalid = (int(n) for n in sum_over_ranks([correct, invalid], self.world))
            progress.correct += correct
            progress.invalid += invalid
            skips = [
                plugin.before_step(self._batch_outputs(plugin, hidden, outputs))
                for plugin in self.plugins
            ]
            if not any(skips):
                progress.losses.append(self._learn(outputs, hidden, labels, batch, rows))
            changed = [plugin.after_step() for plugin in self.plugins]
            if any(changed):
                for plugin in self.plugins:
                    plugin.weights_changed()
            self._check_weights(batch)
            progress.batch = batch + 1
            if progress.losses and self.cfg.learning.lr_scheduler.interval == "batch":
                self._step_scheduler()
            if cfg.validate_every:
                iteration = self.epoch * n_batches + progress.batch
                if iteration % cfg.validate_every == 0:
                    self._validate_within_epoch(iteration, progress)
            if cfg.log_every and progress.batch % cfg.log_every == 0:
                seen = min(start + cfg.batch_size, len(progress.order))
                logger.info(
                    "epoch %d, batch %d: running train loss %.4f, accuracy %.2f %% (%d samples)",
                    self.epoch + 1,
                    progress.batch,
                    progress.mean_loss(),
                    100.0 * progress.correct / seen,
                    seen,
                )
            self._between_batches(progress)
        if isinstance(self.model, SteppedReadoutNetwork):
            self.model.generator = None
        if self.cfg.learning.lr_scheduler.interval == "epoch":
            self._step_scheduler()
        self.epoch += 1
        if not progress.losses:
            logger.warning(
                "epoch %d: no batch made an optimizer step (every batch needed weight bumping, "
                "and training.weight_bumping.skip_step skips the step), so nothing was learned: "
                "%s",
                self.epoch,
                self.rule.fixes,
            )
        val = self._evaluate("val")
        dead = [
            name
            for name, invalid, total in (
                ("training samples of the epoch", progress.invalid, len(progress.order)),
                ("validation samples after it", int((val.predictions < 0).sum()), len(val.labels)),
            )
            if total and invalid == total
        ]
        if dead:
            logger.warning(
                "epoch %d: the label layer gave no valid prediction (no label spike, or all "
                "scores tied) for any of the %s; the network may be dead: %s",
                self.epoch,
                " or the ".join(dead),
                self.rule.fixes,
            )
        return {
            "epoch": self.epoch,
            "train_loss": progress.mean_loss(),
            "train_accuracy": progress.correct / len(progress.order),
            "val_loss": val.loss,
            "val_accuracy": val.accuracy,
            "lr": progress.lr,
            "seconds": time.perf_counter() - progress.started,
            **self._plugin_counts(),
        }

    def _shard(
        self, times: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of a batch (data-parallel training)."""
        start, stop = shard_bounds(len(labels), self.world)
        self._shard_encoder((start, stop, len(labels)))
        return times[start:stop], labels[start:stop]

    def _shard_encoder(self, rows: tuple[int, int, int] | None) -> None:
        """A random input code draws the whole batch's spikes and keeps this rank's ``rows``
        (start, stop, batch): the same spikes as one process would draw."""
        if not self.world.active:
            return
        encoder = getattr(self.model, "encoder", None)
        if encoder is not None and encoder.is_random:
            self.model.encoder = dataclasses.replace(encoder, batch_rows=rows)

    def _batch_outputs(
        self, plugin: TrainerPlugin, hidden: list[torch.Tensor], outputs: torch.Tensor
    ) -> list[torch.Tensor]:
        """The layers' outputs that a plug-in decides on: the whole batch's, gathered from all
        ranks in data-parallel training."""
        layers = [*hidden, outputs]
        if not (self.world.active and plugin.reads_batch_outputs):
            return layers
        return [gather_rows(layer.detach(), self.world) for layer in layers]

    def _step_scheduler(self) -> None:
        """One step of the learning-rate schedule (per epoch, or per batch that stepped)."""
        if self.scheduler is not None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_EPOCH_WITHOUT_STEP_WARNING)
                self.scheduler.step()

    def _validate_within_epoch(self, iteration: int, progress: EpochProgress) -> None:
        """Evaluate the validation split after ``iteration`` batches (training.validate_every):
        log it, keep it as a row of validation.csv and write the file. The training generator
        is set aside meanwhile, so that validating changes no training number."""
        generator = getattr(self.model, "generator", None)
        if generator is not None:
            self.model.generator = None
        try:
            result = evaluate(
                self.model, self.loss_fn, self.splits["val"], self.cfg.training.batch_size_eval
            )
        finally:
            if generator is not None:
                self.model.generator = generator
        before = sum(row["seconds"] for row in self.history if row["epoch"] > 0)
        row = {
            "iteration": iteration,
            "epoch": self.epoch + 1,
            "val_loss": result.loss,
            "val_accuracy": result.accuracy,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": before + time.perf_counter() - progress.started,
        }
        self.validations.append(row)
        logger.info(
            "iteration %d: validation loss %.4f, accuracy %.2f %%",
            iteration,
            result.loss,
            100.0 * result.accuracy,
        )
        if self.run_dir is not None:
            write_validation(self.run_dir, self.validations)

    def _begin_epoch(self, samples: int) -> EpochProgress:
        """A new epoch: its batch order, drawn from the run's generator, and fresh counters."""
        for plugin in self.plugins:
            plugin.begin_epoch()
        order = torch.randperm(samples, generator=self.generator).to(self.device)
        return EpochProgress(order=order, lr=self.optimizer.param_groups[0]["lr"])

    def _between_batches(self, progress: EpochProgress) -> None:
        """Stop here if a signal asked for it (after writing the resume state), else write the
        resume state if ``training.checkpoint_minutes`` have passed since the last one."""
        if self._stop_requested():
            self._write_resume_state(progress)
            raise self._stopped(f"at epoch {self.epoch + 1}, batch {progress.batch}")
        minutes = self.cfg.training.checkpoint_minutes
        if minutes and time.monotonic() - self._last_state_written >= 60.0 * minutes:
            self._write_resume_state(progress)

    def _stop_requested(self) -> bool:
        """Whether a stop signal arrived (at any rank: all ranks stop at the same batch)."""
        if not self.world.active:
            return self.stop.received is not None
        requested = any_rank(self.stop.received is not None, self.world)
        if requested and self.stop.received is None:
            self.stop.received = signal.SIGTERM
        return requested

    def _stopped(self, where: str) -> RunStopped:
        signum = self.stop.received
        assert signum is not None
        target = self.run_dir if self.run_dir is not None else "RUN"
        return RunStopped(
            signum,
            f"stopped by {signal_name(signum)} {where}; resume with: snnexp continue {target}",
        )

    def _write_resume_state(self, progress: EpochProgress | None) -> None:
        """Write the exact state of the run now (``progress``: where in the current epoch; None
        between epochs) as the run's resume state."""
        if self.run_dir is None:
            return
        state = self.state_dict()
        state["position"] = None
        if progress is not None:
            state["position"] = {**progress.state_dict(), "plugin_counts": self._plugin_counts()}
        save_resume_state(self.run_dir, state)
        self._last_state_written = time.monotonic()
        where = "between epochs" if progress is None else f"after batch {progress.batch}"
        logger.debug("wrote the resume state (epoch %d, %s)", self.epoch + 1, where)

    def _check_weights(self, batch: int) -> None:
        """Stop with a message naming the parameter when a weight is no longer finite, before
        anything could save it."""
        bad = self._non_finite_parameters()
        if bad:
            raise self._diverged(batch, f"{', '.join(bad)} holds non-finite values (inf or NaN)")

    def _diverged(self, batch: int, what: str) -> DivergenceError:
        """The error that stops a diverged run at ``batch`` (0-based) of the current epoch."""
        return DivergenceError(
            f"training diverged in epoch {self.epoch + 1}, batch {batch + 1}: {what}; nothing of "
            f"this state was saved, the savepoints written so far are intact. "
            f"{self.rule.fixes.capitalize()}"
        )

    def _learn(
        self,
        outputs: torch.Tensor,
        hidden: list[torch.Tensor],
        labels: torch.Tensor,
        batch: int,
        rows: int,
    ) -> float:
        """One optimizer step (made by a plug-in where one takes it over, e.g. DEEP R) on a
        batch's loss; returns the loss. A non-finite loss stops training with a message.
        Data-parallel, the loss is this rank's share (:func:`~snnexp.run.distributed.shard_loss`)
        and the returned loss the whole batch's (``rows`` samples)."""
        if self.world.active:
            loss, value = shard_loss(self.loss_fn, outputs, hidden, labels, rows, self.world)
        else:
            loss = self.loss_fn.training_loss(outputs, hidden, labels)
            value = loss.item()
        if not math.isfinite(value):
            raise self._diverged(batch, f"the loss became {value}")
        loss.backward()
        try:
            if not any(plugin.optimizer_step() for plugin in self.plugins):
                self.optimizer.step()
        except RuntimeError as error:
            if "overflow" not in str(error):
                raise
            raise self._diverged(
                batch, f"the weight update overflows the model's dtype ({error})"
            ) from error
        return value

    def synapse_mask(self, weight: torch.Tensor) -> torch.Tensor | None:
        """The synapses of ``weight`` that exist: the first mask a plug-in gives (DEEP R: the
        active ones), else None (all)."""
        for plugin in self.plugins:
            mask = plugin.synapse_mask(weight)
            if mask is not None:
                return mask
        return None

    def _plugin_counts(self) -> dict[str, int]:
        """The history's counters: bumps and rewirings of the epoch, and the synapses (active
        under DEEP R, else all weights of the rewirable matrices)."""
        counts = {
            "bumps": 0,
            "connections": sum(weight.numel() for weight in rewired_weights(self.model)),
            "rewirings": 0,
        }
        for plugin in self.plugins:
            counts |= plugin.epoch_counts()
        return counts

    def _evaluate(self, split: str) -> EvalResult:
        """Evaluation of the current weights on a split, computed once per epoch (the epoch's
        validation and its savepoint share it)."""
        if split not in self._evaluated:
            batch = self.cfg.training.batch_size_eval
            self._evaluated[split] = evaluate(self.model, self.loss_fn, self.splits[split], batch)
        return self._evaluated[split]

    def use_evaluation(self, split: str, result: EvalResult) -> None:
        """Take ``result``, computed elsewhere (e.g. by a conversion, with more statistics from
        the same pass), as the evaluation of the current weights on ``split``."""
        self._evaluated[split] = result

    def initial_row(self) -> dict[str, float]:
        """History row of the untrained network (epoch 0); NaN for a split the savepoints do
        not evaluate."""
        row: dict[str, float] = {"epoch": 0}
        for split in ("train", "val"):
            result = self._evaluate(split) if split in self.saved_splits else None
            row[f"{split}_loss"] = math.nan if result is None else result.loss
            row[f"{split}_accuracy"] = math.nan if result is None else result.accuracy
        return {
            **row,
            "lr": self.optimizer.param_groups[0]["lr"],
            "seconds": 0.0,
            **self._plugin_counts(),
        }

    def split_outputs(self) -> dict[str, dict[str, Any]]:
        """What a savepoint stores of each split for inference and plots."""
        outputs = {}
        for name, split in self.splits.items():
            if name not in self.saved_splits:
                continue
            result = self._evaluate(name)
            arrays: dict[str, Any] = {
                "labels": result.labels.numpy(),
                self.loss_fn.output_key: result.outputs.double().numpy(),
                "predictions": result.predictions.numpy(),
                "loss": result.loss,
                "accuracy": result.accuracy,
            }
            for k, hidden in enumerate(result.hidden):
                if hidden is not None:
                    arrays[f"{self.loss_fn.hidden_key}_{k}"] = hidden.double().numpy()
                elif self.loss_fn.hidden_key == "hidden_counts":
                    mean = result.hidden_means[k].double().numpy()
                    arrays[f"mean_hidden_counts_{k}"] = mean
            if split.samples is not None:
                arrays["samples"] = split.samples
            elif name == TRACE_SPLIT:
                arrays |= self._example_images(split)
            if name == TRACE_SPLIT and isinstance(self.model, SteppedReadoutNetwork):
                arrays |= self._traces(split)
            outputs[name] = arrays
        return outputs

    def _example_images(self, split: EncodedSplit) -> dict[str, np.ndarray]:
        """The first image of each class (intensities from the latency code) and its row, for
        the example-digit figure of image datasets."""
        from snnexp.plots.digits import first_of_each_class

        labels = split.labels.cpu().numpy()
        index = first_of_each_class(labels, int(labels.max()) + 1)
        encoding = self.cfg.dataset.encoding
        images = intensity(split.input_times[index].cpu(), encoding.t_early, encoding.t_late)
        return {"example_index": index, "example_images": images.float().numpy()}

    def _traces(self, split: EncodedSplit) -> dict[str, np.ndarray]:
        """Every step of the first few samples of ``split`` (rasters and membrane traces)."""
        assert isinstance(self.model, SteppedReadoutNetwork)
        recorded = self.model.record(split.input_times[:TRACE_SAMPLES])
        traces = {f"trace_{key}": value.float().cpu().numpy() for key, value in recorded.items()}
        traces["trace_labels"] = split.labels[:TRACE_SAMPLES].cpu().numpy()
        return traces

    def state_dict(self) -> dict[str, Any]:
        """Checkpoint payload: plain tensors, numbers, strings (loads with weights_only=True)."""
        np_state = np.random.get_state()
        return {
            "format": CHECKPOINT_FORMAT,
            "snnexp_version": __version__,
            "epoch": self.epoch,
            "world_size": self.world.size,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "rng": {
                "generator": self.generator.get_state(),
                "input_generator": (
                    None
                    if self.input_generator is self.generator
                    else self.input_generator.get_state()
                ),
                "torch": torch.get_rng_state(),
                "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
                "numpy_pos": int(np_state[2]),
            },
            **self._plugin_states(),
            "history": table_columns(self.history, HISTORY_COLUMNS),
            "validation": table_columns(self.validations, VALIDATION_COLUMNS),
            "config": config_to_dict(self.cfg),
        }

    def _restore_input_generator(self, state: torch.Tensor | None) -> None:
        """Set the input spikes' own generator (``dataset.encoding.draw_on: device`` on a GPU)
        to its saved state; a savepoint written where the run's CPU generator drew them has
        none, and the spikes continue from the config's seed (with a warning)."""
        if self.input_generator is self.generator:
            return
        if state is None:
            logger.warning(
                "the savepoint holds no state of the %s generator of the input spikes (it was "
                "written on the CPU or with dataset.encoding.draw_on: cpu); they are drawn anew "
                "from the config's seed, so the run differs from one never stopped",
                self.device.type,
            )
            return
        self.input_generator.set_state(state)

    def _plugin_states(self) -> dict[str, Any]:
        """Each plug-in's state under its checkpoint key; None for a plug-in the run lacks."""
        states: dict[str, Any] = {plugin.checkpoint_key: None for plugin in PLUGIN_TYPES}
        for plugin in self.plugins:
            states[plugin.checkpoint_key] = plugin.state_dict()
        return states

    def load_state_dict(self, checkpoint: dict[str, Any]) -> None:
        """Restore everything :meth:`state_dict` saved."""
        if checkpoint.get("optimizer", {}) is None:
            raise ResultsError(
                "this savepoint was exported without its optimizer state (snnexp export "
                "--drop-optimizer): it runs inference and eval but cannot be continued; continue "
                "from the original run folder or train again"
            )
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            if self.scheduler is not None and checkpoint["scheduler"] is not None:
                self.scheduler.load_state_dict(checkpoint["scheduler"])
            rng = checkpoint["rng"]
            self.generator.set_state(rng["generator"])
            self._restore_input_generator(rng.get("input_generator"))
            torch.set_rng_state(rng["torch"])
            np.random.set_state(
                ("MT19937", rng["numpy_keys"].numpy().astype(np.uint32), rng["numpy_pos"], 0, 0.0)
            )
            for plugin in self.plugins:
                plugin.load_state_dict(checkpoint[plugin.checkpoint_key])
            self.history = history_rows(checkpoint["history"])
            self.validations = table_rows(checkpoint.get("validation") or {}, VALIDATION_COLUMNS)
            self.epoch = int(checkpoint["epoch"])
            self._evaluated.clear()
            position = checkpoint.get("position")
            self._resumed_epoch = None
            if position is not None:
                self._resumed_epoch = EpochProgress.from_state_dict(position, self.device)
                counts = {key: int(value) for key, value in position["plugin_counts"].items()}
                for plugin in self.plugins:
                    plugin.resume_epoch(counts)
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise ResultsError(
                f"the savepoint does not fit this run's config ({type(error).__name__}: {error}); "
                "was the run's config.yaml edited after training?"
            ) from error

    def save(self) -> Path:
        """Write the savepoint of the current epoch and the history; the savepoint supersedes
        the run's resume state."""
        if self.run_dir is None:
            raise ResultsError("this trainer has no result folder to save into")
        path = save_savepoint(self.run_dir, self.epoch, self.state_dict(), self.split_outputs())
        write_history(self.run_dir, self.history)
        clear_resume_state(self.run_dir)
        self._last_state_written = time.monotonic()
        logger.info("saved savepoint %s", path)
        return path

    def run(self, until_epoch: int, savepoints: Iterable[int]) -> list[dict[str, float]]:
        """Train from the current epoch to ``until_epoch``, saving at ``savepoints``.

        A fresh trainer (epoch 0, empty history) first records and saves the untrained network.
        A stop signal (:mod:`snnexp.run.stopping`) ends the run at the next batch boundary with
        :class:`~snnexp.run.stopping.RunStopped`, after writing the resume state.
        """
        with self.stop.installed(), thread_mode(self.cfg):
            return self._run(until_epoch, set(savepoints) | {until_epoch})

    def _run(self, until_epoch: int, wanted: set[int]) -> list[dict[str, float]]:
        if not (self.cfg.training.tensorboard and self.run_dir is not None):
            return self._train(until_epoch, wanted)
        self._tensorboard = TensorBoardLog(self.run_dir)
        try:
            return self._train(until_epoch, wanted)
        finally:
            self._tensorboard.close()
            self._tensorboard = None

    def _log_tensorboard(self) -> None:
        """The latest history row, weights and spikes to TensorBoard (if asked for)."""
        if self._tensorboard is None:
            return
        inputs = self.splits["val"].input_times[:STATISTICS_SAMPLES]
        self._tensorboard.epoch(self.epoch, self.history[-1], self.model, inputs, self.cfg.model.dt)

    def _train(self, until_epoch: int, wanted: set[int]) -> list[dict[str, float]]:
        self._last_state_written = time.monotonic()
        if not self.history:
            self.history.append(self.initial_row())
            if self.run_dir is not None:
                self.save()
            self._log_tensorboard()
            self._stop_between_epochs(saved=True)
        bar = tqdm(
            range(self.epoch, until_epoch),
            desc="epochs",
            unit="epoch",
            disable=not self.progress,
            initial=self.epoch,
            total=until_epoch,
        )
        for _ in bar:
            row = self.train_epoch()
            self.history.append(row)
            logger.debug(
                "epoch %d: train loss %.4f acc %.4f | val loss %.4f acc %.4f | lr %.5g | "
                "%.2f s | %d bumps",
                row["epoch"],
                row["train_loss"],
                row["train_accuracy"],
                row["val_loss"],
                row["val_accuracy"],
                row["lr"],
                row["seconds"],
                row["bumps"],
            )
            bar.set_postfix(
                loss=f"{row['train_loss']:.3f}",
                acc=f"{row['train_accuracy']:.3f}",
                val_acc=f"{row['val_accuracy']:.3f}",
            )
            saved = self.epoch in wanted and self.run_dir is not None
            if saved:
                self.save()
            elif self.run_dir is not None:
                write_history(self.run_dir, self.history)
            self._log_tensorboard()
            self.plot_progress(final=self.epoch == until_epoch)
            if self.epoch < until_epoch:
                self._stop_between_epochs(saved)
        return self.history

    def _stop_between_epochs(self, saved: bool) -> None:
        """After an epoch (or the untrained network): stop if a signal asked for it, writing
        the resume state unless the epoch's savepoint was just written."""
        if not self._stop_requested():
            return
        if not saved:
            self._write_resume_state(None)
        raise self._stopped(f"after epoch {self.epoch}")

    def plot_progress(self, final: bool = False) -> None:
        """Redraw ``progress.png`` (training curves so far) in the result folder, at most every
        PROGRESS_INTERVAL_S seconds and after the last epoch."""
        now = time.monotonic()
        if self.run_dir is None or not (
            final or now - self.last_progress_plot >= PROGRESS_INTERVAL_S
        ):
            return
        from snnexp.plots.curves import progress_png

        atomic_write_bytes(self.run_dir / PROGRESS_FILE, progress_png(self.history, self.cfg.name))
        self.last_progress_plot = time.monotonic()
