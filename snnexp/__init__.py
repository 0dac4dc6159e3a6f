"""snnexp: config-driven experiments with spiking neural networks."""

__version__ = "0.1.0"
