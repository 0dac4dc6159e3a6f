"""The run life cycle: building an experiment, the trainer, evaluation, inference and the result
folder."""
