"""Tests of snnexp.config: defaults, validation messages, the legacy format, YAML round trips."""

from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from snnexp.config import (
    ConfigError,
    ExperimentConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    dump_config_yaml,
    is_legacy_config,
    legacy_config_from_dict,
    load_config,
)

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
LEGACY_FOLDERS = ("yin_yang_et_300epochs", "mnist_et_150epochs", "16x16_mnist_et_200epochs")

# The Yin-Yang reference network's legacy config, inline so the mapping tests run everywhere.
LEGACY_YIN_YANG: dict[str, Any] = {
    "dataset": "yin_yang",
    "network_layout": {
        "bias_times": [0.9],
        "layer_sizes": [120, 3],
        "n_biases": [1, 1],
        "n_inputs": 4,
        "n_layers": 2,
        "weight_means": [1.5, 0.5],
        "weight_stdevs": [0.8, 0.8],
    },
    "neuron_params": {"g_leak": 1.0, "leak": 0.0, "tau_syn": 1.0, "threshold": 1.0},
    "training_params": {
        "alpha": 0.005,
        "batch_size": 150,
        "batch_size_eval": 200,
        "beta": 1.0,
        "enforce_cpu": False,
        "epoch_number": 300,
        "epoch_snapshots": [100, 200, 300],
        "learning_rate": 0.005,
        "lr_scheduler": {"gamma": 0.95, "step_size": 20, "type": "StepLR"},
        "max_dw_norm": 0.2,
        "max_num_missing_spikes": [0.3, 0.0],
        "momentum": 0,
        "numpy_seed": 12345,
        "optimizer": "adam",
        "print_step_percent": 5.0,
        "resolution": 0.01,
        "sim_time": 4.0,
        "torch_seed": 2000,
        "training_noise": False,
        "use_forward_integrator": False,
        "use_hicannx": False,
        "weight_bumping_exp": True,
        "weight_bumping_targeted": True,
        "weight_bumping_value": 0.0005,
        "xi": 0.2,
    },
}


def problems_of(data: dict[str, Any]) -> list[str]:
    """The problems config_from_dict reports for ``data`` (it must raise)."""
    with pytest.raises(ConfigError) as info:
        config_from_dict(data, "test.yaml")
    assert str(info.value).startswith("test.yaml: ")
    return info.value.problems


def legacy_problems_of(data: dict[str, Any]) -> list[str]:
    """The problems legacy_config_from_dict reports for ``data`` (it must raise)."""
    with pytest.raises(ConfigError) as info:
        legacy_config_from_dict(data, "legacy.yaml")
    return info.value.problems


def legacy_with(section: str, **changes: Any) -> dict[str, Any]:
    """The inline Yin-Yang legacy config with some keys of one section changed."""
    data = copy.deepcopy(LEGACY_YIN_YANG)
    data[section].update(changes)
    return data


def write(tmp_path: Path, text: str, name: str = "experiment.yaml") -> Path:
    """Write a config file and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# defaults and round trips


def test_empty_dict_gives_the_defaults() -> None:
    cfg = config_from_dict({})
    assert cfg == ExperimentConfig()
    assert cfg.model.layer_sizes == [120, 3]
    assert cfg.model.bias_times == [[0.9], [0.9]]
    assert cfg.training.weight_bumping.max_missing == [0.3, 0.0]
    assert cfg.learning.rule == "first_spike_et"


def test_defaults_round_trip_through_a_dict() -> None:
    cfg = ExperimentConfig()
    data = config_to_dict(cfg)
    assert isinstance(data["training"]["seeds"], dict)
    assert config_from_dict(data) == cfg


def test_partial_dict_fills_defaults() -> None:
    cfg = config_from_dict(
        {"training": {"epochs": 10, "savepoints": [5]}, "learning": {"optimizer": {"lr": 0.01}}}
    )
    assert cfg.training.epochs == 10
    assert cfg.training.savepoints == [5]
    assert cfg.training.batch_size == 150
    assert cfg.learning.optimizer.lr == 0.01
    assert cfg.learning.optimizer.type == "adam"
    assert cfg.dataset == ExperimentConfig().dataset


def test_dumped_yaml_loads_back_to_the_same_config() -> None:
    cfg = config_from_dict(
        {
            "name": "run",
            "dataset": {"name": "mnist", "root": "data"},
            "model": {
                "n_inputs": 784,
                "layer_sizes": [350, 10],
                "bias_times": [],
                "weight_mean": [0.05, 0.15],
                "weight_std": [0.8, 0.8],
            },
            "learning": {"lr_scheduler": {"type": "MultiStepLR", "milestones": [10, 20]}},
            "training": {"max_dw_norm": None, "weight_bumping": {"max_missing": 0.1}},
        }
    )
    text = dump_config_yaml(cfg, extra={"snnexp_version": "0.1.0"})
    data = yaml.safe_load(text)
    assert next(iter(data)) == "snnexp_version"
    assert config_from_dict(data) == cfg


def test_extra_keys_may_not_replace_config_sections() -> None:
    with pytest.raises(ValueError, match="training"):
        dump_config_yaml(ExperimentConfig(), extra={"training": 1})


def test_ints_are_read_as_floats() -> None:
    cfg = config_from_dict({"model": {"neuron": {"tau_syn": 2, "tau_mem": 2}}})
    assert cfg.model.neuron.tau_syn == 2.0
    assert isinstance(cfg.model.neuron.tau_syn, float)


def test_exponent_without_dot_is_read_as_a_number() -> None:
    # YAML 1.1 reads 1e-3 as a string; it is accepted where a number is expected.
    data = yaml.safe_load("learning:\n  optimizer:\n    lr: 1e-3\n")
    assert data["learning"]["optimizer"]["lr"] == "1e-3"
    assert config_from_dict(data).learning.optimizer.lr == 0.001


def test_null_section_means_defaults() -> None:
    assert config_from_dict(yaml.safe_load("training:\n")) == ExperimentConfig()


def test_max_dw_norm_accepts_null() -> None:
    assert config_from_dict({"training": {"max_dw_norm": None}}).training.max_dw_norm is None


def test_snnexp_version_is_ignored() -> None:
    assert config_from_dict({"snnexp_version": "0.1.0"}) == ExperimentConfig()


# ---------------------------------------------------------------------------------------------
# per-layer broadcasts and normalisations


def test_flat_bias_times_are_used_for_every_layer() -> None:
    cfg = config_from_dict({"model": {"bias_times": [0.5, 1.0]}})
    assert cfg.model.bias_times == [[0.5, 1.0], [0.5, 1.0]]


def test_empty_bias_times_mean_no_bias_in_any_layer() -> None:
    cfg = config_from_dict({"model": {"bias_times": []}})
    assert cfg.model.bias_times == [[], []]


def test_nested_bias_times_are_kept_per_layer() -> None:
    cfg = config_from_dict({"model": {"bias_times": [[0.9], []]}})
    assert cfg.model.bias_times == [[0.9], []]


def test_scalar_max_missing_is_used_for_every_layer() -> None:
    cfg = config_from_dict(
        {
            "model": {
                "layer_sizes": [10, 20, 3],
                "weight_mean": [1, 1, 1],
                "weight_std": [1, 1, 1],
                "bias_times": [0.9],
            },
            "training": {"weight_bumping": {"max_missing": 0.25}},
        }
    )
    assert cfg.training.weight_bumping.max_missing == [0.25, 0.25, 0.25]
    assert cfg.model.bias_times == [[0.9], [0.9], [0.9]]


@pytest.mark.parametrize("value", ["none", "None", "NONE", None])
def test_scheduler_none_is_normalised(value: str | None) -> None:
    cfg = config_from_dict({"learning": {"lr_scheduler": {"type": value}}})
    assert cfg.learning.lr_scheduler.type == "none"


def test_first_spike_dt_accepts_tau_ratio_two() -> None:
    cfg = config_from_dict(
        {"learning": {"rule": "first_spike_dt"}, "model": {"neuron": {"tau_mem": 2.0}}}
    )
    assert cfg.learning.rule == "first_spike_dt"


def test_bptt_has_no_tau_ratio_constraint() -> None:
    cfg = config_from_dict(
        {
            "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
            "model": {"neuron": {"tau_mem": 5.0}, "bias_times": []},
        }
    )
    assert cfg.model.neuron.tau_mem == 5.0


# ---------------------------------------------------------------------------------------------
# validation messages


def test_unknown_key_suggests_the_close_match() -> None:
    assert problems_of({"training": {"batch_szie": 10}}) == [
        "unknown key 'training.batch_szie'; did you mean 'batch_size'?"
    ]


def test_unknown_key_without_a_match_lists_the_valid_keys() -> None:
    (message,) = problems_of({"training": {"zzz": 1}})
    assert message.startswith("unknown key 'training.zzz'; valid keys in 'training': epochs, ")
    assert "batch_size" in message and "seeds" in message


def test_unknown_key_of_another_section_points_there() -> None:
    (message,) = problems_of({"training": {"lr": 0.1}})
    assert "unknown key 'training.lr'; did you mean 'learning.optimizer.lr'?" in message


def test_unknown_top_level_key() -> None:
    (message,) = problems_of({"modle": {}})
    assert message == "unknown key 'modle'; did you mean 'model'?"


def test_wrong_type_names_path_value_and_type() -> None:
    assert problems_of({"training": {"batch_size": "abc"}}) == [
        "training.batch_size: expected an integer, got 'abc' (str)"
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"training": {"epochs": True}}, "training.epochs: expected an integer, got True (bool)"),
        ({"training": {"epochs": 10.5}}, "training.epochs: expected an integer, got 10.5 (float)"),
        (
            {"learning": {"optimizer": {"lr": False}}},
            "learning.optimizer.lr: expected a number, got False (bool)",
        ),
        ({"model": {"dtype": 64}}, "model.dtype: expected a string, got 64 (int)"),
        (
            {"model": {"layer_sizes": [120, "3"]}},
            "model.layer_sizes[1]: expected an integer, got '3' (str)",
        ),
        (
            {"model": {"layer_sizes": 120}},
            "model.layer_sizes: expected a list of integers, got 120 (int)",
        ),
        (
            {"training": {"seeds": 5}},
            "training.seeds: expected a section (a mapping of keys to values), got 5 (int)",
        ),
        (
            {"training": {"max_dw_norm": "big"}},
            "training.max_dw_norm: expected a number or null, got 'big' (str)",
        ),
        (
            {"learning": {"optimizer": {"lr": float("nan")}}},
            "learning.optimizer.lr: expected a finite number, got nan (float)",
        ),
        (
            {"model": {"bias_times": [0.5, [1.0]]}},
            "model.bias_times: expected a list of lists of numbers or a list of numbers, "
            "got [0.5, [1.0]] (list)",
        ),
    ],
)
def test_wrong_types(data: dict[str, Any], message: str) -> None:
    assert problems_of(data) == [message]


def test_unreadable_value_suppresses_follow_up_checks() -> None:
    # The unreadable layer_sizes must not also cause length or dataset-shape complaints.
    problems = problems_of({"model": {"layer_sizes": "big", "weight_mean": [1.0]}})
    assert problems == ["model.layer_sizes: expected a list of integers, got 'big' (str)"]


def test_enum_lists_choices_and_suggests() -> None:
    assert problems_of({"learning": {"optimizer": {"type": "adma"}}}) == [
        "learning.optimizer.type: expected one of 'adam', 'sgd', got 'adma'; did you mean 'adam'?"
    ]


@pytest.mark.parametrize(
    ("data", "start"),
    [
        ({"dataset": {"name": "yinyang"}}, "dataset.name: expected one of 'yin_yang', "),
        ({"learning": {"rule": "bpt"}}, "learning.rule: expected one of 'first_spike_et', "),
        (
            {"learning": {"loss": {"type": "MSE"}}},
            "learning.loss.type: expected one of 'ttfs', 'mse', 'cross_entropy'",
        ),
        ({"learning": {"lr_scheduler": {"type": "steplr"}}}, "learning.lr_scheduler.type: "),
        ({"training": {"device": "gpu"}}, "training.device: expected one of 'auto', 'cpu'"),
        ({"model": {"dtype": "double"}}, "model.dtype: expected one of 'float64', 'float32'"),
        ({"model": {"simulator": "euler"}}, "model.simulator: expected one of 'exact', "),
    ],
)
def test_every_enum_is_checked(data: dict[str, Any], start: str) -> None:
    (message,) = problems_of(data)
    assert message.startswith(start)


def test_scheduler_enum_suggests_the_right_case() -> None:
    (message,) = problems_of({"learning": {"lr_scheduler": {"type": "steplr"}}})
    assert message.endswith("got 'steplr'; did you mean 'StepLR'?")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"training": {"batch_size": 0}}, "training.batch_size: must be > 0, got 0"),
        ({"training": {"epochs": -1}}, "training.epochs: must be > 0, got -1"),
        ({"model": {"neuron": {"g_leak": 0}}}, "model.neuron.g_leak: must be > 0, got 0.0"),
        ({"model": {"dt": 0}}, "model.dt: must be > 0, got 0.0"),
        ({"learning": {"optimizer": {"lr": -0.1}}}, "learning.optimizer.lr: must be > 0, got -0.1"),
        (
            {"learning": {"lr_scheduler": {"gamma": 0}}},
            "learning.lr_scheduler.gamma: must be > 0, got 0.0",
        ),
        (
            {"training": {"input_noise": {"std": -0.1}}},
            "training.input_noise.std: must be >= 0, got -0.1",
        ),
        (
            {"training": {"weight_bumping": {"max_missing": [0.3, 1.5]}}},
            "training.weight_bumping.max_missing[1]: must be between 0 and 1, got 1.5",
        ),
        (
            {"model": {"layer_sizes": [0, 3]}},
            "model.layer_sizes[0]: must be > 0, got 0",
        ),
        (
            {"training": {"epochs": 10, "savepoints": [5, 11]}},
            "training.savepoints[1]: must be an epoch in 1..10 (training.epochs), got 11",
        ),
        (
            {"dataset": {"encoding": {"t_early": 2.0, "t_late": 1.0}}},
            "dataset.encoding.t_late: must be later than dataset.encoding.t_early (2.0), got 1.0",
        ),
        (
            {"model": {"neuron": {"threshold": 0.5, "leak": 0.5}}},
            "model.neuron.threshold: must be above model.neuron.leak (0.5), got 0.5",
        ),
    ],
)
def test_ranges(data: dict[str, Any], message: str) -> None:
    assert problems_of(data) == [message]


def test_multistep_scheduler_needs_milestones() -> None:
    (message,) = problems_of({"learning": {"lr_scheduler": {"type": "MultiStepLR"}}})
    assert message.startswith("learning.lr_scheduler.milestones: MultiStepLR needs at least one")


def test_per_layer_lists_must_match_the_layer_count() -> None:
    problems = problems_of(
        {"model": {"weight_mean": [1.0, 0.5, 0.5], "bias_times": [[0.9], [0.9], [0.9]]}}
    )
    assert problems == [
        "model.weight_mean: has 3 entries but model.layer_sizes has 2 layers; "
        "give one entry per layer",
        "model.bias_times: has 3 entries but model.layer_sizes has 2 layers; "
        "give one entry per layer",
    ]


def test_n_inputs_must_match_the_dataset() -> None:
    assert problems_of({"model": {"n_inputs": 5}}) == [
        "model.n_inputs is 5 but dataset 'yin_yang' has 4 inputs; set it to 4"
    ]


def test_label_layer_must_match_the_classes() -> None:
    (message,) = problems_of({"model": {"layer_sizes": [120, 4]}})
    assert "is 4 but dataset 'yin_yang' has 3 classes" in message


def test_tau_ratio_message_names_both_supported_ratios() -> None:
    assert problems_of({"model": {"neuron": {"tau_mem": 1.5}}}) == [
        "learning.rule 'first_spike_et' needs tau_mem = tau_syn (ratio 1); got tau_mem/tau_syn "
        "= 1.5. Exact first-spike learning supports ratio 1 (first_spike_et) and ratio 2 "
        "(first_spike_dt)."
    ]


def test_tau_ratio_message_for_first_spike_dt() -> None:
    (message,) = problems_of({"learning": {"rule": "first_spike_dt"}})
    assert message.startswith("learning.rule 'first_spike_dt' needs tau_mem = 2 tau_syn (ratio 2)")


def test_all_problems_are_reported_together() -> None:
    with pytest.raises(ConfigError) as info:
        config_from_dict(
            {"training": {"batch_szie": 1, "epochs": "ten"}, "model": {"n_inputs": 5}},
            "my_config.yaml",
        )
    text = str(info.value)
    lines = text.splitlines()
    assert lines[0] == "my_config.yaml: 3 problems:"
    assert "  - unknown key 'training.batch_szie'; did you mean 'batch_size'?" in lines
    assert "  - training.epochs: expected an integer, got 'ten' (str)" in lines
    assert any(line.startswith("  - model.n_inputs is 5") for line in lines)
    assert len(info.value.problems) == 3


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="must be a mapping of sections"):
        config_from_dict([1, 2], "list.yaml")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# files


def test_load_config_names_the_experiment_after_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "training:\n  epochs: 5\n", "short_run.yaml")
    cfg = load_config(path)
    assert cfg.name == "short_run"
    assert cfg.training.epochs == 5


def test_load_config_keeps_an_explicit_name(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "name: mine\n")).name == "mine"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml") as info:
        load_config(path)
    assert "hint:" in str(info.value)


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "training:\n  epochs: 10\n  savepoints: [1, 2\n  batch_size: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: YAML syntax error at line 4")
    assert "starts at line 3" in message


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file is empty"):
        load_config(write(tmp_path, "# only a comment\n"))


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "training:\n  batch_size: abc\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    expected = f"{path}: training.batch_size: expected an integer, got 'abc' (str)"
    assert str(info.value) == expected


def test_overrides_set_keys_on_top_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  layer_sizes: [120, 3]\ntraining:\n  epochs: 5\n")
    settings = (
        "model.layer_sizes=[300, 3]",
        "training.weight_bumping.skip_step=false",
        "learning.rewiring.l1=1e-3",
        "training.epochs = 7",
    )
    cfg = load_config(path, settings)
    assert cfg.model.layer_sizes == [300, 3]
    assert cfg.training.weight_bumping.skip_step is False
    assert cfg.learning.rewiring.l1 == 1e-3
    assert cfg.training.epochs == 7
    assert load_config(path).model.layer_sizes == [120, 3]


def test_overrides_leave_the_mapping_alone_and_fill_empty_sections() -> None:
    data = {"model": {"layer_sizes": [120, 3]}, "training": None}
    changed = apply_overrides(data, ["model.layer_sizes=[10, 3]", "training.epochs=2"])
    assert changed == {"model": {"layer_sizes": [10, 3]}, "training": {"epochs": 2}}
    assert data == {"model": {"layer_sizes": [120, 3]}, "training": None}


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("training.epochs", "cannot read the setting 'training.epochs': write key.path=value"),
        ("training..epochs=3", "write key.path=value"),
        ("model.layer_sizes.first=3", "model.layer_sizes is [120, 3] (list), not a section"),
        ("model.layer_sizes=[3", "cannot read the value of model.layer_sizes in"),
    ],
)
def test_malformed_overrides_are_named(tmp_path: Path, setting: str, message: str) -> None:
    path = write(tmp_path, "model:\n  layer_sizes: [120, 3]\n")
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path, [setting])


def test_a_misspelt_override_names_the_file_the_setting_and_the_fix(tmp_path: Path) -> None:
    path = write(tmp_path, "training:\n  epochs: 5\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, ["training.epoch=3"])
    message = str(info.value)
    assert message.startswith(f"{path} (with training.epoch=3): ")
    assert "did you mean 'epochs'" in message


# ---------------------------------------------------------------------------------------------
# the legacy format


def test_legacy_detection() -> None:
    assert is_legacy_config(LEGACY_YIN_YANG)
    assert is_legacy_config({"dataset": "mnist"})
    assert not is_legacy_config({"dataset": {"name": "mnist"}})
    assert not is_legacy_config({})
    assert not is_legacy_config(config_to_dict(ExperimentConfig()))


def test_legacy_yin_yang_maps_every_value() -> None:
    cfg = legacy_config_from_dict(LEGACY_YIN_YANG)
    assert cfg.dataset.name == "yin_yang"
    assert cfg.learning.rule == "first_spike_et"
    assert cfg.model.neuron.tau_mem == cfg.model.neuron.tau_syn == 1.0
    assert cfg.model.n_inputs == 4
    assert cfg.model.layer_sizes == [120, 3]
    assert cfg.model.bias_times == [[0.9], [0.9]]
    assert cfg.model.weight_mean == [1.5, 0.5]
    assert cfg.model.weight_std == [0.8, 0.8]
    assert cfg.model.simulator == "exact"
    assert cfg.training.epochs == 300
    assert cfg.training.savepoints == [100, 200, 300]
    assert cfg.training.batch_size == 150
    assert cfg.training.batch_size_eval == 200
    assert cfg.training.max_dw_norm == 0.2
    assert cfg.training.weight_bumping.max_missing == [0.3, 0.0]
    assert cfg.training.weight_bumping.value == 0.0005
    assert cfg.training.input_noise.std == 0.0
    assert (cfg.training.seeds.torch, cfg.training.seeds.numpy) == (2000, 12345)
    assert cfg.training.device == "auto"
    assert cfg.learning.optimizer.type == "adam"
    assert cfg.learning.optimizer.lr == 0.005
    scheduler = cfg.learning.lr_scheduler
    assert (scheduler.type, scheduler.step_size, scheduler.gamma) == ("StepLR", 20, 0.95)
    assert (cfg.learning.loss.type, cfg.learning.loss.xi) == ("ttfs", 0.2)
    assert (cfg.learning.loss.alpha, cfg.learning.loss.beta) == (0.005, 1.0)


def test_legacy_ignored_key_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="snnexp.config.legacy"):
        legacy_config_from_dict(LEGACY_YIN_YANG)
    assert "print_step_percent" in caplog.text


def test_legacy_switches_and_noise() -> None:
    data = legacy_with(
        "training_params",
        enforce_cpu=True,
        use_forward_integrator=True,
        resolution=0.005,
        training_noise={"mean": 0.1, "std_dev": 0.3},
        clip_weights_max=False,
        rounding_precision=None,
    )
    cfg = legacy_config_from_dict(data)
    assert cfg.training.device == "cpu"
    assert (cfg.model.simulator, cfg.model.dt) == ("stepped", 0.005)
    assert (cfg.training.input_noise.mean, cfg.training.input_noise.std) == (0.1, 0.3)


def test_legacy_tau_ratio_two_selects_first_spike_dt() -> None:
    cfg = legacy_config_from_dict(legacy_with("neuron_params", tau_mem=2.0))
    assert cfg.learning.rule == "first_spike_dt"


def test_legacy_tau_mem_defaults_to_tau_syn() -> None:
    cfg = legacy_config_from_dict(legacy_with("neuron_params", tau_syn=0.5))
    assert cfg.model.neuron.tau_mem == 0.5
    assert cfg.learning.rule == "first_spike_et"


def test_legacy_n_biases_take_the_first_bias_times() -> None:
    data = legacy_with("network_layout", bias_times=[0.9, 0.5], n_biases=[2, 0])
    assert legacy_config_from_dict(data).model.bias_times == [[0.9, 0.5], []]
    data = legacy_with("network_layout", bias_times=[[0.9, 0.5], [0.4]], n_biases=[1, 1])
    assert legacy_config_from_dict(data).model.bias_times == [[0.9], [0.4]]


def test_legacy_too_many_biases() -> None:
    (message,) = legacy_problems_of(legacy_with("network_layout", n_biases=[2, 1]))
    assert message.startswith("network_layout.n_biases[0]: is 2 but network_layout.bias_times")


def test_legacy_n_layers_must_match() -> None:
    assert legacy_problems_of(legacy_with("network_layout", n_layers=3)) == [
        "network_layout.n_layers is 3 but network_layout.layer_sizes has 2 layers; make them agree"
    ]


def test_legacy_hicannx_is_refused() -> None:
    assert legacy_problems_of(legacy_with("training_params", use_hicannx=True)) == [
        "training_params.use_hicannx: true selects the BrainScaleS-2 (HICANN-X) neuromorphic "
        "chip, which snnexp does not drive; set it to false to simulate in software"
    ]


def test_legacy_weight_clipping_is_refused() -> None:
    (message,) = legacy_problems_of(legacy_with("training_params", clip_weights_max=2.0))
    assert message.startswith("training_params.clip_weights_max: weight clipping is not supported")


def test_legacy_unknown_key_suggests() -> None:
    assert legacy_problems_of(legacy_with("training_params", epoch_numbr=3)) == [
        "unknown key 'training_params.epoch_numbr'; did you mean 'epoch_number'?"
    ]


def test_legacy_problems_use_legacy_names() -> None:
    problems = legacy_problems_of(
        legacy_with("training_params", epoch_number="many", learning_rate=0, momentum=-1)
    )
    assert problems == [
        "training_params.epoch_number: expected an integer, got 'many' (str)",
        "training_params.learning_rate: must be > 0, got 0.0",
        "training_params.momentum: must be >= 0, got -1.0",
    ]


def test_legacy_snapshot_beyond_the_last_epoch() -> None:
    (message,) = legacy_problems_of(legacy_with("training_params", epoch_number=250))
    assert message == (
        "training_params.epoch_snapshots[2]: must be an epoch in 1..250 "
        "(training_params.epoch_number), got 300"
    )


def test_load_config_detects_the_legacy_format(tmp_path: Path) -> None:
    path = write(tmp_path, yaml.safe_dump(LEGACY_YIN_YANG), "legacy_run.yaml")
    expected = legacy_config_from_dict(LEGACY_YIN_YANG)
    expected.name = "legacy_run"
    assert load_config(path) == expected


# ---------------------------------------------------------------------------------------------
# the published configs in ../shared/reference


def reference_config(folder: str) -> Path:
    """The original_config.yaml of a reference network, or skip when it is absent."""
    path = REFERENCE / folder / "original_config.yaml"
    if not path.is_file():
        pytest.skip(f"{path} not found (reference data lives in ../shared beside the checkout)")
    return path


@pytest.mark.parametrize("folder", LEGACY_FOLDERS)
def test_reference_configs_load_and_round_trip(folder: str) -> None:
    cfg = load_config(reference_config(folder))
    assert cfg.name == "original_config"
    assert cfg.learning.rule == "first_spike_et"
    assert config_from_dict(yaml.safe_load(dump_config_yaml(cfg))) == cfg


def test_reference_yin_yang_config() -> None:
    cfg = load_config(reference_config("yin_yang_et_300epochs"))
    assert cfg.model.layer_sizes == [120, 3]
    assert cfg.model.bias_times == [[0.9], [0.9]]
    assert cfg.training.epochs == 300
    assert cfg.training.savepoints == [100, 200, 300]
    assert cfg.learning.optimizer.lr == 0.005
    scheduler = cfg.learning.lr_scheduler
    assert (scheduler.type, scheduler.step_size, scheduler.gamma) == ("StepLR", 20, 0.95)
    assert (cfg.training.seeds.torch, cfg.training.seeds.numpy) == (2000, 12345)
    assert cfg.training.weight_bumping.max_missing == [0.3, 0.0]
    assert cfg.training.input_noise.std == 0.0
    assert cfg.model.simulator == "exact"


def test_reference_mnist_config() -> None:
    cfg = load_config(reference_config("mnist_et_150epochs"))
    assert cfg.dataset.name == "mnist"
    assert (cfg.model.n_inputs, cfg.model.layer_sizes) == (784, [350, 10])
    assert cfg.model.bias_times == [[], []]
    assert (cfg.model.simulator, cfg.model.dt, cfg.model.sim_time) == ("stepped", 0.01, 3.5)
    assert cfg.training.input_noise.std == 0.3
    assert cfg.training.seeds.torch == 2345678


def test_reference_16x16_mnist_config() -> None:
    cfg = load_config(reference_config("16x16_mnist_et_200epochs"))
    assert cfg.dataset.name == "16x16_mnist"
    assert (cfg.model.n_inputs, cfg.model.layer_sizes) == (256, [128, 10])
    assert cfg.model.simulator == "exact"
    assert cfg.training.savepoints == [1, 200]
    assert cfg.training.weight_bumping.max_missing == [0.5, 0.5]
    assert (cfg.training.batch_size, cfg.training.batch_size_eval) == (50, 50)
    assert cfg.learning.optimizer.lr == 0.003


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path: Path) -> None:
    """YAML keys are unique; PyYAML alone keeps the second silently (a second ``training:``
    section replaced the first)."""
    path = tmp_path / "twice.yaml"
    path.write_text("training:\n  epochs: 3\nmodel:\n  dt: 0.1\ntraining:\n  epochs: 5\n")
    with pytest.raises(
        ConfigError,
        match=r"line 5, column 1: the key 'training' is given twice"
        r" \(first on line 1\); keep one of them",
    ):
        load_config(path)
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &base {epochs: 3}\ntraining:\n  <<: *base\n  epochs: 4\n")
    with pytest.raises(ConfigError, match="unknown key 'base'"):
        load_config(merged)  # a merge key may be overridden: only the unknown key is reported


def test_nested_aliases_are_refused_before_they_expand(tmp_path: Path) -> None:
    """Nine levels of nine aliases (351 bytes) stand for 8e9 values; they are counted on the
    document's node graph and refused, never built."""
    lines = ["a0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9]"]
    for k in range(1, 10):
        lines.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 9) + "]")
    lines.append("training: {epochs: *a9}")
    path = tmp_path / "laughs.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match=r"expands to 8,335,593,970 values through its aliases"):
        load_config(path)
