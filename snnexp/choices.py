"""Names that several parts of snnexp share (config checks, models, results), defined once.

Torch-free, so that the config and the command line can import it cheaply.
"""

NEURON_MODELS = ("synaptic", "leaky", "alif", "alpha", "lapicque")
"""Time-stepped neuron models (``model.neuron.type``, a neurons block's ``model``)."""
RESETS = ("subtract", "zero")
"""Reset after a spike: subtract the threshold, or set the membrane to zero."""
READOUTS = ("spike_count", "max_membrane", "mean_membrane", "first_spike")
"""How a time-stepped label layer is read out into one score per class."""
SPLITS = ("train", "val", "test")
"""The splits of every dataset, in the order they are evaluated and saved."""
