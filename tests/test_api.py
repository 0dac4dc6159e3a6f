"""The public API at ``snnexp``: every listed name resolves, and importing the package alone
does not import torch (the command line starts fast)."""

from __future__ import annotations

import subprocess
import sys

import snnexp


def test_every_public_name_resolves_to_its_definition():
    for name in snnexp.__all__:
        value = getattr(snnexp, name)
        if name != "__version__":
            assert getattr(value, "__name__", name) == name


def test_import_does_not_load_torch():
    code = "import sys, snnexp; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_readme_example_runs_from_the_top_level():
    from snnexp import FirstSpikeLayer, FirstSpikeNetwork, latency_encode, yin_yang

    samples, _ = yin_yang(20, seed=40)
    net = FirstSpikeNetwork(
        [FirstSpikeLayer(4, 10, bias_times=[0.9]), FirstSpikeLayer(10, 3, bias_times=[0.9])]
    )
    label_times, (hidden_times,) = net(latency_encode(samples))
    assert label_times.shape == (20, 3) and hidden_times.shape == (20, 10)
