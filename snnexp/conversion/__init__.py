"""ANN -> SNN conversion: the ReLU network of a ``learning.rule: ann`` run becomes a spiking
graph of the same blocks, coded by spike rates or by first-spike times (:mod:`.codes`), with
weights normalised by percentiles of the ANN's activations (:mod:`.normalize`), written as a
new result folder (:mod:`.convert`)."""
