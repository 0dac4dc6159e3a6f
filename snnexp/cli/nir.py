"""`snnexp nir export` / `snnexp nir import`: networks as NIR graphs (optional dependency nir)."""

from __future__ import annotations

from pathlib import Path

import click

from snnexp.cli.shared import (
    data_dir_option,
    friendly_errors,
    logger,
    main,
    new_run_folder,
    results_dir_option,
    setup_logging,
)
from snnexp.config import load_config
from snnexp.nir.conventions import SNNTORCH_DT

dt_help = (
    "The simulation step dt of the NIR side: time constants are written (read) so that a "
    "forward-Euler step of dt equals one snnexp step (tau = dt / (1 - decay), r = tau / dt)."
)


@main.group(name="nir")
def nir_group() -> None:
    """Exchange networks with other frameworks and hardware as NIR graphs
    (pip install 'snnexp[interop]')."""


@nir_group.command(name="export")
@click.argument("run", type=click.Path(path_type=Path))
@click.argument("destination", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--epoch", type=int, default=None, help="Savepoint of RUN (default: the latest).")
@click.option(
    "--dt",
    type=click.FloatRange(min=0, min_open=True),
    default=SNNTORCH_DT,
    show_default=True,
    help=dt_help + " 1e-4 is what snnTorch assumes; norse: from_nir(graph, dt=...).",
)
@click.option(
    "--approximate",
    is_flag=True,
    help="Write what NIR cannot express (reset by subtraction, adaptive thresholds, refractory "
    "steps) as the nearest primitive, listed in the graph's metadata and here.",
)
@click.option(
    "--leaky-as",
    type=click.Choice(["lif", "cubalif"]),
    default="lif",
    show_default=True,
    help="How leaky populations are written: LIF, or CubaLIF with tau_syn = dt (the same "
    "dynamics; for readers that ignore a LIF's r, such as norse).",
)
@friendly_errors
def export_command(
    run: Path, destination: Path, epoch: int | None, dt: float, approximate: bool, leaky_as: str
) -> None:
    """Write the network of RUN's savepoint as a NIR graph (HDF5) to DESTINATION.

    \b
    Example:
      snnexp nir export experiment_results/yin_yang_bptt_<date>_<time> yin_yang.nir
    """
    from snnexp.nir.runs import require_nir
    from snnexp.run.inference import load_saved_network

    setup_logging()
    require_nir()
    import nir

    from snnexp.nir.export import export_network

    saved = load_saved_network(run, epoch, device="cpu")
    graph, approximations = export_network(
        saved.model, saved.cfg.model.dt, dt, approximate, leaky_as
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    nir.write(destination, graph)
    for note in approximations:
        logger.warning("approximated: %s", note)
    logger.info(
        "wrote %s (%s, %d nodes) for simulators of step dt = %g",
        destination,
        saved.epoch_dir.name,
        len(graph.nodes),
        dt,
    )


@nir_group.command(name="import")
@click.argument("source", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The config that supplies dataset, model.dt, encoder, read-out and training.",
)
@click.option(
    "--dt",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help=dt_help + " Default: the graph's metadata dt (snnexp writes it), else 1e-4.",
)
@click.option(
    "--set", "settings", multiple=True, metavar="KEY=VALUE", help="Override a key of CONFIG."
)
@results_dir_option
@data_dir_option
@friendly_errors
def import_command(
    source: Path,
    config_path: Path,
    dt: float | None,
    settings: tuple[str, ...],
    results_dir: Path,
    data_dir: Path | None,
) -> None:
    """Read the NIR graph SOURCE into a new result folder (config with the graph as
    model.blocks, savepoint epoch_0 with its weights, evaluated on every split):
    `snnexp inference`, `eval`, `export` and `continue` (training with BPTT) work on it.

    \b
    Example:
      snnexp nir import yin_yang.nir --config experiment_configs/yin_yang_bptt.yaml
    """
    from snnexp.nir.runs import config_with_graph, load_graph_weights, read_network_file
    from snnexp.run.trainer import Trainer

    setup_logging()
    graph = read_network_file(source)
    cfg, imported = config_with_graph(load_config(config_path, settings), graph, dt, str(source))
    trainer = Trainer(cfg, progress=False, data_dir=data_dir)
    load_graph_weights(trainer.model, imported)
    with new_run_folder(trainer, results_dir, cfg.name or source.stem) as out_dir:
        logger.info("imported %s (%d blocks) -> %s", source, len(cfg.model.blocks), out_dir)
        trainer.history = [trainer.initial_row()]
        trainer.save()
        logger.info(
            "val accuracy %.2f %% (snnexp inference %s for the test split)",
            100 * trainer.history[0]["val_accuracy"],
            out_dir,
        )
        logger.info("results: %s", out_dir)
