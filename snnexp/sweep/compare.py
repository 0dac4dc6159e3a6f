"""`snnexp compare`: runs and sweeps side by side, as one table and one figure of curves."""

from __future__ import annotations

from pathlib import Path

from snnexp.errors import ResultsError
from snnexp.plots.io import HistoryError
from snnexp.sweep.runner import PLAN_FILE, Options, Plan, Sweep
from snnexp.sweep.summary import PointSummary, read_run_result, summary_markdown


def comparison_groups(folders: list[Path]) -> list[PointSummary]:
    """One group per run folder, one per point of each sweep folder (its finished seeds)."""
    groups = []
    for folder in folders:
        if (folder / PLAN_FILE).is_file():
            for point in Sweep(Plan.load(folder), Options()).point_summaries():
                point.point = f"{folder.name}/{point.point}"
                groups.append(point)
            continue
        try:
            run = read_run_result(folder)
        except (OSError, HistoryError, ValueError) as error:
            raise ResultsError(
                f"{folder} is neither a finished run nor a sweep folder ({error})"
            ) from error
        groups.append(PointSummary(folder.name, {}, runs=[run], planned=1))
    return groups


def compare_folders(folders: list[Path], output: Path) -> str:
    """Write the curves figure to ``output``; returns the table (Markdown)."""
    from snnexp.plots.style import save_figure
    from snnexp.plots.sweep import curves_figure

    groups = comparison_groups(folders)
    labelled = [(group.point, group.runs) for group in groups if group.runs]
    save_figure(curves_figure(labelled), output)
    return summary_markdown(groups, [], "Comparison")
