r"""DEEP R (Bellec, Kappel, Maass, Legenstein, "Deep Rewiring", ICLR 2018) as an optimizer-side
wrapper: sparse connectivity at a fixed budget.

Every potential synapse k of a rewired matrix has a fixed sign s_k and a parameter theta_k >= 0.
It is *active* when theta_k > 0, with weight w_k = s_k theta_k, and *dormant* otherwise, with
weight exactly 0. The layers keep using the weight tensors as they are (``w``, with
theta = s w). One training step:

1. active synapses follow the loss gradient through the wrapped optimizer,
   dL/dtheta_k = s_k dL/dw_k (dormant synapses get no gradient);
2. the L1 term and Gaussian noise of temperature T act on active synapses directly, as in the
   published DEEP R code: theta_k -= lr l1 and theta_k += sqrt(2 lr T) N(0, 1). (Passed through
   an adaptive optimizer such as Adam, the L1 gradient would be rescaled to a full-size step
   wherever the loss gradient vanishes, e.g. on every synapse of a silent neuron.)
3. an active synapse whose theta_k fell to <= 0 becomes dormant (w_k = 0);
4. as many dormant synapses as the budget lacks (as were deactivated, or, after LSNN's initial
   draw, also those its coinciding draws left out), drawn uniformly at random, become active
   with theta = :data:`REGROWN_THETA`, so the number of active synapses stays at the budget.

The budget is round(connectivity x size) per matrix (``scope: per_layer``) or over all rewired
matrices together (``scope: global``; regrowth then draws from all dormant synapses). With
``bias_synapses: dense`` the rows of a matrix that carry bias spikes stay out of it all: always
active, free in sign, no L1 or noise, not counted in the size or the budget (the biases of the
DEEP R paper are dense too). Signs are
``free`` (the signs of the initial weights, a fair coin where one is 0) or ``dale`` (each
presynaptic neuron, a row of the ``(n_in, n_out)`` matrices, is excitatory with probability
``excitatory_fraction``, else inhibitory) or ``lsnn`` (Dale's law as the LSNN code draws it:
every neuron has one sign in all the matrices it feeds, and exactly int(f n) + 1 of a
population's n neurons are excitatory, :func:`lsnn_neuron_signs`); they never change. The
initial active synapses are drawn uniformly without replacement (``init: layer`` or
``balanced``), or as LSNN's ``weight_sampler`` draws them (``init: lsnn``: int(connectivity
size) (row, column) pairs of every matrix with replacement, so a few fewer; the first step
fills the budget up). The optimizer's per-entry state
(Adam moments, momentum) is cleared for every synapse that is deactivated or regrown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from snnexp.config import BIAS_SYNAPSES, REWIRING_INITS, SCOPES, SIGN_MODES
from snnexp.rules.plugin import PluginContext, TrainerPlugin

REGROWN_THETA = 1e-6
"""theta of a regrown synapse: active, but with a weight small enough to change nothing yet."""


@dataclass(frozen=True)
class RewiringParams:
    """Connectivity fraction, L1 strength, temperature, sign mode and budget scope."""

    connectivity: float
    l1: float = 0.0
    temperature: float = 0.0
    signs: str = "free"
    excitatory_fraction: float = 0.8
    scope: str = "per_layer"
    bias_synapses: str = "rewired"
    init: str = "layer"

    def __post_init__(self) -> None:
        if not 0 < self.connectivity <= 1:
            raise ValueError(f"connectivity must be in (0, 1], got {self.connectivity}")
        if self.signs not in SIGN_MODES:
            raise ValueError(f"signs must be one of {', '.join(SIGN_MODES)}, got {self.signs!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.init not in REWIRING_INITS:
            raise ValueError(f"init must be one of {', '.join(REWIRING_INITS)}, got {self.init!r}")
        if self.bias_synapses not in BIAS_SYNAPSES:
            raise ValueError(
                f"bias_synapses must be one of {', '.join(BIAS_SYNAPSES)}, "
                f"got {self.bias_synapses!r}"
            )


def draw_signs(
    weight: torch.Tensor, params: RewiringParams, generator: torch.Generator
) -> torch.Tensor:
    """Fixed signs (+1 / -1) of one ``(n_in, n_out)`` matrix (see the module docstring)."""
    if params.signs == "dale":
        rows = torch.rand((weight.shape[0], 1), generator=generator).to(weight.device)
        signs = torch.where(rows < params.excitatory_fraction, 1.0, -1.0)
        return signs.expand_as(weight).to(weight.dtype).contiguous()
    coin = torch.rand(weight.shape, generator=generator).to(weight.device)
    fallback = torch.where(coin < 0.5, 1.0, -1.0).to(weight.dtype)
    return torch.where(weight != 0, torch.sign(weight), fallback)


def lsnn_neuron_signs(
    n: int, excitatory_fraction: float, shuffled: bool, generator: torch.Generator
) -> torch.Tensor:
    """Signs ``(n,)`` of a population as the LSNN tutorial draws them: int(f n) + 1 excitatory
    (+1), the others inhibitory (-1); in random order (``shuffled``, its input neurons) or
    inhibitory first (its recurrent neurons, which it does not shuffle)."""
    excitatory = min(int(excitatory_fraction * n) + 1, n)
    signs = torch.cat([-torch.ones(n - excitatory), torch.ones(excitatory)])
    if shuffled:
        signs = signs[torch.randperm(n, generator=generator)]
    return signs


def lsnn_initial_synapses(
    shape: tuple[int, int], connectivity: float, generator: torch.Generator
) -> torch.Tensor:
    """The initial synapses of LSNN's ``weight_sampler``: int(connectivity n_in n_out) pairs
    (row, column), each drawn uniformly with replacement (pairs that coincide count once)."""
    n_in, n_out = shape
    count = int(connectivity * n_in * n_out)
    rows = torch.randint(n_in, (count,), generator=generator)
    columns = torch.randint(n_out, (count,), generator=generator)
    mask = torch.zeros(shape, dtype=torch.bool)
    mask[rows, columns] = True
    return mask


def balanced_magnitudes(
    row_signs: torch.Tensor, n_out: int, generator: torch.Generator
) -> torch.Tensor:
    r"""theta ``(n_in, n_out)`` of LSNN's initialisation of a signed matrix
    (``random_sparse_signed_matrix`` of its rewiring tools), for presynaptic signs s_i:

    1. a square matrix theta_ik = |N(0, 1)|, w_ik = s_i theta_ik (n_in x n_in);
    2. the inhibitory rows scaled by sum_E w / sum_I |w|, so that both totals are equal;
    3. every column k balanced to sum_i w_ik = 0: a surplus of inhibition spread evenly over
       its excitatory entries, a surplus of excitation over its inhibitory ones;
    4. theta scaled so that the largest |eigenvalue| of w is 1;
    5. the first n_out columns, or n_out columns drawn with replacement where n_out > n_in.

    A row sign of every kind must be present (else steps 2-3 are skipped, as in LSNN)."""
    n = len(row_signs)
    signs = row_signs.double().unsqueeze(1)
    theta = torch.randn((n, n), generator=generator, dtype=torch.float64).abs()
    excitatory, inhibitory = signs.squeeze(1) > 0, signs.squeeze(1) < 0
    if excitatory.any() and inhibitory.any():
        w = signs * theta
        theta[inhibitory] *= w[excitatory].sum() / -w[inhibitory].sum()
        w = signs * theta
        surplus = w.sum(dim=0)
        theta[excitatory] += torch.where(surplus < 0, -surplus, 0.0) / int(excitatory.sum())
        theta[inhibitory] += torch.where(surplus > 0, surplus, 0.0) / int(inhibitory.sum())
    theta /= torch.linalg.eigvals(signs * theta).abs().max()
    if n_out > n:
        theta = theta[:, torch.randint(n, (n_out,), generator=generator)]
    return theta[:, :n_out]


def choose(candidates: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` flat indices drawn uniformly without replacement from the True entries of the
    flat boolean ``candidates``."""
    index = candidates.nonzero().flatten()
    order = torch.randperm(len(index), generator=generator)[:count].to(index.device)
    return index[order]


class DeepR:
    """Keeps the weight matrices ``weights`` sparse at a fixed budget while ``optimizer``
    trains them (see the module docstring). Call :meth:`step` instead of ``optimizer.step``.

    The initial weights give the magnitudes: an active synapse starts at
    theta = |w_init| (at least REGROWN_THETA), w = s theta; with ``init: balanced`` or ``lsnn``
    the magnitudes of :func:`balanced_magnitudes` instead. ``bias_rows`` gives the number of
    trailing rows of each matrix that carry bias spikes (used with ``bias_synapses: dense``).
    ``populations`` (needed for ``signs: lsnn``) names the presynaptic neurons of each matrix,
    (name, shuffled): matrices with the same name share their neurons' signs, ``shuffled``
    orders them at random, else inhibitory first (:func:`lsnn_neuron_signs`).
    """

    def __init__(
        self,
        weights: Sequence[torch.nn.Parameter],
        optimizer: torch.optim.Optimizer,
        params: RewiringParams,
        generator: torch.Generator,
        bias_rows: Sequence[int] | None = None,
        populations: Sequence[tuple[str, bool]] | None = None,
    ) -> None:
        self.weights = list(weights)
        self.optimizer = optimizer
        self.params = params
        self.generator = generator
        if params.bias_synapses == "rewired" or bias_rows is None:
            bias_rows = [0] * len(self.weights)
        self.fixed = [
            _trailing_rows(w, rows) for w, rows in zip(self.weights, bias_rows, strict=True)
        ]
        self.signs = self._draw_signs(populations)
        self.active = self._initial_active()
        self.total_budget = sum(self.budgets())
        if params.scope == "global":
            total = sum(int((~fixed).sum()) for fixed in self.fixed)
            self.total_budget = round(params.connectivity * total)
        with torch.no_grad():
            for weight, sign, active, fixed in zip(
                self.weights, self.signs, self.active, self.fixed, strict=True
            ):
                theta = weight.abs()
                if params.init in ("balanced", "lsnn"):
                    magnitudes = balanced_magnitudes(sign[:, 0].cpu(), weight.shape[1], generator)
                    theta = magnitudes.to(weight.device, weight.dtype)
                theta = theta.clamp(min=REGROWN_THETA)
                rewired = torch.where(active, sign * theta, torch.zeros_like(weight))
                weight.copy_(torch.where(fixed, weight, rewired))

    def budgets(self) -> list[int]:
        """Rewired synapses active per matrix at init (per_layer: kept for ever; global: only
        their total is kept); dense bias synapses come on top."""
        return [round(self.params.connectivity * int((~fixed).sum())) for fixed in self.fixed]

    def _draw_signs(self, populations: Sequence[tuple[str, bool]] | None) -> list[torch.Tensor]:
        """Each matrix's signs: drawn per matrix (free, dale), or per population (lsnn)."""
        if self.params.signs != "lsnn":
            return [draw_signs(w.detach(), self.params, self.generator) for w in self.weights]
        if populations is None or len(populations) != len(self.weights):
            raise ValueError(
                "signs 'lsnn' needs the presynaptic population of every rewired matrix; "
                "only LSNN networks (model.neuron.type: lsnn) name them"
            )
        drawn: dict[str, torch.Tensor] = {}
        signs = []
        for weight, (name, shuffled) in zip(self.weights, populations, strict=True):
            if name not in drawn:
                fraction = self.params.excitatory_fraction
                drawn[name] = lsnn_neuron_signs(len(weight), fraction, shuffled, self.generator)
            if len(drawn[name]) != len(weight):
                raise ValueError(
                    f"population {name!r} feeds matrices with {len(drawn[name])} and "
                    f"{len(weight)} rows"
                )
            rows = drawn[name].to(weight.device, weight.dtype).unsqueeze(1)
            signs.append(rows.expand_as(weight).contiguous())
        return signs

    def _initial_active(self) -> list[torch.Tensor]:
        if self.params.init == "lsnn":
            masks = []
            for fixed in self.fixed:
                free_rows = int((~fixed[:, 0]).sum())
                mask = torch.zeros(fixed.shape, dtype=torch.bool)
                shape = (free_rows, fixed.shape[1])
                mask[:free_rows] = lsnn_initial_synapses(
                    shape, self.params.connectivity, self.generator
                )
                masks.append(mask.to(fixed.device) | fixed)
            return masks
        if self.params.scope == "per_layer":
            masks = []
            for fixed, budget in zip(self.fixed, self.budgets(), strict=True):
                mask = torch.zeros(fixed.numel(), dtype=torch.bool, device=fixed.device)
                mask[choose(~fixed.flatten(), budget, self.generator)] = True
                masks.append(mask.view(fixed.shape) | fixed)
            return masks
        sizes = [fixed.numel() for fixed in self.fixed]
        candidates = torch.cat([~fixed.flatten().cpu() for fixed in self.fixed])
        total = round(self.params.connectivity * int(candidates.sum()))
        flat = torch.zeros(sum(sizes), dtype=torch.bool)
        flat[choose(candidates, total, self.generator)] = True
        return [
            part.view(fixed.shape).to(fixed.device) | fixed
            for part, fixed in zip(flat.split(sizes), self.fixed, strict=True)
        ]

    def active_mask(self, weight: torch.Tensor) -> torch.Tensor | None:
        """Mask of the active synapses of ``weight`` (None if it is not rewired)."""
        for candidate, active in zip(self.weights, self.active, strict=True):
            if candidate is weight:
                return active
        return None

    def active_count(self) -> int:
        """Number of active synapses over all rewired matrices."""
        return int(sum(int(mask.sum()) for mask in self.active))

    def step(self) -> int:
        """Optimizer step on the active synapses (+ L1), noise, deactivation and regrowth;
        returns the number of synapses rewired."""
        with torch.no_grad():
            for weight, active in zip(self.weights, self.active, strict=True):
                if weight.grad is not None:
                    weight.grad.mul_(active)
        self.optimizer.step()
        return self.constrain(noise=True)

    @torch.no_grad()
    def constrain(self, noise: bool = False) -> int:
        """L1 shrinkage and noise (``noise``: after an optimizer step), deactivation of synapses
        with theta <= 0 and regrowth of as many; dormant weights are set to exactly 0. Returns
        the number of synapses rewired. Call it after any change of the weights outside
        :meth:`step` (e.g. weight bumping)."""
        lr = self.optimizer.param_groups[0]["lr"]
        scale = math.sqrt(2 * lr * self.params.temperature) if noise else 0.0
        shrink = lr * self.params.l1 if noise else 0.0
        deactivated = []
        for weight, sign, active, fixed in zip(
            self.weights, self.signs, self.active, self.fixed, strict=True
        ):
            rewired = active & ~fixed
            if shrink:
                weight.sub_(shrink * sign * rewired)
            if scale:
                draws = torch.randn(weight.shape, generator=self.generator, dtype=weight.dtype)
                weight.add_(scale * sign * draws.to(weight.device) * rewired)
            dead = rewired & (sign * weight <= 0)
            active &= ~dead
            weight.mul_(active)
            self._clear_optimizer_state(weight, dead)
            deactivated.append(int(dead.sum()))
        self._regrow()
        return sum(deactivated)

    def _rewired_active(self) -> list[int]:
        """Active synapses per matrix, dense bias synapses not counted."""
        return [int((a & ~f).sum()) for a, f in zip(self.active, self.fixed, strict=True)]

    def _regrow(self) -> None:
        """Activate as many dormant synapses as the budget lacks (per matrix, or over all)."""
        if self.params.scope == "per_layer":
            missing = [b - a for b, a in zip(self.budgets(), self._rewired_active(), strict=True)]
            for k, count in enumerate(missing):
                if count > 0:
                    self._activate(k, choose(~self.active[k].flatten(), count, self.generator))
            return
        total = self.total_budget - sum(self._rewired_active())
        if total <= 0:
            return
        sizes = [w.numel() for w in self.weights]
        dormant = torch.cat([~mask.flatten().cpu() for mask in self.active])
        chosen = choose(dormant, total, self.generator)
        offsets = [0, *torch.tensor(sizes).cumsum(0).tolist()]
        for k in range(len(self.weights)):
            mine = chosen[(chosen >= offsets[k]) & (chosen < offsets[k + 1])] - offsets[k]
            if len(mine):
                self._activate(k, mine.to(self.weights[k].device))

    def _activate(self, k: int, flat_index: torch.Tensor) -> None:
        weight, sign, active = self.weights[k], self.signs[k], self.active[k]
        active.view(-1)[flat_index] = True
        weight.view(-1)[flat_index] = REGROWN_THETA * sign.reshape(-1)[flat_index]
        regrown = torch.zeros_like(active)
        regrown.view(-1)[flat_index] = True
        self._clear_optimizer_state(weight, regrown)

    def _clear_optimizer_state(self, weight: torch.Tensor, mask: torch.Tensor) -> None:
        for value in self.optimizer.state.get(weight, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == weight.shape:
                value.masked_fill_(mask, 0.0)

    def state_dict(self) -> dict[str, Any]:
        """Signs and active masks (plain tensors; the generator is saved by its owner)."""
        return {
            "signs": [sign.cpu() for sign in self.signs],
            "active": [mask.cpu() for mask in self.active],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.signs = [
            s.to(w.device, w.dtype) for s, w in zip(state["signs"], self.weights, strict=True)
        ]
        self.active = [m.to(w.device) for m, w in zip(state["active"], self.weights, strict=True)]


def _trailing_rows(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """Boolean mask of the last ``rows`` rows of ``weight``."""
    mask = torch.zeros(weight.shape, dtype=torch.bool, device=weight.device)
    if rows:
        mask[-rows:] = True
    return mask


def rewired_weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight matrices DEEP R rewires: every 2-d ``weight`` and ``recurrent_weight``."""
    return [parameter for parameter, _ in rewired_weights_and_bias_rows(model)]


def rewired_weights_and_bias_rows(
    model: torch.nn.Module,
) -> list[tuple[torch.nn.Parameter, int]]:
    """:func:`rewired_weights` with the number of bias-spike rows at the end of each (the
    module's ``bias_times`` for a ``weight``, 0 for a ``recurrent_weight``)."""
    found = []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if parameter.dim() != 2 or name not in ("weight", "recurrent_weight"):
                continue
            bias_times = getattr(module, "bias_times", None)
            rows = int(bias_times.numel()) if name == "weight" and bias_times is not None else 0
            found.append((parameter, rows))
    return found


class Rewiring(TrainerPlugin):
    """DEEP R as a trainer plug-in, for runs with ``learning.rewiring.connectivity``: it makes
    every optimizer step (:meth:`DeepR.step`), keeps the budget after weights changed elsewhere
    (:meth:`DeepR.constrain`), and reports the active synapses and the rewirings of the epoch."""

    checkpoint_key = "rewiring"

    def __init__(self, context: PluginContext) -> None:
        weights, bias_rows = zip(*rewired_weights_and_bias_rows(context.model), strict=True)
        params = RewiringParams(**vars(context.cfg.learning.rewiring))
        named = getattr(context.model, "presynaptic_populations", None)
        self.deep_r = DeepR(
            list(weights),
            context.optimizer,
            params,
            context.generator,
            list(bias_rows),
            populations=named() if named is not None else None,
        )
        self.rewirings = 0

    @classmethod
    def wanted(cls, context: PluginContext) -> bool:
        """Whether the run rewires (learning.rewiring.connectivity is set)."""
        return context.cfg.learning.rewiring.connectivity is not None

    def begin_epoch(self) -> None:
        self.rewirings = 0

    def optimizer_step(self) -> bool:
        self.rewirings += self.deep_r.step()
        return True

    def weights_changed(self) -> None:
        self.rewirings += self.deep_r.constrain()

    def synapse_mask(self, weight: torch.Tensor) -> torch.Tensor | None:
        return self.deep_r.active_mask(weight)

    def epoch_counts(self) -> dict[str, int]:
        return {"rewirings": self.rewirings, "connections": self.deep_r.active_count()}

    def resume_epoch(self, counts: dict[str, int]) -> None:
        self.rewirings = counts["rewirings"]

    def state_dict(self) -> dict[str, Any]:
        return self.deep_r.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.deep_r.load_state_dict(state)
