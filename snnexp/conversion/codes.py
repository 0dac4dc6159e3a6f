r"""The spike codes an ANN is converted to, and the spiking blocks each makes of the ANN's.

Every hidden ReLU (``neurons`` block) becomes integrate-and-fire neurons (model ``iaf``,
v_t = v_{t-1} + x_t, threshold theta); the label layer becomes a non-spiking integrator read
out at the last step (``final_membrane``): v_T = sum_t x_t, whose arg max estimates the ANN's.
The input is the image itself, a constant current (``direct`` encoding, as in Rueckauer et al.
2017). A max pooling block in front of a ReLU moves behind it (max and ReLU commute), so that
spiking neurons see every input of a window.

``rate`` (Rueckauer et al. 2017): reset by subtraction, so that a neuron with a constant input
current x fires floor(t x / theta) spikes by step t: its rate codes max(0, x) / theta. Max
pooling passes the spikes of the input with the most spikes so far in each window
(``gated_max_pool2d``).

``ttfs`` (time to first spike, Rueckauer & Liu 2018, ISCAS; as the TensorFlow SNN toolbox
implements it): each neuron fires at most once (``refractory_steps`` = the simulated steps);
after its spike its output stays 1 (a ``hold`` block), a step current into its targets, so
that by step t the membrane of neuron i holds

    V_i(t) = sum_{s <= t} (sum_j w_ij H(s - t_j) + b_i),

and a neuron with a constant input current x (the first layer) fires at t = ceil(theta / x):
the earlier the spike, the larger the activation (1 / t codes x / theta). Max pooling of the
held outputs passes the earliest, i.e. the most active, input of a window. A neuron that fired
contributes w_ij whatever its activation, so the longer the simulation, the more weakly active
neurons count as much as strongly active ones: the accuracy rises to a plateau and then falls;
the defaults (theta = 6, 50 steps) sit on the plateau of LeNet-5's validation accuracy on
MNIST (`snnexp eval` of a converted run draws the accuracy after every step).

``ttfs_dyn_thresh``: the ttfs network whose neurons' thresholds are raised by the weights of
the inputs that have not fired yet but receive positive input (theta + sum_j |w_ij| p_j(t),
:mod:`snnexp.graph.dynamic_threshold`), so that a neuron waits for inputs that may still
inhibit it.

``ttfs_clamped`` (the TensorFlow SNN toolbox's name): the same network, converted from an ANN
trained with clamped ReLUs a = x if x > beta else 0 (``clamp: beta`` on its neurons blocks,
e.g. ``experiment_configs/mnist_lenet5_ann_clamped.yaml``), so that activations too small to
fire in time are not needed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Code:
    """A spike code: its defaults and what it makes of the ANN's neurons and pooling."""

    name: str
    summary: str
    steps: int
    threshold: float
    once: bool
    """Each neuron fires at most once and holds its output afterwards (a step current)."""
    clamped: bool = False
    """Converts an ANN with clamped ReLUs (``clamp`` > 0 on its neurons blocks), and only such."""
    dynamic_threshold: bool = False
    """Thresholds raised by the weights of inputs yet to fire (``dynamic_threshold`` blocks)."""


CODES: dict[str, Code] = {
    code.name: code
    for code in (
        Code(
            "rate",
            "integrate-and-fire neurons whose spike rates code the activations, reset by "
            "subtraction, gated max pooling (Rueckauer et al. 2017)",
            steps=100,
            threshold=1.0,
            once=False,
        ),
        Code(
            "ttfs",
            "one spike per neuron, whose time codes the activation; a spike starts a step "
            "current (Rueckauer & Liu 2018)",
            steps=50,
            threshold=6.0,
            once=True,
        ),
        Code(
            "ttfs_dyn_thresh",
            "ttfs whose thresholds are raised by the weights of the inputs that have not fired "
            "yet but are on their way to (Rueckauer & Liu 2018)",
            steps=50,
            threshold=6.0,
            once=True,
            dynamic_threshold=True,
        ),
        Code(
            "ttfs_clamped",
            "ttfs of an ANN trained with clamped ReLUs (clamp on its neurons blocks), which "
            "does without the small activations that late first spikes would code",
            steps=50,
            threshold=6.0,
            once=True,
            clamped=True,
        ),
    )
}
"""Every code ``snnexp convert --code`` takes."""


def neuron_settings(code: Code, threshold: float) -> dict[str, Any]:
    """``model.neuron`` of the converted network."""
    return {
        "type": "iaf",
        "threshold": threshold,
        "reset": "zero" if code.once else "subtract",
        "refractory_steps": 0,
    }


def spiking_blocks(
    blocks: Sequence[Mapping[str, Any]], code: Code, steps: int
) -> list[dict[str, Any]]:
    """The blocks of the converted network from the ANN's chain of ``blocks`` (each reading
    the one before it): neurons blocks become spiking (the last: a non-spiking integrator),
    a max pooling block moves behind the ReLU that follows it, and the code's pooling and holds
    are put in."""
    label = blocks[-1]["name"]
    converted: list[dict[str, Any]] = []
    k = 0
    while k < len(blocks):
        block = blocks[k]
        after = blocks[k + 1] if k + 1 < len(blocks) else None
        hidden_next = after is not None and after["type"] == "neurons" and after["name"] != label
        if block["type"] == "max_pool2d" and hidden_next:
            converted += _hidden_neurons(after, code, steps) + [_pooling(block, code)]
            k += 2
            continue
        if block["type"] == "neurons" and block["name"] != label:
            converted += _hidden_neurons(block, code, steps)
        elif block["type"] == "neurons":
            converted.append({"name": label, "type": "neurons", "spiking": False})
        elif block["type"] == "max_pool2d":
            converted.append(_pooling(block, code))
        else:
            converted.append(_copy(block))
        k += 1
    return converted


def _copy(block: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in block.items() if key != "inputs"}


def _hidden_neurons(block: Mapping[str, Any], code: Code, steps: int) -> list[dict[str, Any]]:
    name = block["name"]
    neurons: dict[str, Any] = {"name": name, "type": "neurons"}
    if block.get("clamp"):
        neurons["clamp"] = block["clamp"]
    if not code.once:
        return [neurons]
    neurons["refractory_steps"] = steps
    if code.dynamic_threshold:
        neurons["dynamic_threshold"] = True
    return [neurons, {"name": f"{name}_hold", "type": "hold"}]


def _pooling(block: Mapping[str, Any], code: Code) -> dict[str, Any]:
    pool = _copy(block)
    if not code.once:
        pool["type"] = "gated_max_pool2d"
    return pool
