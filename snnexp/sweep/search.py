"""A sweep's search: Optuna's TPE sampler over the ``random.keys`` distributions, objective = the
mean over seeds of a run metric. Trials are asked in batches of ``plan.search_batch`` (fixed when
the sweep starts) and each trial is a point of the plan. Resuming replays the recorded trials
through a fresh study with the same sampler seed (the same asks, the same results told), so an
interrupted search goes on exactly as if it had not stopped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from snnexp.errors import ResultsError, SnnexpError
from snnexp.sweep.runner import Sweep, add_point, check_point
from snnexp.sweep.spec import Distribution, SweepSpec

logger = logging.getLogger(__name__)


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as error:
        raise SnnexpError(
            "a sweep with search: needs Optuna: pip install 'snnexp[sweep]' (or pip install optuna)"
        ) from error
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _optuna_distribution(optuna: Any, dist: Distribution) -> Any:
    if dist.kind == "choice":
        return optuna.distributions.CategoricalDistribution(list(dist.values))
    low, high = dist.values
    if dist.kind == "int_range":
        return optuna.distributions.IntDistribution(int(low), int(high))
    return optuna.distributions.FloatDistribution(low, high, log=dist.kind == "log_uniform")


def run_search(spec: SweepSpec, sweep: Sweep, report: Callable[[str], None]) -> list[str]:
    """Run the search's trials (continuing a recorded one); returns lines for summary.md that
    name the best point."""
    assert spec.search is not None
    search, plan = spec.search, sweep.plan
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=search.startup_trials)
    study = optuna.create_study(direction=search.direction, sampler=sampler)
    space = {key: _optuna_distribution(optuna, d) for key, d in spec.distributions.items()}
    trials: dict[str, Any] = {}
    asked = 0
    while asked < search.trials:
        batch = []
        for _ in range(min(plan.search_batch, search.trials - asked)):
            trial = study.ask(space)
            values = {key: trial.params[key] for key in space}
            if asked < len(plan.points):
                point = plan.points[asked]
                if point["values"] != values:
                    raise ResultsError(
                        f"resuming the search, trial {asked} asks {values} where the sweep "
                        f"recorded {point['values']} (a run's result changed since?); start "
                        "the sweep again"
                    )
            else:
                check_point(plan.folder / plan.base_config, values)
                add_point(plan, values)
                plan.save()
                point = plan.points[-1]
            batch.append((trial, point))
            asked += 1
        sweep.execute([point for _, point in batch])
        for trial, point in batch:
            value = sweep.point_summaries([point])[0].metric(search.objective)["mean"]
            trials[point["id"]] = value
            if math.isfinite(value):
                study.tell(trial, value)
            else:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            logger.info(
                "trial %s (%s): %s %.2f %%",
                point["id"],
                ", ".join(f"{key} = {v}" for key, v in point["values"].items()),
                search.objective,
                100 * value,
            )
    finished = {point: value for point, value in trials.items() if math.isfinite(value)}
    if not finished:
        return [f"Search ({search.sampler}, {search.trials} trials): no trial finished."]
    pick = max if search.direction == "maximize" else min
    best = pick(finished, key=finished.__getitem__)
    values = next(p["values"] for p in plan.points if p["id"] == best)
    line = (
        f"Best point of the {search.sampler} search ({search.trials} trials, {search.direction} "
        f"{search.objective}, mean over {len(plan.seeds)} seed(s)): {best} "
        + ", ".join(f"{key} = {value}" for key, value in values.items())
        + f": {search.objective} {100 * finished[best]:.2f} %"
    )
    report(line)
    return [line]
