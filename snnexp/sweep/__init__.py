"""Sweeps over hyper-parameters and seeds: the sweep file (:mod:`~snnexp.sweep.spec`), running
its runs locally or on Ray (:mod:`~snnexp.sweep.execute`, :mod:`~snnexp.sweep.runner`), an Optuna
search (:mod:`~snnexp.sweep.search`) and the summary over seeds (:mod:`~snnexp.sweep.summary`)."""
