"""Switching a module's training mode for a while."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def evaluation_mode(module: nn.Module) -> Iterator[None]:
    """``module`` in evaluation mode (no dropout) inside the block, its mode restored after."""
    training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(training)
