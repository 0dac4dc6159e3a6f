"""Exchange of trained networks with other frameworks and hardware through the Neuromorphic
Intermediate Representation (NIR, optional dependency ``nir``): :mod:`.export` writes a
network, :mod:`.reader` reads one back, :mod:`.conventions` holds how time constants map."""
