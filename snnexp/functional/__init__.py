"""Pure math: tensors and NamedTuple states in, tensors out (no modules, no config)."""
