"""IDX files, the format of MNIST and Fashion-MNIST: reading (gzipped or not) and parsing.

An IDX file is a big-endian header followed by the array in C order::

    bytes 0-1   zero
    byte  2     element type (0x08: unsigned byte, the only type the MNIST family uses)
    byte  3     number of dimensions d
    4 d bytes   the d sizes, big-endian uint32
    then        prod(sizes) elements

so images (``(n, 28, 28)``) start with the magic number 2051 and labels (``(n,)``) with 2049.
Content is identified by the MD5 of the *uncompressed* bytes (:func:`content_md5`): recompressed
``.gz`` archives differ byte for byte while holding the same data.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from snnexp.errors import DataError

UNSIGNED_BYTE = 0x08


def read_idx_bytes(path: Path) -> bytes:
    """The uncompressed bytes of ``path`` (decompressed when its name ends in ``.gz``)."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if path.suffix == ".gz" else data
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(
            f"cannot read {path} ({type(error).__name__}: {error}); the file is damaged or "
            "truncated: delete it and fetch it again"
        ) from error


def content_md5(data: bytes) -> str:
    """Hex MD5 of the uncompressed bytes."""
    return hashlib.md5(data).hexdigest()


def parse_idx(data: bytes, source: Path) -> np.ndarray:
    """The unsigned-byte array held by the IDX bytes ``data`` (read-only, no copy).

    ``source`` names the file in error messages.
    """
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != UNSIGNED_BYTE:
        raise DataError(f"{source} is not an unsigned-byte IDX file (bad magic number)")
    header = 4 + 4 * data[3]
    if len(data) < header:
        raise DataError(f"{source} is truncated: its IDX header is incomplete")
    shape = tuple(int(size) for size in np.frombuffer(data, ">u4", count=data[3], offset=4))
    if len(data) != header + int(np.prod(shape)):
        raise DataError(
            f"{source} holds {len(data) - header} data bytes, but its header announces shape "
            f"{shape}; the file is damaged"
        )
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)
