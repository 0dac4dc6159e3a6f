"""Experiment configuration: schema, defaults, validation and the legacy format.

One module per job: :mod:`~snnexp.config.schema` (the dataclasses and choices),
:mod:`~snnexp.config.parse` (YAML, ``--set``, building), :mod:`~snnexp.config.values` (reading a
value as its type), :mod:`~snnexp.config.keys` (key paths), :mod:`~snnexp.config.checks`
(validation), :mod:`~snnexp.config.problems` (messages) and :mod:`~snnexp.config.legacy`.

A config is a YAML file with an optional ``name`` and four sections: ``dataset``, ``model``,
``learning`` and ``training``. Every key has a default, so a partial file is enough:
:func:`load_config` fills in the rest, checks everything and returns a fully resolved
:class:`ExperimentConfig`. All problems of a file are reported together in one
:class:`ConfigError`, one per line, each naming its key path and the fix.

The format of the published first-spike code (a ``dataset`` name plus ``neuron_params``,
``network_layout`` and ``training_params``) is read too and mapped onto the same schema; its
problems are reported under the legacy key names.

How values are read:

- an integer is accepted where a number is expected; ``true``/``false`` never count as numbers;
- a string that spells a finite number is accepted where a number is expected, because YAML 1.1
  (PyYAML) reads ``1e-3`` (no dot) as a string;
- a section written without entries (``training:`` alone, i.e. null) means all its defaults;
- a key given twice in one mapping is an error (YAML keys are unique), and so is a document whose
  aliases would expand to more than a million values;
- ``model.bias_times`` may be one flat list, used for every layer (``[]``: no bias spikes), and
  ``training.weight_bumping.max_missing`` may be one number, used for every layer; the resolved
  config always holds one entry per layer.
"""

from snnexp.config.parse import (
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config_yaml,
    is_legacy_config,
    legacy_config_from_dict,
    load_config,
)
from snnexp.config.problems import ConfigError
from snnexp.config.schema import (
    ANALOG_RULES,
    BIAS_SYNAPSES,
    DATASET_SHAPES,
    IMAGE_SHAPES,
    REWIRING_INITS,
    SCOPES,
    SCORE_RULES,
    SIGN_MODES,
    TIME_STEPPED_RULES,
    DatasetConfig,
    ExperimentConfig,
    ModelConfig,
    NeuronConfig,
    n_steps,
    steps_of,
)

__all__ = [
    "BIAS_SYNAPSES",
    "DATASET_SHAPES",
    "IMAGE_SHAPES",
    "REWIRING_INITS",
    "SCOPES",
    "SIGN_MODES",
    "TIME_STEPPED_RULES",
    "ANALOG_RULES",
    "SCORE_RULES",
    "ConfigError",
    "DatasetConfig",
    "ExperimentConfig",
    "ModelConfig",
    "NeuronConfig",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "dump_config_yaml",
    "is_legacy_config",
    "legacy_config_from_dict",
    "load_config",
    "n_steps",
    "steps_of",
]
