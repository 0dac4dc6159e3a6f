"""MNIST-family loading on tiny IDX files built here: files (gzipped or not), verification,
splits, encodings, the 16x16 resize, its cache, downloads, error messages and the CLI."""

from __future__ import annotations

import dataclasses
import gzip
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from snnexp.cli import main
from snnexp.config import DatasetConfig
from snnexp.data import load_split, mnist
from snnexp.data.idx import content_md5
from snnexp.data.mnist import IdxFile, data_root, encode, resize_images
from snnexp.errors import DataError

N_TRAIN, N_TEST, VAL_SIZE = 12, 5, 4
NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file: 0, 0, 0x08, ndim, the sizes (big-endian uint32), the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + np.ascontiguousarray(array, np.uint8).tobytes()


def write_idx(folder: Path, name: str, array: np.ndarray, gz: bool) -> IdxFile:
    folder.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    if gz:
        (folder / f"{name}.gz").write_bytes(gzip.compress(data))
    else:
        (folder / name).write_bytes(data)
    return IdxFile(name, content_md5(data))


def random_images(n: int, seed: int) -> np.ndarray:
    """Digits-like images: zeros around, random intensities (0 and 255 included) inside."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 4:24, 6:22] = rng.integers(0, 256, (n, 20, 16))
    images[:, 10, 10] = 255
    return images


@dataclasses.dataclass
class Tiny:
    """A tiny MNIST in ``root/MNIST/raw``: training files gzipped, test files not."""

    root: Path
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    @property
    def raw(self) -> Path:
        return self.root / "MNIST" / "raw"


def register(monkeypatch: pytest.MonkeyPatch, files: dict[str, tuple[IdxFile, IdxFile]]) -> None:
    """Make 'mnist' and '16x16_mnist' expect these files (and a validation split of 4)."""
    spec = dataclasses.replace(mnist.MNIST, val_size=VAL_SIZE, **files)
    monkeypatch.setitem(mnist.DATASETS, "mnist", (spec, mnist.FULL_28X28))
    monkeypatch.setitem(mnist.DATASETS, "16x16_mnist", (spec, mnist.CROPPED_16X16))
    monkeypatch.setitem(mnist.DATASETS, "sequential_mnist", (spec, mnist.FULL_28X28))


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Tiny:
    monkeypatch.delenv("SNNEXP_DATA", raising=False)
    data = Tiny(tmp_path / "data", {}, {})
    files = {}
    for source, n, seed in (("train", N_TRAIN, 1), ("test", N_TEST, 2)):
        data.images[source] = random_images(n, seed)
        data.labels[source] = np.arange(n, dtype=np.uint8) % 10
        image_name, label_name = NAMES[source]
        gz = source == "train"
        files[source] = (
            write_idx(data.raw, image_name, data.images[source], gz),
            write_idx(data.raw, label_name, data.labels[source], gz),
        )
    register(monkeypatch, files)
    return data


def dataset(name: str = "mnist", **overrides: object) -> DatasetConfig:
    return DatasetConfig(name=name, **overrides)


# --------------------------------------------------------------------------------------------
# files, splits, encodings


def test_splits_from_gzipped_and_plain_files(tiny: Tiny) -> None:
    expected = {
        "train": (tiny.images["train"][:8], tiny.labels["train"][:8]),
        "val": (tiny.images["train"][8:], tiny.labels["train"][8:]),
        "test": (tiny.images["test"], tiny.labels["test"]),
    }
    for split, (images, labels) in expected.items():
        data = load_split(dataset(), split, data_dir=tiny.root)
        assert data.name == split and data.samples is None
        assert data.input_times.shape == (len(labels), 784)
        assert data.input_times.dtype == torch.float64 and data.labels.dtype == torch.int64
        np.testing.assert_array_equal(data.labels.numpy(), labels)
        p = images.reshape(len(images), -1) / 256.0
        torch.testing.assert_close(
            data.input_times, torch.from_numpy(0.15 + (1 - p) * 1.85), rtol=0, atol=1e-15
        )


def test_28x28_encoding_hand_computed() -> None:
    pixels = np.array([[[0, 128, 255, 64]]], np.uint8)
    times = encode(pixels, mnist.FULL_28X28)
    # p = raw / 256: 0 -> t_late (spikes), 128 -> 0.5, 255 -> 255/256, 64 -> 0.25
    expected = [2.0, 0.15 + 0.5 * 1.85, 0.15 + 1.85 / 256, 0.15 + 0.75 * 1.85]
    assert times.shape == (1, 4)
    torch.testing.assert_close(times, torch.tensor([expected], dtype=torch.float64))
    assert times[0, 0].item() == 2.0


def test_16x16_encoding_hand_computed() -> None:
    pixels = np.array([[[0, 255, 51, 204]]], np.uint8)
    times = encode(pixels, mnist.CROPPED_16X16, t_early=0.15, t_late=2.0)
    # p = raw / 255: 0 never spikes, 255 -> t_early, 51 -> p 0.2, 204 -> p 0.8
    expected = [np.inf, 0.15, 0.15 + 0.8 * 1.85, 0.15 + 0.2 * 1.85]
    torch.testing.assert_close(times, torch.tensor([expected], dtype=torch.float64))


def test_encoding_follows_the_config(tiny: Tiny) -> None:
    encoding = dataset().encoding
    encoding.t_early, encoding.t_late = 0.5, 1.5
    data = load_split(dataset(encoding=encoding), "test", data_dir=tiny.root)
    p = tiny.images["test"].reshape(N_TEST, -1) / 256.0
    torch.testing.assert_close(data.input_times, torch.from_numpy(0.5 + (1 - p) * 1.0))


def test_16x16_matches_torchvision_applied_directly(tiny: Tiny) -> None:
    import torchvision
    from torchvision import transforms

    for source in ("train", "test"):  # torchvision's MNIST class reads uncompressed files only
        for name, array in zip(
            NAMES[source], (tiny.images[source], tiny.labels[source]), strict=True
        ):
            (tiny.raw / name).write_bytes(idx_bytes(array))
    crop_resize = [transforms.CenterCrop(24), transforms.Resize(16)]
    pil = torchvision.datasets.MNIST(
        tiny.root, train=False, transform=transforms.Compose(crop_resize)
    )
    tensors = torchvision.datasets.MNIST(
        tiny.root, train=False, transform=transforms.Compose([*crop_resize, transforms.ToTensor()])
    )
    direct = np.stack([np.asarray(pil[i][0]) for i in range(N_TEST)])
    np.testing.assert_array_equal(resize_images(tiny.images["test"], 24, 16), direct)

    data = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    p = torch.stack([tensors[i][0].flatten() for i in range(N_TEST)]).double()
    expected = 0.15 + (1 - p) * 1.85
    expected[p == 0] = torch.inf
    assert data.input_times.shape == (N_TEST, 256)
    torch.testing.assert_close(data.input_times, expected, rtol=0, atol=1e-6)
    assert torch.isinf(data.input_times).sum() == (p == 0).sum() > 0


def test_a_split_loads_when_only_its_files_are_present(tiny: Tiny) -> None:
    for name in NAMES["train"]:
        (tiny.raw / f"{name}.gz").unlink()
    assert len(load_split(dataset(), "test", data_dir=tiny.root).labels) == N_TEST
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_split(dataset(), "val", data_dir=tiny.root)


def test_root_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SNNEXP_DATA", raising=False)
    assert data_root() == Path("data")
    monkeypatch.setenv("SNNEXP_DATA", "/env")
    assert data_root() == Path("/env")
    assert data_root(config_root="/config") == Path("/config")
    assert data_root("/cli", "/config") == Path("/cli")
    assert data_root(config_root="~/d") == Path.home() / "d"


def test_root_from_config_and_environment(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(load_split(dataset(root=str(tiny.root)), "test").labels) == N_TEST
    monkeypatch.setenv("SNNEXP_DATA", str(tiny.root))
    assert len(load_split(dataset(), "test").labels) == N_TEST
    with pytest.raises(DataError, match="missing"):  # --data-dir wins over both
        load_split(dataset(root=str(tiny.root)), "test", data_dir=tiny.root / "elsewhere")


# --------------------------------------------------------------------------------------------
# errors


def test_missing_files_error_names_files_folder_and_command(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    with pytest.raises(DataError) as error:
        load_split(dataset("16x16_mnist"), "test", data_dir=root)
    message = str(error.value)
    assert "t10k-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message
    assert str((root / "MNIST" / "raw").absolute()) in message
    assert f"snnexp data prepare 16x16_mnist --data-dir {root.absolute()}" in message
    assert "dataset.download: true" in message
    assert not root.exists()  # nothing written


def test_content_is_verified_by_the_uncompressed_md5(tiny: Tiny) -> None:
    # a recompressed archive (other gzip bytes, same content) is accepted
    path = tiny.raw / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=7))
    load_split(dataset(), "train", data_dir=tiny.root)
    # changed content is not
    data = bytearray((tiny.raw / "t10k-images-idx3-ubyte").read_bytes())
    data[500] ^= 0xFF
    (tiny.raw / "t10k-images-idx3-ubyte").write_bytes(bytes(data))
    with pytest.raises(DataError, match="MD5 of its uncompressed content is [0-9a-f]{32}"):
        load_split(dataset(), "test", data_dir=tiny.root)


def test_damaged_gzip_is_reported(tiny: Tiny) -> None:
    path = tiny.raw / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match="damaged or truncated"):
        load_split(dataset(), "train", data_dir=tiny.root)


# --------------------------------------------------------------------------------------------
# the 16x16 cache


def cache_file(tiny: Tiny, source: str = "test") -> Path:
    return tiny.root / "MNIST" / "snnexp_cache" / f"crop24_size16_{NAMES[source][0]}.npz"


def test_cache_round_trip(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    assert cache_file(tiny).is_file()

    def no_resize(*args: object) -> None:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(mnist, "resize_images", no_resize)
    second = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    torch.testing.assert_close(second.input_times, first.input_times, rtol=0, atol=0)


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
def test_corrupted_cache_is_rebuilt(
    tiny: Tiny, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    path = cache_file(tiny)
    data = bytearray(path.read_bytes())
    if damage == "flip":  # inside the stored images: only the checksum notices
        with np.load(path) as stored:
            offset = data.find(stored["array"].tobytes())
        data[offset + 40] ^= 0x01
    elif damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data = bytearray(b"not an npz file")
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger="snnexp"):
        again = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    assert "rebuilding" in caplog.text
    torch.testing.assert_close(again.input_times, first.input_times, rtol=0, atol=0)
    assert path.read_bytes() != bytes(data)  # rewritten


def test_stale_cache_is_rebuilt_when_the_source_changes(
    tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    before = cache_file(tiny).read_bytes()
    new_images = random_images(N_TEST, 99)
    image_file = write_idx(tiny.raw, NAMES["test"][0], new_images, gz=False)
    spec, _ = mnist.DATASETS["mnist"]
    register(
        monkeypatch, {"train": spec.train, "test": (image_file, spec.test[1])}
    )  # as if the official files had changed
    data = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    assert cache_file(tiny).read_bytes() != before
    expected = encode(resize_images(new_images, 24, 16), mnist.CROPPED_16X16)
    torch.testing.assert_close(data.input_times, expected, rtol=0, atol=0)


def test_read_only_root_still_loads(tiny: Tiny, caplog: pytest.LogCaptureFixture) -> None:
    (tiny.root / "MNIST" / "snnexp_cache").write_text("a file where the cache folder goes")
    with caplog.at_level(logging.WARNING, logger="snnexp"):
        data = load_split(dataset("16x16_mnist"), "test", data_dir=tiny.root)
    assert data.input_times.shape == (N_TEST, 256)
    assert "could not write the cache" in caplog.text


# --------------------------------------------------------------------------------------------
# downloads (never over the network here: torchvision's download_url is replaced)


@pytest.fixture
def mirror(tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Move the test files to a fake mirror; downloads copy from there. Returns the URLs."""
    import torchvision.datasets.utils

    served = tmp_path / "mirror"
    served.mkdir()
    for name in NAMES["test"]:
        (served / f"{name}.gz").write_bytes(gzip.compress((tiny.raw / name).read_bytes()))
        (tiny.raw / name).unlink()
    requested: list[str] = []

    def fake_download(url: str, root: str, filename: str, **kwargs: object) -> None:
        requested.append(url)
        shutil.copy(served / url.rsplit("/", 1)[1], Path(root) / filename)

    monkeypatch.setattr(torchvision.datasets.utils, "download_url", fake_download)
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", ["https://mirror.test/mnist/"])
    return requested


def test_no_download_unless_allowed(tiny: Tiny, mirror: list[str]) -> None:
    with pytest.raises(DataError, match="missing"):
        load_split(dataset(), "test", data_dir=tiny.root)
    assert mirror == []


def test_download_when_allowed(tiny: Tiny, mirror: list[str]) -> None:
    data = load_split(dataset(download=True), "test", data_dir=tiny.root)
    np.testing.assert_array_equal(data.labels.numpy(), tiny.labels["test"])
    assert mirror == [f"https://mirror.test/mnist/{name}.gz" for name in NAMES["test"]]
    assert sorted(p.name for p in tiny.raw.iterdir()) == sorted(
        [*(f"{name}.gz" for name in NAMES["train"]), *(f"{name}.gz" for name in NAMES["test"])]
    )


def test_bad_download_leaves_nothing(tiny: Tiny, mirror: list[str], tmp_path: Path) -> None:
    (tmp_path / "mirror" / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"junk"))
    before = sorted(p.name for p in tiny.raw.iterdir())
    with pytest.raises(DataError, match="could not download t10k-images-idx3-ubyte"):
        load_split(dataset(download=True), "test", data_dir=tiny.root)
    assert sorted(p.name for p in tiny.raw.iterdir()) == before


# --------------------------------------------------------------------------------------------
# Fashion-MNIST


def test_fashion_mnist_is_found_in_the_system_folder(
    tiny: Tiny, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "usr-share-datasets-fashion-mnist"
    shutil.copytree(tiny.raw, system)
    spec, _ = mnist.DATASETS["mnist"]
    fashion = dataclasses.replace(
        mnist.FASHION_MNIST, train=spec.train, test=spec.test, val_size=VAL_SIZE, system_dirs=()
    )
    fashion_system = dataclasses.replace(fashion, system_dirs=(system,))
    monkeypatch.setitem(mnist.DATASETS, "fashion_mnist", (fashion_system, mnist.FULL_28X28))
    empty = tmp_path / "empty"
    data = load_split(dataset("fashion_mnist"), "val", data_dir=empty)
    np.testing.assert_array_equal(data.labels.numpy(), tiny.labels["train"][8:])

    monkeypatch.setitem(mnist.DATASETS, "fashion_mnist", (fashion, mnist.FULL_28X28))
    with pytest.raises(DataError) as error:
        load_split(dataset("fashion_mnist"), "test", data_dir=empty)
    assert str(empty / "FashionMNIST" / "raw") in str(error.value)
    assert "snnexp data prepare fashion_mnist" in str(error.value)


def test_fashion_mnist_defaults() -> None:
    fashion, prep = mnist.DATASETS["16x16_fashion_mnist"]
    assert fashion.folder == "FashionMNIST" and prep == mnist.CROPPED_16X16
    assert Path("/usr/share/datasets/fashion-mnist") in fashion.system_dirs
    assert "dataset-fashion-mnist" in fashion.system_hint


# --------------------------------------------------------------------------------------------
# the command line


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_data_prepare(tiny: Tiny) -> None:
    result = invoke("data", "prepare", "16x16_mnist", "--data-dir", tiny.root, "--no-download")
    assert result.exit_code == 0, result.output
    for name in (*NAMES["train"], *NAMES["test"]):
        assert name in result.output
    assert str(cache_file(tiny, "train").absolute()) in result.output
    assert str(cache_file(tiny, "test").absolute()) in result.output
    assert "train 8, val 4, test 5" in result.output

    result = invoke("data", "prepare", "yin_yang")
    assert result.exit_code == 0 and "nothing to download" in result.output


def test_cli_data_prepare_missing_files(tmp_path: Path) -> None:
    result = invoke("data", "prepare", "mnist", "--data-dir", tmp_path, "--no-download")
    assert result.exit_code == 1
    assert "train-images-idx3-ubyte.gz" in result.output and "Traceback" not in result.output


def test_cli_inference_with_only_the_test_files(tiny: Tiny, tmp_path: Path) -> None:
    config = {
        "dataset": {"name": "mnist"},
        "model": {
            "n_inputs": 784,
            "layer_sizes": [6, 10],
            "bias_times": [],
            "weight_mean": [0.1, 0.5],
            "weight_std": [0.4, 0.8],
        },
        "training": {
            "epochs": 1,
            "batch_size": 4,
            "batch_size_eval": 10,
            "device": "cpu",
            "weight_bumping": {"enabled": False},
        },
    }
    path = tmp_path / "tiny_mnist.yaml"
    path.write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    result = invoke("train", path, "--results-dir", results, "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = results.iterdir()
    with np.load(run_dir / "epoch_1" / "outputs_test.npz") as npz:
        assert npz["example_index"].tolist() == [0, 1, 2, 3, 4]
        expected = tiny.images["test"][:5].reshape(5, -1) / 256
        assert np.allclose(npz["example_images"], expected, atol=1e-6)
    result = invoke("eval", run_dir, "--only", "examples_test", "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "figures" / "examples_test.png").stat().st_size > 10_000

    for name in NAMES["train"]:
        (tiny.raw / f"{name}.gz").unlink()
    result = invoke("inference", run_dir, "--data-dir", tiny.root, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "test split (5 samples)" in result.output

    result = invoke("inference", run_dir, "--split", "val", "--data-dir", tiny.root)
    assert result.exit_code == 1 and "snnexp data prepare mnist" in result.output
    assert "Traceback" not in result.output


def test_sequential_mnist_trains_with_an_lsnn(tiny: Tiny, tmp_path: Path) -> None:
    config = {
        "dataset": {
            "name": "sequential_mnist",
            "encoding": {"type": "threshold_crossing", "thresholds": 4},
        },
        "model": {
            "neuron": {"type": "alif", "tau_mem": 20.0, "tau_adapt": 100.0},
            "n_inputs": 8,
            "layer_sizes": [6, 10],
            "adaptive_neurons": [3, 0],
            "recurrent": [True, False],
            "bias_times": [],
            "weight_init": "uniform_fan_in",
            "dtype": "float32",
            "dt": 1.0,
            "sim_time": 790.0,
            "output": "membrane",
            "readout": "mean_membrane",
            "readout_steps": 6,
        },
        "learning": {
            "rule": "bptt",
            "loss": {"type": "cross_entropy"},
            "surrogate": {"type": "triangle", "slope": 1.0, "dampening": 0.3},
        },
        "training": {"epochs": 1, "batch_size": 8, "batch_size_eval": 10, "max_dw_norm": None},
    }
    path = tmp_path / "seq.yaml"
    path.write_text(yaml.safe_dump(config))
    results = tmp_path / "results"
    result = invoke("train", path, "--results-dir", results, "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output
    (run_dir,) = results.iterdir()
    with np.load(run_dir / "epoch_1" / "outputs_test.npz") as npz:
        assert npz["trace_input"].shape == (790, 4, 8)
        assert npz["trace_input"][784:].sum() == 0
        assert npz["trace_input"][:784].sum() > 0
        assert npz["output_scores"].shape == (N_TEST, 10)


CONV_GRAPH = {
    "dataset": {"name": "mnist", "encoding": {"type": "direct"}},
    "model": {
        "neuron": {"type": "leaky", "tau_mem": 5.0, "threshold": 0.5},
        "dtype": "float32",
        "dt": 1.0,
        "sim_time": 6.0,
        "readout": "mean_membrane",
        "blocks": [
            {"name": "conv", "type": "conv2d", "channels": 3, "kernel": 5, "stride": 2},
            {"name": "pool", "type": "max_pool2d", "kernel": 2},
            {"name": "lif", "type": "neurons"},
            {"name": "flat", "type": "flatten"},
            {"name": "fc", "type": "linear", "features": 10},
            {"name": "out", "type": "neurons", "spiking": False},
        ],
    },
    "learning": {"rule": "bptt", "loss": {"type": "cross_entropy"}},
    "training": {"epochs": 2, "batch_size": 4, "batch_size_eval": 10, "savepoints": [1]},
}


def train_conv_graph(tiny: Tiny, tmp_path: Path, epochs: int, results: str) -> Path:
    data = yaml.safe_load(yaml.safe_dump(CONV_GRAPH))
    data["training"]["epochs"] = epochs
    path = tmp_path / f"{results}.yaml"
    path.write_text(yaml.safe_dump(data))
    result = invoke(
        "train", path, "--results-dir", tmp_path / results, "--data-dir", tiny.root, "--quiet"
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / results).iterdir()
    return run_dir


def test_conv_graph_trains_continues_bitwise_infers_and_draws(tiny: Tiny, tmp_path: Path) -> None:
    run_dir = train_conv_graph(tiny, tmp_path, 2, "whole")
    with np.load(run_dir / "epoch_2" / "outputs_test.npz") as npz:
        assert npz["output_scores"].shape == (N_TEST, 10)
        assert npz["hidden_counts_0"].shape == (N_TEST, 3 * 6 * 6)
        assert npz["trace_input"].shape == (6, 4, 784)
        assert npz["trace_spikes_0"].shape == (6, 4, 108)
        accuracy = float(npz["accuracy"])
    result = invoke("inference", run_dir, "--data-dir", tiny.root)
    assert result.exit_code == 0, result.output
    assert f"accuracy {100 * accuracy:.2f} %" in result.output

    stopped = train_conv_graph(tiny, tmp_path, 1, "stopped")
    result = invoke("continue", stopped, "1", "2", "--data-dir", tiny.root, "--quiet")
    assert result.exit_code == 0, result.output
    a = torch.load(run_dir / "epoch_2" / "checkpoint.pt", weights_only=True)
    b = torch.load(stopped / "epoch_2" / "checkpoint.pt", weights_only=True)
    assert "blocks.conv.weight" in a["model"]
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key

    result = invoke("eval", run_dir, "--out", tmp_path / "figures")
    assert result.exit_code == 0, result.output
    names = {path.stem for path in (tmp_path / "figures").iterdir()}
    assert {"spike_raster", "firing_rates_test", "confusion_test", "summary"} <= names
    assert {"weight_histograms", "weight_matrices", "graph", "feature_maps"} <= names
