"""Spike encoders: turn data values into input spike times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from snnexp.functional.time_grid import in_steps


def latency_encode(
    values: np.ndarray | torch.Tensor, t_early: float = 0.15, t_late: float = 2.0
) -> torch.Tensor:
    """Latency (time-to-first-spike) code: one spike per value ``v`` in [0, 1] at

        t = t_early + v (t_late - t_early),

    so ``v = 0`` spikes at ``t_early`` and ``v = 1`` at ``t_late``. Returns float64 spike times of
    the same shape as ``values``. Callers that want bright pixels early pass ``1 - intensity``.
    """
    v = torch.as_tensor(values).to(torch.float64)
    return t_early + v * (t_late - t_early)


def intensity(times: torch.Tensor, t_early: float, t_late: float) -> torch.Tensor:
    """The value a latency code stands for, as an intensity in [0, 1]:

        p = (t_late - t) / (t_late - t_early),

    1 for the earliest spikes, 0 at t_late and for missing spikes (+inf). For MNIST this is the
    pixel intensity raw / 256.
    """
    return ((t_late - times) / (t_late - t_early)).clamp(0.0, 1.0).nan_to_num(0.0)


def latency_spike_train(times: torch.Tensor, dt: float, start: int, length: int) -> torch.Tensor:
    """Steps ``start .. start + length - 1`` of a latency code: a spike at time t falls into
    step floor(t / dt) (step n covers [n dt, (n + 1) dt)). ``(batch, n)`` times ->
    ``(length, batch, n)`` spikes in {0, 1}; +inf never spikes."""
    step = torch.floor(in_steps(times, dt))
    steps = torch.arange(start, start + length, device=times.device, dtype=times.dtype)
    return (steps.view(-1, 1, 1) == step.unsqueeze(0)).to(times.dtype)


def interpolated_latency_spike_train(
    times: torch.Tensor, dt: float, start: int, length: int
) -> torch.Tensor:
    """Like :func:`latency_spike_train`, but a spike keeps its time within the step: it is split
    between step n = floor(t / dt) and step n + 1 with amplitudes 1 - f and f,

        f = t / dt - n,

    so its centre of mass stays at t (a spike on the grid is a plain spike). Inputs coded by
    spike times then reach the network unquantised, and the amplitudes depend smoothly on t.
    ``(batch, n)`` times -> ``(length, batch, n)`` amplitudes in [0, 1]; +inf never spikes."""
    scaled = in_steps(times, dt)
    step = torch.floor(scaled)
    fraction = torch.where(torch.isfinite(scaled), scaled - step, torch.zeros_like(scaled))
    steps = torch.arange(start, start + length, device=times.device, dtype=times.dtype)
    steps = steps.view(-1, 1, 1)
    here = (steps == step.unsqueeze(0)).to(times.dtype) * (1.0 - fraction)
    after = (steps == step.unsqueeze(0) + 1).to(times.dtype) * fraction
    return here + after


def rate_spike_train(
    times: torch.Tensor,
    t_early: float,
    t_late: float,
    gain: float,
    length: int,
    generator: torch.Generator,
    batch_rows: tuple[int, int, int] | None = None,
) -> torch.Tensor:
    """A Bernoulli spike train of ``length`` steps, spike probability per step
    min(1, gain p) with p the :func:`intensity` of the latency code. Random numbers come from
    ``generator``, on its device (a CPU generator: the same spikes on every device; one on the
    device of ``times``: no transfer, but another stream). ``batch_rows`` (start,
    stop, batch): ``times`` are rows start .. stop - 1 of a batch; the draws are the whole
    batch's, these rows kept (a data-parallel rank draws what one process would)."""
    probability = (gain * intensity(times, t_early, t_late)).clamp(max=1.0)
    start, stop, rows = batch_rows or (0, len(times), len(times))
    shape = (length, rows, *times.shape[1:])
    draws = torch.rand(shape, generator=generator, dtype=times.dtype, device=generator.device)
    draws = draws[:, start:stop]
    return (draws.to(times.device) < probability.unsqueeze(0)).to(times.dtype)


def threshold_levels(n_thresholds: int) -> torch.Tensor:
    """Evenly spaced levels j / (n + 1), j = 1..n, in (0, 1)."""
    return torch.arange(1, n_thresholds + 1, dtype=torch.float64) / (n_thresholds + 1)


def threshold_crossing_spike_train(
    times: torch.Tensor,
    t_early: float,
    t_late: float,
    n_thresholds: int,
    start: int,
    length: int,
) -> torch.Tensor:
    """Sequential input as in LSNN (Bellec et al. 2018): the values of ``times`` (pixels in
    order) are presented one per step, step k showing p_k (the :func:`intensity`; p_{-1} = 0,
    nothing after the last value). Input neuron j < n fires when p crosses level theta_j upward
    (p_{k-1} < theta_j <= p_k), neuron n + j when it crosses downward
    (p_{k-1} >= theta_j > p_k). ``(batch, L)`` -> ``(length, batch, 2 n)``."""
    p = intensity(times, t_early, t_late)
    levels = threshold_levels(n_thresholds).to(times.device, times.dtype)
    batch, n_values = p.shape
    out = torch.zeros((length, batch, 2 * n_thresholds), device=times.device, dtype=times.dtype)
    first, last = max(start, 0), min(start + length, n_values)
    if first >= last:
        return out
    padded = torch.cat([torch.zeros_like(p[:, :1]), p], dim=1)
    now = padded[:, first + 1 : last + 1].T.unsqueeze(-1)
    before = padded[:, first:last].T.unsqueeze(-1)
    up = (before < levels) & (levels <= now)
    down = (before >= levels) & (levels > now)
    out[first - start : last - start] = torch.cat([up, down], dim=-1).to(times.dtype)
    return out


def lsnn_pixels(times: torch.Tensor, t_early: float, t_late: float) -> torch.Tensor:
    """The pixels as the LSNN code reads them (TensorFlow's MNIST reader): raw / 255 in float32,
    raw recovered from the latency code's raw / 256; as float64."""
    raw = torch.round(intensity(times, t_early, t_late) * 256.0).to(torch.float32)
    return (raw * torch.tensor(1.0 / 255.0, dtype=torch.float32)).to(torch.float64)


def lsnn_crossing_spike_train(
    times: torch.Tensor,
    t_early: float,
    t_late: float,
    n_levels: int,
    cue_steps: int,
    start: int,
    length: int,
) -> torch.Tensor:
    """Sequential input exactly as the LSNN tutorial codes it (``find_onset_offset`` of
    ``tutorial_sequential_mnist_with_LSNN.py``): levels theta_j = numpy.linspace(0, 1, n) over
    the pixels p_k (:func:`lsnn_pixels`, one per step). For every level but the last, an onset
    neuron fires in step k when p_k < theta_j <= p_{k+1} and an offset neuron when
    p_k >= theta_j > p_{k+1} (so the level-0 pair never fires); the last level (1) has one
    neuron firing in every step with p_k = 1. After the L pixels, a cue neuron fires in each of
    ``cue_steps`` steps (none with 0). Neurons in the tutorial's order: onset and offset per
    level, the level-1 neuron, the cue. ``(batch, L)`` -> ``(length, batch, 2 n - 1 [+ 1])``."""
    p = lsnn_pixels(times, t_early, t_late)
    levels = torch.from_numpy(np.linspace(0.0, 1.0, n_levels)).to(p.device)
    batch, n_values = p.shape
    now, following = p[:, :-1].T.unsqueeze(-1), p[:, 1:].T.unsqueeze(-1)
    crossing = levels[:-1]
    onset = (now < crossing) & (crossing <= following)
    offset = (now >= crossing) & (crossing > following)
    pairs = torch.stack([onset, offset], dim=-1).flatten(-2)
    touch = (p.T == levels[-1]).unsqueeze(-1)
    pixels = torch.cat([torch.cat([pairs, torch.zeros_like(pairs[:1])]), touch], dim=-1)
    n_inputs = pixels.shape[-1] + (1 if cue_steps else 0)
    out = torch.zeros((length, batch, n_inputs), device=times.device, dtype=times.dtype)
    first, last = max(start, 0), min(start + length, n_values)
    if first < last:
        out[first - start : last - start, :, : pixels.shape[-1]] = pixels[first:last]
    if cue_steps:
        first, last = max(start, n_values), min(start + length, n_values + cue_steps)
        if first < last:
            out[first - start : last - start, :, -1] = 1.0
    return out


@dataclass(frozen=True)
class SpikeEncoder:
    """Turns latency-coded input times ``(batch, n)`` into spike trains, chunk by chunk.

    ``type`` is ``latency``, ``rate``, ``threshold_crossing`` (see the functions above) or
    ``direct`` (no spikes: the :func:`intensity` as input current in every step) or
    ``lsnn_crossing`` (:func:`lsnn_crossing_spike_train`, ``thresholds`` levels and a cue
    neuron for ``cue_steps`` steps after the sequence);
    ``dt`` is the step of the simulation, ``t_early`` / ``t_late`` those of the latency code;
    ``interpolate`` splits latency spikes between the two steps around their time
    (:func:`interpolated_latency_spike_train`); ``draw_on`` (``device`` or ``cpu``) where a
    random code's generator lives (:meth:`new_generator`, :meth:`training_generator`).
    """

    type: str = "latency"
    dt: float = 0.1
    t_early: float = 0.15
    t_late: float = 2.0
    rate_gain: float = 1.0
    thresholds: int = 40
    interpolate: bool = False
    cue_steps: int = 0
    draw_on: str = "device"
    batch_rows: tuple[int, int, int] | None = None
    """Data-parallel training: the rows of the batch this rank encodes (rate code)."""

    @property
    def is_random(self) -> bool:
        """Whether the spike trains are drawn at random (rate code)."""
        return self.type == "rate"

    def new_generator(self, device: torch.device, seed: int) -> torch.Generator:
        """A generator for the random code, seeded with ``seed``: on ``device`` (``draw_on:
        device``) or on the CPU."""
        where = device if self.draw_on == "device" else torch.device("cpu")
        return torch.Generator(device=where).manual_seed(seed)

    def training_generator(
        self, shared: torch.Generator, device: torch.device, seed: int
    ) -> torch.Generator:
        """The generator of a training run's input spikes: the run's CPU generator ``shared``
        (which also shuffles the batches), unless the code is random and drawn on a device other
        than the CPU; then a generator of its own there, seeded with ``seed``."""
        if self.is_random and self.draw_on == "device" and torch.device(device).type != "cpu":
            return self.new_generator(torch.device(device), seed)
        return shared

    def n_inputs(self, n_values: int) -> int:
        """Input neurons for ``n_values`` values per sample."""
        if self.type == "threshold_crossing":
            return 2 * self.thresholds
        if self.type == "lsnn_crossing":
            return 2 * self.thresholds - 1 + (1 if self.cue_steps else 0)
        return n_values

    def __call__(
        self, times: torch.Tensor, start: int, length: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Steps ``start .. start + length - 1`` as ``(length, batch, n_inputs)``."""
        if self.type == "latency" and self.interpolate:
            return interpolated_latency_spike_train(times, self.dt, start, length)
        if self.type == "latency":
            return latency_spike_train(times, self.dt, start, length)
        if self.type == "rate":
            return rate_spike_train(
                times, self.t_early, self.t_late, self.rate_gain, length, generator,
                self.batch_rows,
            )
        if self.type == "threshold_crossing":
            return threshold_crossing_spike_train(
                times, self.t_early, self.t_late, self.thresholds, start, length
            )
        if self.type == "lsnn_crossing":
            return lsnn_crossing_spike_train(
                times, self.t_early, self.t_late, self.thresholds, self.cue_steps, start, length
            )
        if self.type == "direct":
            value = intensity(times, self.t_early, self.t_late)
            return value.unsqueeze(0).expand(length, *value.shape)
        raise ValueError(
            f"unknown encoding {self.type!r}; available: latency, rate, threshold_crossing, "
            "lsnn_crossing, direct"
        )
