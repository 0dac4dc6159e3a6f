"""The `snnexp` command: parse, call, print. No science here.

One module per command (``train``, ``inference``, ``evaluate`` for ``eval``, ``continue_run``
for ``continue``, ``export``, ``convert``, ``data``, ``nir``, ``sweep`` with ``compare``); each
registers itself on the group :func:`main` of :mod:`snnexp.cli.shared` when imported here.
"""

from snnexp.cli import (  # noqa: F401 (register)
    continue_run,
    convert,
    data,
    evaluate,
    export,
    inference,
    nir,
    sweep,
    train,
)
from snnexp.cli.shared import main

__all__ = ["main"]
