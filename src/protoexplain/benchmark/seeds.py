"""The faithfulness benchmark over several seeds: independent runs, pooled tables.

One run's 40 prototypes share one trunk, so its shares say little about how much they would move
with another draw of the data, the training and the controls. :func:`run_seeds` runs the benchmark
once per seed (``OUT/seed-N``); :func:`combine_runs` pools finished runs whose settings differ only
in the seed: every share, interval and p-value is computed from the prototypes of all runs
together, and ``seed_shares`` lists each run's own count so that the spread between runs is
visible next to the pooled number.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import pandas as pd

from protoexplain.benchmark.faithfulness import (
    RESULT_COLUMNS,
    ROW_COLUMNS,
    FaithfulnessConfig,
    result_row,
    result_settings,
    run_faithfulness,
)
from protoexplain.benchmark.significance import add_significance
from protoexplain.benchmark.tables import markdown_table, percent, recommend
from protoexplain.errors import UserError
from protoexplain.fileio import atomic_open, read_json, write_json
from protoexplain.progress import progress_bar

#: Columns of a pooled ``faithfulness.csv``: a single run's plus the seeds and, per seed, the
#: prototypes whose top characteristic is the true factor out of all (``seed_shares``: "39/40 …").
POOLED_COLUMNS = (*RESULT_COLUMNS, "seeds", "seed_shares")


@dataclass(frozen=True)
class FinishedRun:
    """A finished benchmark folder: its settings, presets done, per-prototype ranks, accuracies."""

    folder: Path
    config: FaithfulnessConfig
    presets: tuple[str, ...]
    per_prototype: pd.DataFrame
    accuracy: dict[str, float]


def read_run(folder: str | os.PathLike) -> FinishedRun:
    """Read the output folder of ``benchmark faithfulness`` (a one-line error if it is not one)."""
    root = Path(folder)
    needed = [root / name for name in ("benchmark.json", "per_prototype.csv", "faithfulness.csv")]
    missing = [path.name for path in needed if not path.is_file()]
    if missing:
        raise UserError(
            f"{root} is not a finished faithfulness benchmark (no {', '.join(missing)}); give "
            "folders written by 'protoexplain benchmark faithfulness'"
        )
    try:
        summary = read_json(needed[0])
        per_prototype, table = pd.read_csv(needed[1]), pd.read_csv(needed[2])
    except (ValueError, OSError, UserError) as error:
        raise UserError(f"cannot read the benchmark in {root} ({error}); run it again") from None
    if "seeds" in summary:
        raise UserError(f"{root} holds pooled runs; give the folders of the single runs instead")
    known = {f.name for f in fields(FaithfulnessConfig)}
    settings = {k: v for k, v in summary.get("config", {}).items() if k in known}
    for name in ("presets", "dose_targets"):
        if name in settings:
            settings[name] = tuple(settings[name])
    accuracy = table.groupby("preset")["accuracy"].first().to_dict()
    return FinishedRun(
        folder=root, config=replace(FaithfulnessConfig(), **settings),
        presets=tuple(summary.get("presets_done", ())), per_prototype=per_prototype,
        accuracy={str(k): float(v) for k, v in accuracy.items()},
    )


def _fixed_settings(config: FaithfulnessConfig) -> dict:
    """What pooled runs must share: every setting results depend on except the seed."""
    return {k: v for k, v in result_settings(config).items() if k != "seed"}


def _check_poolable(runs: list[FinishedRun]) -> tuple[str, ...]:
    """The presets every run finished; a :class:`UserError` when runs cannot be pooled."""
    if len(runs) < 2:
        raise UserError("give at least two benchmark folders to combine")
    first = runs[0]
    seen: dict[int, Path] = {}
    for run in runs:
        if run.config.seed in seen:
            raise UserError(
                f"{run.folder} and {seen[run.config.seed]} both used seed {run.config.seed}; "
                "pool runs with different seeds"
            )
        seen[run.config.seed] = run.folder
        ours, theirs = _fixed_settings(run.config), _fixed_settings(first.config)
        differ = sorted(k for k in ours if ours[k] != theirs[k])
        if differ:
            raise UserError(
                f"{run.folder} differs from {first.folder} in {', '.join(differ)}; pool only "
                "runs that differ in their seed"
            )
    common = tuple(p for p in first.presets if all(p in run.presets for run in runs))
    if not common:
        raise UserError("the benchmark folders share no finished preset; nothing to combine")
    return common


def all_ranks(runs: list[FinishedRun], presets: tuple[str, ...]) -> pd.DataFrame:
    """Every run's ``per_prototype.csv`` rows for ``presets``, with a ``seed`` column."""
    ranks = pd.concat(
        [run.per_prototype.assign(seed=run.config.seed) for run in runs], ignore_index=True
    )
    return ranks[ranks["preset"].isin(presets)]


def pooled_table(
    runs: list[FinishedRun], presets: tuple[str, ...], ranks: pd.DataFrame
) -> pd.DataFrame:
    """One row per preset, family and model over ``ranks`` (:func:`all_ranks` of ``runs``;
    columns :data:`POOLED_COLUMNS`); ``accuracy`` is the mean of the runs' test accuracies."""
    rows, seed_shares = [], []
    for (preset, family, kind), group in ranks.groupby(
        ["preset", "family", "model"], sort=False
    ):
        accuracy = sum(run.accuracy[preset] for run in runs) / len(runs)
        rows.append(result_row(preset, family, kind, accuracy, group))
        firsts = group.groupby("seed", sort=False)["rank"].agg(lambda r: int((r == 1.0).sum()))
        sizes = group.groupby("seed", sort=False).size()
        seed_shares.append(" ".join(f"{firsts[s]}/{sizes[s]}" for s in firsts.index))
    table = add_significance(pd.DataFrame(rows, columns=list(ROW_COLUMNS)))
    table["seeds"] = " ".join(str(run.config.seed) for run in runs)
    table["seed_shares"] = seed_shares
    order = {column: list(dict.fromkeys(table[column])) for column in ("family", "model")}
    order["preset"] = list(presets)
    table = table.sort_values(
        ["preset", "family", "model"], key=lambda column: column.map(order[column.name].index),
        kind="stable",
    )
    return table[list(POOLED_COLUMNS)].reset_index(drop=True)


def _seed_table(table: pd.DataFrame, ranks: pd.DataFrame, seeds: list[int]) -> str:
    """Markdown: each model's top-1 share in each run (from ``ranks``, :func:`all_ranks`), per
    preset and family, in the order of the pooled ``table``."""
    share = (ranks["rank"] == 1.0).groupby(
        [ranks["preset"], ranks["family"], ranks["model"], ranks["seed"]]).mean()
    header = ["preset", "family", "model", *[f"seed {s}" for s in seeds], "pooled"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, row in table.iterrows():
        key = (row["preset"], row["family"], row["model"])
        shares = [percent(share[(*key, seed)]) for seed in seeds]
        cells = [*key, *shares, percent(row["top1_share"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def combine_runs(folders: list[str | os.PathLike], out_dir: str | os.PathLike) -> dict:
    """Pool finished benchmark runs that differ only in their seed into ``out_dir``.

    Writes ``faithfulness.csv`` (pooled; :data:`POOLED_COLUMNS`), ``per_prototype.csv`` (every
    run's ranks with a ``seed`` column), ``faithfulness.md`` (the pooled table and each
    seed's shares) and ``benchmark.json``; returns the latter's content.
    """
    runs = [read_run(folder) for folder in folders]
    presets = _check_poolable(runs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    per_prototype = all_ranks(runs, presets)
    table = pooled_table(runs, presets, per_prototype)
    recommendation = recommend(table, smoke=any(run.config.smoke for run in runs))
    with atomic_open(out / "faithfulness.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    with atomic_open(out / "per_prototype.csv", newline="") as handle:
        per_prototype.to_csv(handle, index=False)
    seeds = [run.config.seed for run in runs]
    markdown = (
        markdown_table(table, recommendation)
        + f"\nPooled over seeds {', '.join(map(str, seeds))} ({len(runs)} independently trained "
        "models per preset, each with its own controls). Top-1 share of the true factor in each "
        "run:\n\n" + _seed_table(table, per_prototype, seeds)
    )
    with atomic_open(out / "faithfulness.md", encoding="utf-8") as handle:
        handle.write(markdown)
    summary = {
        "config": {**asdict(runs[0].config), "seed": None, "presets": list(presets)},
        "seeds": seeds,
        "runs": [os.path.relpath(run.folder, out) for run in runs],
        "presets_done": list(presets),
        "recommended_family": recommendation.family,
        "recommendation": recommendation.reason,
        "files": ["faithfulness.csv", "faithfulness.md", "per_prototype.csv"],
    }
    write_json(out / "benchmark.json", summary)
    return summary


def run_seeds(
    config: FaithfulnessConfig, seeds: tuple[int, ...], out_dir: str | os.PathLike,
    device: str = "auto", progress: bool = True,
) -> dict:
    """Run the benchmark once per seed into ``out_dir/seed-N`` and pool the runs in ``out_dir``.

    A seed whose folder already holds a finished run of the same settings is not run again, so an
    interrupted job resumes where it stopped.
    """
    if len(set(seeds)) != len(seeds) or len(seeds) < 2:
        raise UserError(f"--seeds {','.join(map(str, seeds))}: give two or more different seeds")
    out = Path(out_dir)
    folders = []
    for seed in progress_bar(seeds, desc="seeds", unit="seed", disable=not progress):
        folder = out / f"seed-{seed}"
        wanted = replace(config, seed=seed)
        if not _finished(folder, wanted):
            run_faithfulness(wanted, folder, device=device, progress=progress)
        folders.append(folder)
    return combine_runs(folders, out)


def _finished(folder: Path, config: FaithfulnessConfig) -> bool:
    """Whether ``folder`` holds a finished run of ``config``'s presets with its result settings."""
    try:
        run = read_run(folder)
    except UserError:
        return False
    same = result_settings(run.config) == result_settings(config)
    return same and set(config.presets) <= set(run.presets)
