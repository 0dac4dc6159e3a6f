"""Names that several parts of snnexp share (config checks, models, results), defined once.

Torch-free, so that the config and the command line can import it cheaply. The time-stepped
neuron models are registered in :mod:`snnexp.functional.stepped` (``NEURON_MODELS``).
"""

RESETS = ("subtract", "zero")
"""Reset after a spike: subtract the threshold, or set the membrane to zero."""
READOUTS = (
    "spike_count",
    "max_membrane",
    "mean_membrane",
    "final_membrane",
    "first_spike",
    "filtered_linear",
)
"""How a time-stepped label layer is read out into one score per class."""
SPLITS = ("train", "val", "test")
"""The splits of every dataset, in the order they are evaluated and saved."""
FIRST_SPIKE_BLOCK = "first_spike"
"""The block type of an exact first-spike layer (``model.blocks`` of the first-spike rules)."""
