"""A cache of preprocessed arrays: one ``.npz`` per array, valid only for the key it was built for.

The file holds the array, its key (JSON of the preprocessing parameters and the checksums of the
source files) and the MD5 of the array's bytes. Loading checks both, so a cache built from other
files or with other parameters (stale) or damaged on disk (corrupted) is rebuilt, never used.
Writes are atomic (temporary file + rename): an interrupted build leaves no half cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from snnexp.run.results import atomic_write_bytes

logger = logging.getLogger(__name__)


def _array_md5(array: np.ndarray) -> str:
    return hashlib.md5(np.ascontiguousarray(array).tobytes()).hexdigest()


def _key_text(key: Mapping[str, Any]) -> str:
    return json.dumps(dict(key), sort_keys=True)


def read_cache(path: Path, key: Mapping[str, Any]) -> np.ndarray | None:
    """The cached array at ``path`` if it exists, was built for ``key`` and is intact."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            stored_key, checksum, array = str(stored["key"]), str(stored["md5"]), stored["array"]
    except Exception as error:  # any failure to read means: rebuild
        logger.warning("cache %s is unreadable (%s); rebuilding it", path, error)
        return None
    if stored_key != _key_text(key):
        logger.info("cache %s was built from other files or parameters; rebuilding it", path)
        return None
    if _array_md5(array) != checksum:
        logger.warning("cache %s is corrupted (checksum mismatch); rebuilding it", path)
        return None
    return array


def cached_array(path: Path, key: Mapping[str, Any], build: Callable[[], np.ndarray]) -> np.ndarray:
    """The array cached at ``path`` for ``key``, or ``build()``'s result, then cached there.

    A cache that cannot be written (read-only folder) is reported and skipped.
    """
    array = read_cache(path, key)
    if array is not None:
        return array
    array = build()
    buffer = io.BytesIO()
    np.savez(buffer, array=array, key=np.array(_key_text(key)), md5=np.array(_array_md5(array)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, buffer.getvalue())
    except OSError as error:
        logger.warning("could not write the cache %s (%s); it is rebuilt next time", path, error)
    return array
