"""Thin torch.nn.Module shells around :mod:`snnexp.functional`: neuron populations, layers,
read-outs and the networks built from them."""
