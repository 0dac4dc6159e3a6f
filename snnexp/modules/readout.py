"""The read-out of a time-stepped network (one score per class from the label layer) and the base
class of every network simulated step by step from input spike times, in chunks of steps."""

from __future__ import annotations

import torch
from torch import nn

from snnexp.choices import READOUTS
from snnexp.data.encoding import SpikeEncoder
from snnexp.modules.modes import evaluation_mode

CHUNK_STEPS = 100
"""Steps simulated per chunk: without gradients, memory depends on this, not on the steps."""


EVAL_SEED = 0
"""Seed of random input spike trains (rate code) when no generator is given (evaluation)."""


class Readout:
    """Accumulates the label layer's outputs over the read-out window into one score per class.

    spike_count: number of spikes; max_membrane / mean_membrane: max / mean of v over the
    window; final_membrane: v at the window's last step (of a non-leaky integrator: the sum of
    its input, the read-out of converted networks); first_spike: -t_first / xi with
    t_first = sum_t t f_t + T (1 - sum_t f_t) and the first-spike indicator
    f_t = z_t prod_{s<t} (1 - z_s) (differentiable through the surrogate; T, the window's end,
    for no spike).

    ``by_step`` (not for first_spike) also keeps the scores the read-out would give if the
    window ended after each of its steps: ``step_scores()`` ``(steps, batch, classes)``.
    """

    def __init__(
        self, kind: str, start: int, end: int, dt: float, xi: float, by_step: bool = False
    ) -> None:
        if kind not in READOUTS:
            raise ValueError(f"unknown read-out {kind!r}; available: {', '.join(READOUTS)}")
        if by_step and kind == "first_spike":
            raise ValueError("the first_spike read-out has no scores per step")
        self.kind, self.start, self.end, self.dt, self.xi = kind, start, end, dt, xi
        self.total: torch.Tensor | None = None
        self.not_yet: torch.Tensor | None = None
        self.by_step: list[torch.Tensor] | None = [] if by_step else None
        self.seen = 0

    def add(self, outputs: torch.Tensor, first_step: int) -> None:
        """Take in the label layer's outputs of steps ``first_step ..``."""
        lo = max(self.start - first_step, 0)
        hi = min(self.end - first_step, len(outputs))
        if lo >= hi:
            return
        window = outputs[lo:hi]
        if self.kind == "first_spike":
            self._add_first_spikes(window, first_step + lo)
            return
        if self.by_step is not None:
            self.by_step.append(self._running(window))
        self.seen += len(window)
        if self.kind == "final_membrane":
            self.total = window[-1]
            return
        part = window.amax(dim=0) if self.kind == "max_membrane" else window.sum(dim=0)
        if self.total is None:
            self.total = part
        elif self.kind == "max_membrane":
            self.total = torch.maximum(self.total, part)
        else:
            self.total = self.total + part

    def _running(self, window: torch.Tensor) -> torch.Tensor:
        """The scores after each step of ``window`` (``self.total`` not yet updated)."""
        if self.kind == "final_membrane":
            return window.detach().clone()
        if self.kind == "max_membrane":
            running = window.detach().cummax(dim=0).values
            return running if self.total is None else torch.maximum(running, self.total.detach())
        running = window.detach().cumsum(dim=0)
        if self.total is not None:
            running = running + self.total.detach()
        if self.kind == "mean_membrane":
            steps = torch.arange(1, len(window) + 1, device=window.device) + self.seen
            running = running / steps.reshape(-1, *[1] * (window.dim() - 1)).to(window.dtype)
        return running

    def step_scores(self) -> torch.Tensor:
        """``(steps, batch, classes)``: the scores had the window ended after each step."""
        if not self.by_step:
            raise RuntimeError("this read-out kept no scores per step")
        return torch.cat(self.by_step)

    def _add_first_spikes(self, window: torch.Tensor, first_step: int) -> None:
        if self.total is None:
            self.total = torch.zeros_like(window[0])
            self.not_yet = torch.ones_like(window[0])
        for offset, spikes in enumerate(window):
            first = spikes * self.not_yet
            self.total = self.total + (first_step + offset - self.start) * self.dt * first
            self.not_yet = self.not_yet * (1.0 - spikes)

    def scores(self) -> torch.Tensor:
        """(batch, classes): higher is more likely."""
        if self.total is None:
            raise RuntimeError("the read-out window received no steps")
        if self.kind == "mean_membrane":
            return self.total / (self.end - self.start)
        if self.kind == "first_spike":
            t_first = self.total + (self.end - self.start) * self.dt * self.not_yet
            return -t_first / self.xi
        return self.total


class SteppedReadoutNetwork(nn.Module):
    """A network simulated step by step from input spike times to a read-out per class (a
    stack of layers, :class:`TimeSteppedNetwork`, or a graph of blocks,
    :class:`snnexp.graph.GraphNetwork`). Subclasses define ``simulate``; ``generator`` feeds
    random encoders during training (None: a fixed seed)."""

    def __init__(
        self,
        encoder: SpikeEncoder,
        steps: int,
        readout: str = "spike_count",
        readout_steps: int | None = None,
        xi: float = 1.0,
        chunk_steps: int = CHUNK_STEPS,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.steps = steps
        self.readout = readout
        self.readout_steps = readout_steps or steps
        self.xi = xi
        self.chunk_steps = chunk_steps
        self.generator: torch.Generator | None = None
        self.keep_step_scores = False
        self.last_readout: Readout | None = None

    def input_generator(self, device: torch.device) -> torch.Generator:
        """The generator of the random input code: the training run's, else a fresh one
        seeded with ``EVAL_SEED`` where the encoder draws (the same spikes in every
        evaluation)."""
        return self.generator or self.encoder.new_generator(device, EVAL_SEED)

    def new_readout(self) -> Readout:
        """An empty read-out over the last ``readout_steps`` steps."""
        start = self.steps - self.readout_steps
        readout = Readout(
            self.readout, start, self.steps, self.encoder.dt, self.xi, self.keep_step_scores
        )
        if self.keep_step_scores:
            self.last_readout = readout
        return readout

    def simulate(
        self, input_times: torch.Tensor, record: bool = False
    ) -> tuple[torch.Tensor, list[torch.Tensor], dict[str, list[torch.Tensor]]]:
        """Scores, hidden spike counts and (``record``) traces, chunk by chunk."""
        raise NotImplementedError

    def forward(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Input spike times ``(batch, n_values)`` -> (scores, [hidden spike counts, ...])."""
        scores, hidden, _ = self.simulate(input_times)
        return scores, hidden

    @torch.no_grad()
    def scores_by_step(self, input_times: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The read-out's scores had the simulation ended after each step of the read-out
        window ``(steps, batch, classes)`` (one simulation gives the accuracy against the
        number of steps) and the hidden spike counts of the whole run, in evaluation mode."""
        self.keep_step_scores = True
        try:
            with evaluation_mode(self):
                _, hidden, _ = self.simulate(input_times)
            assert self.last_readout is not None
            return self.last_readout.step_scores(), hidden
        finally:
            self.keep_step_scores = False
            self.last_readout = None

    def use_fixed_partition(self) -> None:
        """Compute the large products with trained weights (and pooling) in parts fixed by the
        shapes (:mod:`snnexp.functional.fixed_partition`). Inside
        :func:`snnexp.functional.threads.torch_single_threaded` (as
        :func:`snnexp.run.build.thread_mode` runs ``training.thread_independent`` runs) the
        results are then bitwise the same with any number of CPU threads."""
        for module in self.modules():
            if hasattr(module, "fixed_partition"):
                module.fixed_partition = True

    @torch.no_grad()
    def record(self, input_times: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every step of a few samples (for rasters and membrane traces), in evaluation mode
        (no dropout): ``(steps, batch, n)`` tensors keyed as in ``simulate``, plus ``scores``."""
        with evaluation_mode(self):
            scores, _, traces = self.simulate(input_times, record=True)
        recorded = {name: torch.cat(parts) for name, parts in traces.items()}
        recorded["scores"] = scores
        return recorded
