"""Tests of snnexp.plots on a small synthetic result folder."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from snnexp.cli import main
from snnexp.plots import UnknownFigureError, figure_names, render_figures
from snnexp.plots.activity import most_active
from snnexp.plots.confusion import confusion_matrix, per_class_accuracy, row_percentages
from snnexp.plots.curves import lr_steps
from snnexp.plots.histograms import correct_and_wrong_times, silent_percent
from snnexp.plots.io import read_history, read_outputs
from snnexp.plots.spike_times import sorted_output_stats
from snnexp.plots.summary import config_caption
from snnexp.plots.weights import layer_weights
from snnexp.plots.yin_yang import (
    R_BIG,
    R_SMALL,
    outline_curves,
    pick_hidden_neurons,
    time_difference,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_CLASSES = 3
EPOCH = 3


def yin_yang_class(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Class of Yin-Yang points, as in DESIGN.md (0 yang, 1 yin, 2 dot)."""
    d_right = np.hypot(x - 1.5 * R_BIG, y - R_BIG)
    d_left = np.hypot(x - 0.5 * R_BIG, y - R_BIG)
    dot = (d_right < R_SMALL) | (d_left < R_SMALL)
    yin = (
        (d_right <= R_SMALL)
        | ((d_left > R_SMALL) & (d_left <= R_BIG / 2))
        | ((y > R_BIG) & (d_right > R_BIG / 2))
    )
    return np.where(dot, 2, np.where(yin, 1, 0))


def fake_outputs(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Yin-Yang points with output times where the true neuron mostly spikes first."""
    xy = rng.uniform(0.0, 2 * R_BIG, size=(4 * n, 2))
    xy = xy[np.hypot(xy[:, 0] - R_BIG, xy[:, 1] - R_BIG) <= R_BIG][:n]
    labels = yin_yang_class(xy[:, 0], xy[:, 1]).astype(np.int64)
    times = rng.normal(2.0, 0.3, size=(n, N_CLASSES))
    times[np.arange(n), labels] = rng.normal(1.3, 0.3, size=n)
    times[rng.random((n, N_CLASSES)) < 0.1] = np.inf
    times[:5] = np.inf  # a few samples without any output spike
    predictions = np.where(np.isfinite(times).any(axis=1), np.argmin(times, axis=1), -1)
    return {
        "labels": labels,
        "output_times": times,
        "predictions": predictions.astype(np.int64),
        "hidden_times_0": rng.uniform(0.5, 2.5, size=(n, 8)),
        "samples": np.column_stack([xy, 1 - xy]),
        "loss": np.float64(0.4),
        "accuracy": np.float64((predictions == labels).mean()),
    }


def make_run(root: Path, dataset: str = "yin_yang", splits: tuple = ("train", "test")) -> Path:
    """A result folder with config, a 3-epoch history and savepoint outputs for ``splits``."""
    run_dir = root / f"{dataset}_run"
    epoch_dir = run_dir / f"epoch_{EPOCH}"
    epoch_dir.mkdir(parents=True)
    config = {
        "name": f"{dataset}_test",
        "dataset": {"name": dataset},
        "model": {"layer_sizes": [4, 8, N_CLASSES], "neuron": {"tau_syn": 1.0}},
        "learning": {"rule": "first_spike_et", "loss": {"type": "mse", "t_correct": 1.5}},
        "training": {"epochs": EPOCH},
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    (run_dir / "history.csv").write_text(
        "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds,bumps\n"
        "0,,,1.10,0.34,0.005,0.0,0\n"
        "1,0.90,0.55,0.85,0.60,0.005,1.2,3\n"
        "2,0.60,0.80,0.58,0.82,0.005,1.1,0\n"
        "3,0.45,0.91,0.47,0.90,0.0025,1.1,0\n"
    )
    rng = np.random.default_rng(0)
    for split in splits:
        np.savez(epoch_dir / f"outputs_{split}.npz", **fake_outputs(400, rng))
    model = {
        "layers.0.weight": torch.randn(5, 8, dtype=torch.float64),
        "layers.0.bias_times": torch.tensor([0.9], dtype=torch.float64),
        "layers.1.weight": torch.randn(9, N_CLASSES, dtype=torch.float64),
        "layers.1.bias_times": torch.tensor([0.9], dtype=torch.float64),
    }
    torch.save({"epoch": EPOCH, "model": model}, epoch_dir / "checkpoint.pt")
    return run_dir


def add_untrained(run_dir: Path, split: str = "test") -> None:
    """An ``epoch_0`` savepoint with outputs of ``split``."""
    (run_dir / "epoch_0").mkdir()
    np.savez(
        run_dir / "epoch_0" / f"outputs_{split}.npz", **fake_outputs(200, np.random.default_rng(5))
    )


def assert_real_png(path: Path) -> None:
    assert path.is_file(), path
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    assert path.stat().st_size > 5_000, path
    pixels = matplotlib.image.imread(path)
    assert (pixels != pixels[0, 0]).any(), f"{path} has a single colour"


YIN_YANG_SPLIT_FIGURES = (
    "confusion",
    "output_times",
    "spike_time_histograms",
    "yin_yang_map",
    "yin_yang_label_times",
    "yin_yang_time_difference",
    "yin_yang_hidden_times",
)
RUN_FIGURES = {
    "training_curves",
    "training_curves_log_error",
    "lr_and_bumps",
    "weight_histograms",
    "weight_matrices",
    "summary",
}


def test_render_figures_writes_every_yin_yang_figure(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    add_untrained(run_dir)
    written = render_figures(run_dir, run_dir / f"epoch_{EPOCH}")
    figures = run_dir / f"epoch_{EPOCH}" / "figures"
    expected = RUN_FIGURES | {"untrained_vs_trained", "output_times_over_training"}
    expected |= {
        f"{name}_{split}" for name in YIN_YANG_SPLIT_FIGURES for split in ("train", "test")
    }
    assert {p.stem for p in written} == expected
    assert all(p.parent == figures and p.suffix == ".png" for p in written)
    for path in written:
        assert_real_png(path)


@pytest.mark.parametrize(("fmt", "magic"), [("svg", b"<?xml"), ("pdf", b"%PDF")])
def test_format_and_only(tmp_path: Path, fmt: str, magic: bytes) -> None:
    run_dir = make_run(tmp_path)
    only = ["confusion_test", "summary"]
    written = render_figures(
        run_dir, run_dir / f"epoch_{EPOCH}", tmp_path / "out", fmt=fmt, only=only
    )
    assert sorted(p.name for p in written) == [f"confusion_test.{fmt}", f"summary.{fmt}"]
    for path in written:
        assert path.read_bytes()[: len(magic)] == magic
        assert path.stat().st_size > 5_000


def test_unknown_figure_name_lists_the_valid_ones(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    with pytest.raises(UnknownFigureError, match=r"confusion_tset.*has:.*confusion_test"):
        render_figures(run_dir, run_dir / f"epoch_{EPOCH}", only=["confusion_tset"])
    assert not (run_dir / f"epoch_{EPOCH}" / "figures").exists()
    assert "untrained_vs_trained" not in figure_names(run_dir, run_dir / f"epoch_{EPOCH}")


def test_missing_split_is_skipped_with_a_log(tmp_path: Path, caplog) -> None:
    run_dir = make_run(tmp_path)
    with caplog.at_level(logging.INFO, logger="snnexp.plots"):
        names = figure_names(run_dir, run_dir / f"epoch_{EPOCH}")
    assert "confusion_train" in names and not any("_val" in name for name in names)
    assert "no val outputs" in caplog.text
    assert "epoch_0" in caplog.text


def test_mnist_run_has_its_figures(tmp_path: Path, caplog) -> None:
    run_dir = make_run(tmp_path, dataset="mnist", splits=("test",))
    with caplog.at_level(logging.INFO, logger="snnexp.plots"):
        names = {p.stem for p in render_figures(run_dir, run_dir / f"epoch_{EPOCH}")}
    split_figures = ("confusion", "output_times", "spike_time_histograms", "per_class_accuracy")
    assert names == RUN_FIGURES | {f"{name}_test" for name in split_figures}
    assert "skipping examples_test" in caplog.text


def test_mnist_examples_when_images_are_saved(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, dataset="mnist", splits=())
    outputs = fake_outputs(60, np.random.default_rng(2))
    outputs["samples"] = np.random.default_rng(3).random((60, 16 * 16))
    np.savez(run_dir / f"epoch_{EPOCH}" / "outputs_test.npz", **outputs)
    (path,) = render_figures(run_dir, run_dir / f"epoch_{EPOCH}", only=["examples_test"])
    assert_real_png(path)


def test_sorted_outputs_use_the_whole_split_not_the_stored_examples(
    tmp_path: Path, monkeypatch
) -> None:
    """A savepoint that stores one example image per class still draws its sorted output times
    from every sample of the split (an earlier plan rebound them to the ten examples)."""
    from snnexp.plots import spike_times

    run_dir = make_run(tmp_path, dataset="mnist", splits=())
    outputs = fake_outputs(60, np.random.default_rng(2))
    outputs["example_index"] = np.arange(10)
    outputs["example_images"] = np.random.default_rng(3).random((10, 16 * 16))
    np.savez(run_dir / f"epoch_{EPOCH}" / "outputs_test.npz", **outputs)
    drawn = {}

    def capture(mean, std, names, **kwargs):
        drawn["mean"], drawn["std"] = mean, std
        return spike_times.Figure()

    monkeypatch.setattr(spike_times, "plot_output_times", capture)
    names = ["output_times_test", "examples_test"]
    render_figures(run_dir, run_dir / f"epoch_{EPOCH}", only=names)
    mean, std = sorted_output_stats(outputs["output_times"], outputs["labels"])
    np.testing.assert_array_equal(drawn["mean"], mean)
    np.testing.assert_array_equal(drawn["std"], std)


@pytest.mark.parametrize("missing", ["config.yaml", "history.csv"])
def test_not_a_result_folder(tmp_path: Path, missing: str) -> None:
    run_dir = make_run(tmp_path)
    (run_dir / missing).unlink()
    with pytest.raises(FileNotFoundError, match=f"{missing}.*not a snnexp result folder"):
        render_figures(run_dir, run_dir / f"epoch_{EPOCH}")


def test_missing_savepoint_folder(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="epoch_7"):
        render_figures(run_dir, run_dir / "epoch_7")


def test_read_history_turns_empty_cells_into_nan(tmp_path: Path) -> None:
    history = read_history(make_run(tmp_path) / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert np.isnan(history["train_loss"][0]) and np.isnan(history["train_accuracy"][0])
    np.testing.assert_allclose(history["val_accuracy"], [0.34, 0.60, 0.82, 0.90])
    assert history["bumps"].tolist() == [0, 3, 0, 0]


def test_confusion_matrix_small_example() -> None:
    labels = np.array([0, 0, 1, 2, 2, 2, 1])
    predictions = np.array([0, 1, 1, -1, 2, 0, -1])
    expected = np.array(
        [
            [1, 1, 0, 0],
            [0, 1, 0, 1],
            [1, 0, 1, 1],
        ]
    )
    matrix = confusion_matrix(labels, predictions, 3)
    np.testing.assert_array_equal(matrix, expected)
    np.testing.assert_allclose(row_percentages(matrix)[2], [100 / 3, 0, 100 / 3, 100 / 3])


def test_confusion_counts_of_saved_outputs(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    outputs = read_outputs(run_dir / f"epoch_{EPOCH}", "test")
    labels, predictions = outputs["labels"], outputs["predictions"]
    matrix = confusion_matrix(labels, predictions, N_CLASSES)
    assert matrix.sum() == len(labels)
    assert matrix[:, -1].sum() == (predictions == -1).sum() >= 5
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=N_CLASSES))
    assert np.trace(matrix) / len(labels) == pytest.approx(float(outputs["accuracy"]))


def test_confusion_matrix_rejects_out_of_range_predictions() -> None:
    with pytest.raises(ValueError, match="predictions"):
        confusion_matrix(np.array([0, 1]), np.array([0, 3]), 3)


def test_sorted_output_stats_match_numpy(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    outputs = read_outputs(run_dir / f"epoch_{EPOCH}", "test")
    times, labels = outputs["output_times"], outputs["labels"]
    assert np.isinf(times).any()
    mean, std = sorted_output_stats(times, labels)
    assert mean.shape == std.shape == (N_CLASSES, N_CLASSES)
    for c in range(N_CLASSES):
        for j in range(N_CLASSES):
            values = times[labels == c, j]
            values = values[np.isfinite(values)]
            assert mean[c, j] == pytest.approx(np.mean(values))
            assert std[c, j] == pytest.approx(np.std(values))
    assert all(mean[c, c] < np.delete(mean[c], c).min() for c in range(N_CLASSES))


def test_sorted_output_stats_nan_without_spikes() -> None:
    times = np.array([[1.0, np.inf], [2.0, np.inf], [np.inf, 0.5]])
    mean, std = sorted_output_stats(times, np.array([0, 0, 1]))
    np.testing.assert_allclose(mean, [[1.5, np.nan], [np.nan, 0.5]])
    np.testing.assert_allclose(std, [[0.5, np.nan], [np.nan, 0.0]])


def test_yin_yang_outline_follows_the_class_boundaries() -> None:
    big, s_curve, left_dot, right_dot = outline_curves()
    np.testing.assert_allclose(np.hypot(*(big - R_BIG).T), R_BIG)
    # Along the S-curve, yin (1) lies just above and yang (0) just below, away from the
    # dots and from the points where the curve runs vertically.
    x, y = s_curve.T
    keep = np.min(np.abs(x[:, None] - np.array([0.0, 0.5, 1.0])), axis=1) > 0.05
    keep &= np.abs(x - 0.25) > R_SMALL + 0.02
    keep &= np.abs(x - 0.75) > R_SMALL + 0.02
    assert keep.sum() > 50
    assert (yin_yang_class(x[keep], y[keep] + 0.01) == 1).all()
    assert (yin_yang_class(x[keep], y[keep] - 0.01) == 0).all()
    # Each dot outline separates the dot class inside from the rest outside.
    for dot, centre in ((left_dot, 0.5 * R_BIG), (right_dot, 1.5 * R_BIG)):
        direction = dot - np.array([centre, R_BIG])
        inside = np.array([centre, R_BIG]) + 0.9 * direction
        outside = np.array([centre, R_BIG]) + 1.1 * direction
        assert (yin_yang_class(*inside.T) == 2).all()
        assert (yin_yang_class(*outside.T) != 2).all()


def test_lr_steps_and_per_class_accuracy(tmp_path: Path) -> None:
    history = read_history(make_run(tmp_path) / "history.csv")
    assert lr_steps(history).tolist() == [3]
    matrix = np.array([[3, 1, 0, 0], [0, 0, 0, 0], [1, 0, 2, 1]])
    np.testing.assert_allclose(per_class_accuracy(matrix), [75.0, np.nan, 50.0])


def test_correct_and_wrong_times() -> None:
    times = np.array([[1.0, 2.0, np.inf], [0.5, np.inf, 3.0]])
    correct, wrong = correct_and_wrong_times(times, np.array([0, 2]))
    np.testing.assert_array_equal(correct, [1.0, 3.0])
    np.testing.assert_array_equal(wrong, [2.0, np.inf, 0.5, np.inf])
    assert silent_percent(wrong) == 50.0


def test_time_difference_and_hidden_choice() -> None:
    times = np.array(
        [[1.0, 2.0, 1.5], [2.0, 1.0, np.inf], [np.inf, 1.0, 2.0], [1.0, np.inf, np.inf]]
    )
    times = np.vstack([times, [np.inf, np.inf, np.inf]])
    difference = time_difference(times, np.array([0, 0, 0, 0, 1]))
    np.testing.assert_array_equal(difference, [-0.5, 1.0, np.inf, -np.inf, np.nan])
    hidden = np.array([[1.0, 1.0, np.inf, 0.0], [1.0, 3.0, np.inf, 0.5], [1.0, 2.0, 1.0, 1.0]])
    assert pick_hidden_neurons(hidden, 2).tolist() == [1, 3]
    assert pick_hidden_neurons(hidden, 9).tolist() == [1, 3, 0]


def test_layer_weights_split_off_the_bias_rows(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path)
    state = torch.load(run_dir / f"epoch_{EPOCH}" / "checkpoint.pt", weights_only=True)["model"]
    layers = layer_weights(state)
    assert [layer.inputs.shape for layer in layers] == [(4, 8), (8, N_CLASSES)]
    assert [layer.bias.shape for layer in layers] == [(1, 8), (1, N_CLASSES)]
    np.testing.assert_array_equal(layers[1].bias[0], state["layers.1.weight"][-1].numpy())


def test_config_caption_names_the_essentials(tmp_path: Path) -> None:
    config = yaml.safe_load((make_run(tmp_path) / "config.yaml").read_text())
    caption = config_caption(config, {"test": 0.9512})
    for part in ("dataset yin_yang", "network ?-4-8-3", "first_spike_et", "test 95.12 %"):
        assert part in caption
    assert "tau_syn" in caption and "weight bumping" in caption


def test_membrane_traces_show_the_most_active_neurons():
    spikes = np.zeros((10, 6))
    spikes[:, 4] = 1
    spikes[:3, 1] = 1
    spikes[:3, 5] = 1
    assert most_active(spikes, 3).tolist() == [1, 4, 5]
    assert most_active(np.zeros((10, 6)), 2).tolist() == [0, 1]


def test_time_stepped_caption_names_neurons_grid_encoding_and_rewiring() -> None:
    config = {
        "dataset": {"name": "yin_yang", "encoding": {"type": "latency", "interpolate": True}},
        "model": {"neuron": {"type": "leaky", "tau_mem": 1.0}, "dt": 0.05, "sim_time": 3.0},
        "learning": {
            "rule": "deep_r",
            "rewiring": {"connectivity": 0.1, "scope": "per_layer", "signs": "dale"},
        },
    }
    caption = config_caption(config, {})
    for part in (
        "leaky neurons, tau_mem 1.0",
        "dt 0.05, 60 steps",
        "interpolated latency encoding",
        "DEEP R 10 % connectivity (per_layer budget, dale signs)",
    ):
        assert part in caption
    assert "tau_syn" not in caption and "weight bumping" not in caption


TINY = {
    "name": "tiny",
    "dataset": {"name": "yin_yang", "train_size": 300, "val_size": 100, "test_size": 100},
    "model": {"layer_sizes": [20, 3]},
    "training": {"epochs": 2, "batch_size": 50, "batch_size_eval": 100, "savepoints": [1]},
}


def test_eval_of_a_trained_run(tmp_path: Path) -> None:
    """A tiny run trained by the CLI: every figure of every savepoint, data behind key panels."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    runner = CliRunner()
    result = runner.invoke(
        main, ["train", str(config), "--results-dir", str(tmp_path / "r"), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "r").iterdir()
    out = tmp_path / "figs"
    result = runner.invoke(main, ["eval", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    expected = RUN_FIGURES | {"untrained_vs_trained", "output_times_over_training"}
    expected |= {f"{n}_{s}" for n in YIN_YANG_SPLIT_FIGURES for s in ("train", "val", "test")}
    assert {p.stem for p in out.iterdir()} == expected
    for path in out.iterdir():
        assert_real_png(path)
    every = tmp_path / "every"
    only = ["--only", "untrained_vs_trained", "--only", "confusion_test"]
    result = runner.invoke(main, ["eval", str(run_dir), "--all-epochs", "--out", str(every), *only])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in every.iterdir()) == ["epoch_0", "epoch_1", "epoch_2"]
    assert [p.name for p in (every / "epoch_0").iterdir()] == ["confusion_test.png"]
    assert {p.name for p in (every / "epoch_2").iterdir()} == {
        "confusion_test.png",
        "untrained_vs_trained.png",
    }
    for split, size in (("train", 300), ("test", 100)):
        outputs = read_outputs(run_dir / "epoch_2", split)
        matrix = confusion_matrix(outputs["labels"], outputs["predictions"], 3)
        assert matrix.sum() == size
        mean, _ = sorted_output_stats(outputs["output_times"], outputs["labels"])
        for c in range(3):
            times = outputs["output_times"][outputs["labels"] == c]
            finite = np.isfinite(times).all(axis=1)
            if finite.all():
                np.testing.assert_allclose(mean[c], times.mean(axis=0))
    only = runner.invoke(
        main,
        [
            "eval",
            str(run_dir),
            "--only",
            "summary",
            "--format",
            "pdf",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert only.exit_code == 0, only.output
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["summary.pdf"]
    bad = runner.invoke(main, ["eval", str(run_dir), "--only", "nope"])
    assert bad.exit_code != 0
    assert "unknown figure name(s): nope" in bad.output and "confusion_test" in bad.output
