"""The README's results table over seeds, made from sweep summaries.

For every sweep file in experiment_configs/sweeps/ it takes the latest sweep folder of that file
under the results folder (``<stem>_<date>_<time>/``, as `snnexp sweep` names them), reads the
finished runs of each point and writes one row per point: n seeds (of those planned), test and
validation accuracy as mean ± sd [min, max] over seeds, training time per run and peak memory.

    python benchmarks/results_table.py                    # print the table
    python benchmarks/results_table.py --write README.md  # replace it between the markers

The table in README.md sits between the lines ``<!-- results-table:start -->`` and
``<!-- results-table:end -->``.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from snnexp.config import load_config
from snnexp.sweep.runner import PLAN_FILE, Options, Plan, Sweep
from snnexp.sweep.summary import shown_value

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results-table:start -->", "<!-- results-table:end -->"
HEADER = (
    "| sweep file | config | setting | rule | dataset | seeds | test accuracy [%] | "
    "final validation [%] | training time per run | peak memory |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def latest_sweep(results: Path, stem: str) -> Path | None:
    """The newest folder ``<stem>_<date>_<time>`` with a sweep plan under ``results``."""
    found = [
        folder
        for folder in results.glob(f"{stem}_20*")
        if (folder / PLAN_FILE).is_file() and folder.name[len(stem) + 1 :][:4].isdigit()
    ]
    return max(found, key=lambda folder: folder.name) if found else None


def duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    if seconds < 10:
        return f"{seconds:.1f} s"
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def rows(sweep_file: Path, folder: Path) -> list[str]:
    plan = Plan.load(folder)
    cfg = load_config(folder / plan.base_config)
    lines = []
    for point in Sweep(plan, Options()).point_summaries():
        setting = ", ".join(f"`{k}: {shown_value(v)}`" for k, v in point.values.items()) or "—"
        seconds, memory = point.seconds(), point.peak_memory_mb()
        cells = [
            f"[`{sweep_file.name}`]({sweep_file.relative_to(ROOT).as_posix()})",
            f"`{Path(plan.base_config).name}`",
            setting,
            cfg.learning.rule,
            cfg.dataset.name,
            point.seeds_text(),
            point.spread("test_accuracy", digits=1),
            point.spread("val_accuracy", digits=1),
            duration(seconds),
            f"{memory / 1024:.1f} GB" if math.isfinite(memory) else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def table(results: Path, sweeps: Path) -> str:
    lines = [HEADER]
    for sweep_file in sorted(sweeps.glob("*.yaml")):
        folder = latest_sweep(results, sweep_file.stem)
        if folder is None:
            print(f"no results of {sweep_file.name} under {results}; skipped", file=sys.stderr)
            continue
        lines += rows(sweep_file, folder)
    return "\n".join(lines)


def write_between_markers(path: Path, text: str) -> None:
    content = path.read_text(encoding="utf-8")
    if START not in content or END not in content:
        raise SystemExit(f"{path} lacks the markers {START} and {END}")
    before, rest = content.split(START, 1)
    _, after = rest.split(END, 1)
    path.write_text(f"{before}{START}\n{text}\n{END}{after}", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", type=Path, default=ROOT / "experiment_results")
    parser.add_argument("--sweeps", type=Path, default=ROOT / "experiment_configs" / "sweeps")
    parser.add_argument("--write", type=Path, default=None, help="replace the table in this file")
    args = parser.parse_args()
    text = table(args.results_dir, args.sweeps)
    if args.write is None:
        print(text)
    else:
        write_between_markers(args.write, text)
        print(f"wrote the results table into {args.write}")


if __name__ == "__main__":
    main()
