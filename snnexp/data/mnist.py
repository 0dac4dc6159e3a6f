"""MNIST and Fashion-MNIST: finding, fetching and verifying the files, the published splits, the
16x16 preprocessing and the latency encoding.

**Files.** torchvision's layout: ``<root>/MNIST/raw/`` (``<root>/FashionMNIST/raw/``) holds the
four IDX files, each gzipped (``<name>.gz``) or not (``<name>``). The root is the first of
``--data-dir``, ``dataset.root``, ``$SNNEXP_DATA`` and ``./data`` that is given
(:func:`data_root`); Fashion-MNIST is also looked for in ``/usr/share/datasets/fashion-mnist``
(Debian's package ``dataset-fashion-mnist``) after the root. Each file is verified by the MD5 of
its uncompressed bytes. Only the files of the split asked for must be present (the test split
needs only the two ``t10k`` files). Missing files are downloaded from torchvision's mirrors only
when allowed (``dataset.download: true`` or ``snnexp data prepare``).

**Splits** (as published): train = the first 50,000 images of the training file, val = its last
10,000, test = the 10,000 images of the test file.

**Encodings** (the published first-spike code): a pixel of intensity ``p`` spikes at

    t = t_early + (1 - p) (t_late - t_early)      (bright pixels early)

28x28: ``p = raw / 256``. 16x16: centre crop to 24x24, resize to 16x16 (torchvision's ``Resize``
on PIL images: bilinear, antialiased), ``p = raw / 255``, and pixels with ``p = 0`` (``t = t_late``)
never spike (``t = +inf``). The resized images are cached under
``<root>/<folder>/snnexp_cache/`` (see :mod:`snnexp.data.cache`), keyed by the preprocessing
parameters and the MD5 of the source images, so the resize runs once.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from snnexp.data.cache import cached_array
from snnexp.data.idx import content_md5, parse_idx, read_idx_bytes
from snnexp.data.splits import EncodedSplit
from snnexp.errors import DataError

if TYPE_CHECKING:
    from snnexp.config import DatasetConfig

logger = logging.getLogger(__name__)

DATA_ENV = "SNNEXP_DATA"
DEFAULT_ROOT = Path("data")
CACHE_FOLDER = "snnexp_cache"
SOURCES = ("train", "test")


@dataclass(frozen=True)
class IdxFile:
    """One file of a data set: its uncompressed name and the MD5 of its uncompressed bytes."""

    name: str
    md5: str


@dataclass(frozen=True)
class ImageSet:
    """An MNIST-format data set: its files, where they live and how the training file splits.

    ``folder`` is torchvision's class name, which is also its folder under the root.
    """

    title: str
    folder: str
    train: tuple[IdxFile, IdxFile]
    test: tuple[IdxFile, IdxFile]
    val_size: int = 10_000
    system_dirs: tuple[Path, ...] = ()
    system_hint: str = ""

    def files(self, source: str) -> tuple[IdxFile, IdxFile]:
        """(images, labels) of the "train" or "test" file pair."""
        return self.train if source == "train" else self.test


@dataclass(frozen=True)
class Preprocessing:
    """Image preprocessing and intensity scale of one dataset variant.

    ``size`` None keeps the 28x28 images; otherwise they are centre-cropped to ``crop`` and
    resized to ``size`` x ``size``. ``p = raw / scale``; with ``silent_at_late`` pixels with
    ``p = 0`` never spike.
    """

    size: int | None = None
    crop: int = 24
    scale: float = 256.0
    silent_at_late: bool = False


MNIST = ImageSet(
    title="MNIST",
    folder="MNIST",
    train=(
        IdxFile("train-images-idx3-ubyte", "6bbc9ace898e44ae57da46a324031adb"),
        IdxFile("train-labels-idx1-ubyte", "a25bea736e30d166cdddb491f175f624"),
    ),
    test=(
        IdxFile("t10k-images-idx3-ubyte", "2646ac647ad5339dbf082846283269ea"),
        IdxFile("t10k-labels-idx1-ubyte", "27ae3e4e09519cfbb04c329615203637"),
    ),
)
FASHION_MNIST = ImageSet(
    title="Fashion-MNIST",
    folder="FashionMNIST",
    train=(
        IdxFile("train-images-idx3-ubyte", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        IdxFile("train-labels-idx1-ubyte", "9018921c3c673c538a1fc5bad174d6f9"),
    ),
    test=(
        IdxFile("t10k-images-idx3-ubyte", "8181f5470baa50b63fa0f6fddb340f0a"),
        IdxFile("t10k-labels-idx1-ubyte", "15d484375f8d13e6eb1aabb0c3f46965"),
    ),
    system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
    system_hint="apt-get install dataset-fashion-mnist (Debian/Ubuntu, as root)",
)
FULL_28X28 = Preprocessing()
CROPPED_16X16 = Preprocessing(size=16, crop=24, scale=255.0, silent_at_late=True)

DATASETS: dict[str, tuple[ImageSet, Preprocessing]] = {
    "mnist": (MNIST, FULL_28X28),
    "16x16_mnist": (MNIST, CROPPED_16X16),
    "fashion_mnist": (FASHION_MNIST, FULL_28X28),
    "16x16_fashion_mnist": (FASHION_MNIST, CROPPED_16X16),
    "sequential_mnist": (MNIST, FULL_28X28),
}
"""Config name -> (files, preprocessing) of every MNIST-family dataset."""


@dataclass
class SourceData:
    """A verified, preprocessed file pair: images ``(n, h, w)`` uint8, labels ``(n,)`` uint8,
    the files read and the cache of the preprocessed images (None for 28x28)."""

    pixels: np.ndarray
    labels: np.ndarray
    files: list[Path]
    cache: Path | None


def data_root(data_dir: str | os.PathLike | None = None, config_root: str | None = None) -> Path:
    """The data root: ``data_dir`` (``--data-dir``), else ``config_root`` (``dataset.root``),
    else ``$SNNEXP_DATA``, else ``./data``; ``~`` is expanded."""
    for candidate in (data_dir, config_root, os.environ.get(DATA_ENV)):
        if candidate:
            return Path(candidate).expanduser()
    return DEFAULT_ROOT


def search_folders(images: ImageSet, root: Path) -> list[Path]:
    """Where the files are looked for, in order: ``<root>/<folder>/raw``, then system folders."""
    return [root / images.folder / "raw", *images.system_dirs]


def locate(file: IdxFile, folders: Sequence[Path]) -> Path | None:
    """The first of ``<name>`` and ``<name>.gz`` found in ``folders``, or None."""
    for folder in folders:
        for candidate in (folder / file.name, folder / f"{file.name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def _missing_message(
    name: str, images: ImageSet, purpose: str, missing: Sequence[IdxFile], root: Path
) -> str:
    folders = " and ".join(str(folder.absolute()) for folder in search_folders(images, root))
    lines = [
        f"{images.title} files for {purpose} are missing; searched {folders} for:",
        *(f"  {file.name}.gz (or {file.name}, uncompressed)" for file in missing),
        "Fetch them (once, on a machine with internet access) with:",
        f"  snnexp data prepare {name} --data-dir {root.absolute()}",
        "or allow downloading with dataset.download: true in the config.",
    ]
    if images.system_hint:
        lines.append(f"Offline alternative: {images.system_hint}.")
    lines.append(
        "The data folder is --data-dir, else dataset.root, else $SNNEXP_DATA, else ./data, "
        f"with the files in <folder>/{images.folder}/raw/ (torchvision's layout)."
    )
    return "\n".join(lines)


def fetch(images: ImageSet, files: Sequence[IdxFile], raw_dir: Path) -> None:
    """Download ``files`` from torchvision's mirrors into ``raw_dir`` as ``<name>.gz``.

    Each download lands in a temporary folder beside its target, is verified (MD5 of the
    uncompressed bytes) and only then renamed into place: an interrupted or bad download leaves
    nothing behind.
    """
    import torchvision.datasets
    from torchvision.datasets.utils import download_url

    mirrors = getattr(torchvision.datasets, images.folder).mirrors
    try:
        raw_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"cannot create {raw_dir} for the {images.title} files ({error}); choose a "
            "writable folder with --data-dir"
        ) from error
    for file in files:
        failures = []
        for mirror in mirrors:
            url = f"{mirror}{file.name}.gz"
            logger.info("downloading %s", url)
            with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".download-") as tmp:
                target = Path(tmp) / f"{file.name}.gz"
                try:
                    download_url(url, tmp, filename=target.name)
                    _read_verified(target, file, images)
                except (OSError, RuntimeError, ValueError, DataError) as error:
                    failures.append(f"  {url}: {error}")
                    continue
                os.replace(target, raw_dir / target.name)
            break
        else:
            raise DataError(
                f"could not download {file.name} of {images.title}:\n" + "\n".join(failures) + "\n"
                f"Copy the file into {raw_dir.absolute()} by hand (gzipped or not) and try again."
            )


def _read_verified(path: Path, file: IdxFile, images: ImageSet) -> np.ndarray:
    """The array in ``path`` after checking the MD5 of its uncompressed bytes."""
    data = read_idx_bytes(path)
    md5 = content_md5(data)
    if md5 != file.md5:
        raise DataError(
            f"{path}: the MD5 of its uncompressed content is {md5}, but the official "
            f"{images.title} file {file.name} has {file.md5}; the file is damaged, truncated or "
            "from another data set. Delete it and fetch it again (snnexp data prepare)."
        )
    return parse_idx(data, path)


def ensure_files(
    name: str, sources: Sequence[str], root: Path, download: bool, purpose: str
) -> dict[IdxFile, Path]:
    """The paths of the files of ``sources`` ("train", "test"), downloaded first if missing and
    ``download`` is allowed; else a :class:`DataError` that names the files, the folders
    searched and the command that fetches them."""
    images, _ = DATASETS[name]
    folders = search_folders(images, root)
    paths: dict[IdxFile, Path] = {}
    missing: list[IdxFile] = []
    for file in (file for source in sources for file in images.files(source)):
        found = locate(file, folders)
        if found is None:
            missing.append(file)
        else:
            paths[file] = found
    if missing and not download:
        raise DataError(_missing_message(name, images, purpose, missing, root))
    if missing:
        fetch(images, missing, folders[0])
        paths.update({file: folders[0] / f"{file.name}.gz" for file in missing})
    return paths


def resize_images(pixels: np.ndarray, crop: int, size: int) -> np.ndarray:
    """Centre-crop each ``(h, w)`` uint8 image to ``crop`` x ``crop`` and resize it to ``size``
    x ``size`` exactly as torchvision does on PIL images (``CenterCrop`` then ``Resize``:
    bilinear, antialiased, rounded to uint8)."""
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose(
        [
            transforms.CenterCrop(crop),
            transforms.Resize(
                size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True
            ),
        ]
    )
    return np.stack([np.asarray(transform(Image.fromarray(image))) for image in pixels])


def _preprocess(
    pixels: np.ndarray, prep: Preprocessing, images: ImageSet, file: IdxFile, root: Path
) -> tuple[np.ndarray, Path | None]:
    """The preprocessed images and their cache (None when there is nothing to preprocess)."""
    if prep.size is None:
        return pixels, None
    import PIL

    path = root / images.folder / CACHE_FOLDER / f"crop{prep.crop}_size{prep.size}_{file.name}.npz"
    key = {
        "format": 1,
        "source": file.name,
        "source_md5": file.md5,
        "crop": prep.crop,
        "size": prep.size,
        "resize": "torchvision CenterCrop + Resize on PIL, bilinear, antialias",
        "pillow": PIL.__version__,
    }

    def build() -> np.ndarray:
        logger.info(
            "resizing %d %s images to %dx%d (once; cached in %s)",
            len(pixels),
            images.title,
            prep.size,
            prep.size,
            path.parent,
        )
        return resize_images(pixels, prep.crop, prep.size)

    return cached_array(path, key, build), path


def load_source(
    name: str, source: str, root: Path, download: bool = False, purpose: str = ""
) -> SourceData:
    """Read, verify and preprocess the "train" or "test" file pair of dataset ``name``."""
    images, prep = DATASETS[name]
    paths = ensure_files(name, [source], root, download, purpose or f"the {source} file")
    image_file, label_file = images.files(source)
    pixels = _read_verified(paths[image_file], image_file, images)
    labels = _read_verified(paths[label_file], label_file, images)
    pixels, cache = _preprocess(pixels, prep, images, image_file, root)
    return SourceData(pixels, labels, [paths[image_file], paths[label_file]], cache)


def split_rows(split: str, n: int, val_size: int) -> slice:
    """Rows of a split in its file: train = the first ``n - val_size`` rows of the training
    file, val = its last ``val_size`` rows, test = every row of the test file."""
    if split == "train":
        return slice(0, n - val_size)
    if split == "val":
        return slice(n - val_size, n)
    return slice(0, n)


def encode(
    pixels: np.ndarray, prep: Preprocessing, t_early: float = 0.15, t_late: float = 2.0
) -> torch.Tensor:
    """``(n, h, w)`` uint8 images -> ``(n, h w)`` float64 spike times

        p = raw / scale,   t = t_early + (1 - p) (t_late - t_early),

    and ``t = +inf`` where ``p = 0`` if ``prep.silent_at_late``. Computed in place (the training
    split of 28x28 MNIST is 300 MB of float64).
    """
    flat = torch.tensor(pixels.reshape(len(pixels), -1))
    times = flat.to(torch.float64).div_(prep.scale)
    times.neg_().add_(1.0).mul_(t_late - t_early).add_(t_early)
    if prep.silent_at_late:
        times[flat == 0] = torch.inf
    return times


def load_mnist_split(
    name: str,
    split: str,
    root: Path,
    download: bool = False,
    t_early: float = 0.15,
    t_late: float = 2.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Input spike times ``(n, h w)`` float64 and labels ``(n,)`` int64 of one split."""
    images, prep = DATASETS[name]
    source = "test" if split == "test" else "train"
    data = load_source(name, source, root, download, purpose=f"the {split} split of {name}")
    rows = split_rows(split, len(data.labels), images.val_size)
    labels = torch.from_numpy(data.labels[rows].astype(np.int64))
    return encode(data.pixels[rows], prep, t_early, t_late), labels


def load(
    dataset: DatasetConfig, split: str, data_dir: str | os.PathLike | None = None
) -> EncodedSplit:
    """The published ``split`` of the configured MNIST-family dataset from the data root
    (:func:`data_root`), latency coded; ``samples`` is None (the images are too large to keep)."""
    times, labels = load_mnist_split(
        dataset.name,
        split,
        data_root(data_dir, dataset.root),
        download=dataset.download,
        t_early=dataset.encoding.t_early,
        t_late=dataset.encoding.t_late,
    )
    return EncodedSplit(split, times, labels, None)


@dataclass
class Prepared:
    """What :func:`prepare` found and built: the verified files, caches and split sizes."""

    name: str
    title: str
    root: Path
    files: list[Path]
    caches: list[Path]
    split_sizes: dict[str, int]


def prepare(name: str, root: Path, download: bool = True) -> Prepared:
    """Fetch (if missing and ``download``), verify and preprocess every file of dataset
    ``name``, so that later runs need no network."""
    images, _ = DATASETS[name]
    ensure_files(name, SOURCES, root, download, purpose=name)
    files, caches, sizes = [], [], {}
    for source in SOURCES:
        data = load_source(name, source, root, purpose=name)
        files += data.files
        if data.cache is not None and data.cache.is_file():
            caches.append(data.cache)
        for split in ("train", "val") if source == "train" else ("test",):
            rows = split_rows(split, len(data.labels), images.val_size)
            sizes[split] = rows.stop - rows.start
    return Prepared(name, images.title, root, files, caches, sizes)
