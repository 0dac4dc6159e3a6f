"""A sweep from start to summary: its folder and plan, which runs to start, continue or skip,
the search loop, and the summary with its figures.

Folder of a sweep::

    <sweep file stem>_<date>_<time>/
      sweep.yaml          the sweep file as given
      base/<name>.yaml    the base config as it was when the sweep started (runs read this copy)
      plan.json           points (a search's trials, as asked), seeds, threads per run
      runs/<point>_<seed>/  one ordinary snnexp result folder per point x seed
      logs/<run>.txt      console output of every process of that run
      attempts/<run>.json what each process of that run did: command, exit code, seconds, memory
      summary.csv, summary.md, figures/
      run.lock            held by the `snnexp sweep` process running it (one at a time)
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from snnexp.config import ConfigError, load_config
from snnexp.errors import ResultsError
from snnexp.run.files import CONFIG_FILE, RESUME_FILE
from snnexp.run.results import atomic_write_text, list_savepoints, set_aside
from snnexp.run.stopping import STOP_SIGNALS, signal_name
from snnexp.sweep.execute import (
    Job,
    SweepStopped,
    forwarding_stop_signals,
    run_local,
    run_ray,
)
from snnexp.sweep.spec import CONFIG_SEEDS, SweepSpec, point_settings, read_sweep
from snnexp.sweep.summary import (
    PointSummary,
    is_finished,
    read_run_result,
    summary_csv,
    summary_markdown,
)

logger = logging.getLogger(__name__)

PLAN_FILE = "plan.json"
SWEEP_COPY = "sweep.yaml"
BASE_FOLDER = "base"
RUNS_FOLDER = "runs"
LOGS_FOLDER = "logs"
ATTEMPTS_FOLDER = "attempts"
SUMMARY_CSV = "summary.csv"
SUMMARY_MD = "summary.md"
FIGURES_FOLDER = "figures"
PLAN_FORMAT = 1


@dataclass
class Options:
    """How to execute (may change between a sweep and its resumption)."""

    executor: str = "local"
    jobs: int = 1
    address: str | None = None
    data_dir: Path | None = None


@dataclass
class Plan:
    """What a sweep runs (fixed when it starts; plan.json)."""

    folder: Path
    base_config: str
    keys: list[str]
    seeds: list[int | None]
    points: list[dict[str, Any]] = field(default_factory=list)
    """[{"id": "p00", "values": {key: value}}]"""
    threads: int = 1
    title: str = ""
    search_batch: int = 1
    """Trials a search asks at a time (fixed at the start, so that resuming replays it)."""

    def run_names(self, point: str) -> list[str]:
        return [run_name(point, seed) for seed in self.seeds]

    def save(self) -> None:
        data = {
            "format": PLAN_FORMAT,
            "base_config": self.base_config,
            "keys": self.keys,
            "seeds": self.seeds,
            "points": self.points,
            "threads": self.threads,
            "title": self.title,
            "search_batch": self.search_batch,
        }
        atomic_write_text(self.folder / PLAN_FILE, json.dumps(data, indent=1) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Plan:
        path = Path(folder) / PLAN_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                folder=Path(folder).resolve(),
                base_config=str(data["base_config"]),
                keys=list(data["keys"]),
                seeds=list(data["seeds"]),
                points=list(data["points"]),
                threads=int(data["threads"]),
                title=str(data.get("title", "")),
                search_batch=int(data.get("search_batch", 1)),
            )
        except FileNotFoundError:
            raise ResultsError(
                f"{folder} is not a sweep folder (no {PLAN_FILE}); give the folder that "
                "`snnexp sweep` printed"
            ) from None
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ResultsError(f"{path} is damaged ({error}); start the sweep again") from error


def run_name(point: str, seed: int | None) -> str:
    """``p03_seed7``; ``p03_config-seeds`` for the config's own training.seeds."""
    return f"{point}_config-seeds" if seed is CONFIG_SEEDS else f"{point}_seed{seed}"


def new_sweep_folder(spec: SweepSpec, results_dir: Path, threads: int) -> Plan:
    """Create the sweep's folder with copies of the sweep file and base config, and its plan."""
    stem = f"{spec.source.stem}_{datetime.now():%Y-%m-%d_%H-%M-%S}"
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        folder = results_dir.resolve() / stem
        for attempt in range(1, 1000):
            try:
                folder.mkdir()
                break
            except FileExistsError:
                folder = results_dir / f"{stem}_{attempt}"
        (folder / BASE_FOLDER).mkdir()
    except OSError as error:
        raise ResultsError(
            f"cannot create the sweep folder under {results_dir} ({error.strerror or error}); "
            "choose a writable folder with --results-dir"
        ) from error
    shutil.copyfile(spec.source, folder / SWEEP_COPY)
    base = Path(BASE_FOLDER) / spec.config.name
    shutil.copyfile(spec.config, folder / base)
    return Plan(
        folder=folder,
        base_config=str(base),
        keys=spec.swept_keys,
        seeds=spec.seeds,
        threads=threads,
        title=spec.source.stem,
    )


def check_point(config: Path, values: dict[str, Any]) -> None:
    """Refuse a point whose settings do not make a valid config (before any run starts)."""
    try:
        load_config(config, point_settings(values))
    except ConfigError as error:
        raise ConfigError(
            f"the sweep's point {values} does not give a valid config:\n{error}"
        ) from None


def add_point(plan: Plan, values: dict[str, Any]) -> str:
    point = f"p{len(plan.points):02d}"
    plan.points.append({"id": point, "values": values})
    return point


class Sweep:
    """Runs the plan's runs (skipping finished ones), records every attempt, summarises."""

    def __init__(self, plan: Plan, options: Options) -> None:
        self.plan = plan
        self.options = options
        self.failed: dict[str, str] = {}
        """Runs that did not finish in this session: name -> why."""
        self.workdir = Path.cwd()
        """Where runs start (relative paths in a config, e.g. dataset.root, are read from it)."""

    @property
    def folder(self) -> Path:
        return self.plan.folder

    def run_dir(self, name: str) -> Path:
        return self.folder / RUNS_FOLDER / name

    def attempts(self, name: str) -> list[dict[str, Any]]:
        path = self.folder / ATTEMPTS_FOLDER / f"{name}.json"
        try:
            return list(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as error:
            logger.warning("%s is damaged (%s); its attempts are not counted", path, error)
            return []

    def job(self, point: dict[str, Any], seed: int | None) -> Job | None:
        """The process that brings this run forward: none (finished), ``continue`` (a state to
        resume from), or ``train``."""
        name = run_name(point["id"], seed)
        run_dir = self.run_dir(name)
        common = ["--threads", str(self.plan.threads), "--quiet"]
        if self.options.data_dir is not None:
            common += ["--data-dir", str(self.options.data_dir.resolve())]
        if run_dir.exists():
            if is_finished(run_dir):
                return None
            if _has_state(run_dir):
                arguments = ["continue", str(run_dir), *common]
                return Job(name, tuple(arguments), self._log(name), self.workdir)
            kept = set_aside(run_dir)
            logger.info("%s stopped before its first savepoint; kept as %s", name, kept.name)
        arguments = ["train", str(self.folder / self.plan.base_config), "--run-dir", str(run_dir)]
        for item in point_settings(point["values"]):
            arguments += ["--set", item]
        if seed is not CONFIG_SEEDS:
            arguments += ["--seed", str(seed)]
        return Job(name, tuple(arguments + common), self._log(name), self.workdir)

    def _log(self, name: str) -> Path:
        return self.folder / LOGS_FOLDER / f"{name}.txt"

    def execute(self, points: Sequence[dict[str, Any]]) -> None:
        """Bring every run of ``points`` to its end; a failed run is reported and the others go
        on. Raises SweepStopped after a stop signal (the runs saved their state)."""
        jobs = [
            job
            for point in points
            for seed in self.plan.seeds
            if (job := self.job(point, seed)) is not None
        ]
        skipped = len(points) * len(self.plan.seeds) - len(jobs)
        if skipped:
            logger.info("%d run(s) finished before; skipped", skipped)
        if not jobs:
            return
        logger.info(
            "running %d run(s) with %s, %d at a time, %d thread(s) each",
            len(jobs),
            self.options.executor,
            self.options.jobs,
            self.plan.threads,
        )
        stopped: list[int] = []
        with forwarding_stop_signals(stopped):
            if self.options.executor == "ray":
                run_ray(
                    jobs,
                    self.options.jobs,
                    self.plan.threads,
                    self.options.address,
                    self._record,
                    stopped,
                )
            else:
                run_local(jobs, self.options.jobs, self._record, stopped)
        if stopped:
            raise SweepStopped(
                stopped[0],
                f"sweep stopped; the runs saved their state. Finish it with: snnexp sweep "
                f"--resume {self.folder}",
            )

    def _record(self, job: Job, attempt: dict[str, Any]) -> None:
        attempts = [*self.attempts(job.name), attempt]
        path = self.folder / ATTEMPTS_FOLDER / f"{job.name}.json"
        path.parent.mkdir(exist_ok=True)
        atomic_write_text(path, json.dumps(attempts, indent=1) + "\n")
        code = attempt["exit_code"]
        if code == 0:
            self.failed.pop(job.name, None)
            logger.info("%s finished (%.0f s)", job.name, attempt["seconds"])
        elif (signum := -code if code < 0 else code - 128) in STOP_SIGNALS:
            self.failed[job.name] = f"stopped by {signal_name(signum)}"
            logger.info("%s stopped by %s", job.name, signal_name(signum))
        else:
            self.failed[job.name] = f"failed with exit code {code}, log: {job.log}"
            logger.error(
                "%s failed (exit code %d); its log: %s\n%s",
                job.name,
                code,
                job.log,
                _tail(job.log),
            )

    def point_summaries(self, points: Sequence[dict[str, Any]] | None = None) -> list[PointSummary]:
        """Every point with the finished runs among its seeds."""
        summaries = []
        for point in self.plan.points if points is None else points:
            summary = PointSummary(point["id"], point["values"], planned=len(self.plan.seeds))
            for name in self.plan.run_names(point["id"]):
                if is_finished(self.run_dir(name)):
                    summary.runs.append(read_run_result(self.run_dir(name), self.attempts(name)))
            summaries.append(summary)
        return summaries

    def write_summary(self, notes: Sequence[str] = ()) -> list[PointSummary]:
        """summary.csv, summary.md and the figures; returns the point summaries."""
        points = self.point_summaries()
        keys = self.plan.keys
        atomic_write_text(self.folder / SUMMARY_CSV, summary_csv(points, keys))
        title = f"Sweep {self.plan.title} ({self.plan.base_config})"
        atomic_write_text(self.folder / SUMMARY_MD, summary_markdown(points, keys, title, notes))
        from snnexp.plots.sweep import draw_sweep_figures

        draw_sweep_figures(points, keys, self.folder / FIGURES_FOLDER)
        return points


def _has_state(run_dir: Path) -> bool:
    """Whether a run folder holds something `snnexp continue` resumes from."""
    if not (run_dir / CONFIG_FILE).is_file():
        return False
    return (run_dir / RESUME_FILE).is_file() or bool(list_savepoints(run_dir))


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").rstrip().splitlines()
    except OSError:
        return ""
    return "\n".join("    " + line for line in text[-lines:])


def start_sweep(
    sweep_file: Path, results_dir: Path, threads: int, options: Options
) -> tuple[SweepSpec, Sweep]:
    """Read the sweep file, check the config of every fixed point (a search: of one draw),
    then create the sweep's folder and plan."""
    spec = read_sweep(sweep_file)
    if spec.search is None:
        points = spec.fixed_points()
    else:
        rng = np.random.default_rng(spec.search.seed)
        points = [{key: d.draw(rng) for key, d in spec.distributions.items()}]
    for values in points:
        check_point(spec.config, values)
    plan = new_sweep_folder(spec, results_dir, threads)
    if spec.search is None:
        for values in points:
            add_point(plan, values)
    else:
        plan.search_batch = max(1, options.jobs // len(spec.seeds))
    plan.save()
    return spec, Sweep(plan, options)


def resume_sweep(folder: Path, options: Options) -> tuple[SweepSpec, Sweep]:
    """The sweep in ``folder`` as planned, to be finished."""
    plan = Plan.load(folder)
    spec = read_sweep(folder / SWEEP_COPY, base_config=folder / plan.base_config)
    return spec, Sweep(plan, options)


def run_sweep(spec: SweepSpec, sweep: Sweep, report: Callable[[str], None]) -> int:
    """Run (or finish) the sweep and write its summary (also of a stopped sweep: its finished
    runs); returns the number of failed runs."""
    notes: list[str] = []
    try:
        if spec.search is None:
            sweep.execute(sweep.plan.points)
        else:
            from snnexp.sweep.search import run_search

            notes = run_search(spec, sweep, report)
    finally:
        sweep.write_summary(notes)
    if sweep.failed:
        report(
            f"{len(sweep.failed)} run(s) did not finish: "
            + "; ".join(f"{name} ({why})" for name, why in sweep.failed.items())
            + f". Resume with: snnexp sweep --resume {sweep.folder}"
        )
    return len(sweep.failed)
