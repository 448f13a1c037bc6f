"""What each prototype's table row and page show: its image files (named by their inputs, so a
rerun reuses them), its global importance bars and its dose–response charts."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from protoexplain.report import charts
from protoexplain.report.figures import GLOBAL_LABEL
from protoexplain.report.images import THUMB_SIDE, file_key, keyed_name

Box = tuple[int, int, int, int]
IMAGES, THUMBS = "images", "thumbs"


@dataclass
class PrototypeFiles:
    """Paths relative to the report folder (``None``: no such image)."""

    thumb: str | None = None
    crop: str | None = None
    source: str | None = None
    nearest: list[tuple[str, str]] = field(default_factory=list)

    def names(self) -> list[str]:
        """Every file this prototype uses."""
        listed = [self.thumb, self.crop, self.source, *(path for _, path in self.nearest)]
        return [path for path in listed if path is not None]


class FileNamer:
    """Names report files after their inputs and tells which already exist in the report."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.existing = {f"{folder}/{path.name}" for folder in (IMAGES, THUMBS)
                         if (out / folder).is_dir() for path in (out / folder).iterdir()}

    def name(self, folder: str, stem: str, *parts: object) -> str:
        """``folder/stem-<hash>.png`` for the inputs ``parts``."""
        return f"{folder}/{keyed_name(stem, *parts)}"

    def target(self, relative: str | None) -> str | None:
        """Where to write ``relative``, or ``None`` when it is there already (or not wanted)."""
        if relative is None or relative in self.existing:
            return None
        return str(self.out / relative)


def plan_prototype(
    j: int, proto_dir: Path, source_box: Box | None, nearest: list[tuple[str, Path]],
    page: bool, namer: FileNamer,
) -> tuple[PrototypeFiles, dict[str, Any]]:
    """The files of prototype ``j`` and the job that makes the missing ones (:mod:`.jobs`).

    ``nearest``: (label, patch file) pairs. Page images are planned only when ``page`` is set.
    """
    crop = proto_dir / f"p{j:04d}_crop.png"
    source = proto_dir / f"p{j:04d}_source.png"
    crop_key = file_key(crop)
    has_crop = crop.is_file()
    files = PrototypeFiles(
        thumb=namer.name(THUMBS, f"p{j:04d}", crop_key, THUMB_SIDE) if has_crop else None)
    if page:
        files.crop = namer.name(IMAGES, f"p{j:04d}_crop", crop_key) if has_crop else None
        files.source = (namer.name(IMAGES, f"p{j:04d}_source", file_key(source), source_box)
                        if source.is_file() else None)
        present = [(label, path) for label, path in nearest if path.is_file()]
        files.nearest = [(label, namer.name(IMAGES, f"p{j:04d}_near{k}", file_key(path)))
                         for k, (label, path) in enumerate(present)]
    else:
        present = []
    job = {
        "prototype": j, "crop": str(crop), "thumb": namer.target(files.thumb),
        "crop_out": namer.target(files.crop), "source": str(source),
        "source_box": source_box, "source_out": namer.target(files.source),
        "nearest": [(str(path), namer.target(rel))
                    for (_, path), (_, rel) in zip(present, files.nearest, strict=True)],
    }
    return files, job


Series = dict[str, tuple[float, float | None, float | None]]
#: prototype → characteristic → split → (strength, weighted Δ, CI low, CI high) rows
DoseRows = dict[int, dict[str, dict[str, list[tuple[float, float, float, float]]]]]


def _optional(value: float) -> float | None:
    return None if math.isnan(value) else value


def _columns(table: pd.DataFrame) -> zip:
    """The rows of a global score table as plain Python tuples (fast to loop over)."""
    return zip(table["prototype"].astype(int).tolist(), table["modification"].astype(str).tolist(),
               table["strength"].astype(float).tolist(),
               table["weighted_delta"].astype(float).tolist(),
               table["ci_low"].astype(float).tolist(), table["ci_high"].astype(float).tolist(),
               strict=True)


def score_series(split_scores: dict[str, pd.DataFrame]) -> dict[int, dict[str, Series]]:
    """Per prototype and split: characteristic → (weighted Δ, CI low, CI high), from tables
    already reduced to one strength per characteristic."""
    result: dict[int, dict[str, Series]] = {}
    for split, table in split_scores.items():
        for j, name, _, value, low, high in _columns(table):
            result.setdefault(j, {}).setdefault(split, {})[name] = (
                value, _optional(low), _optional(high))
    return result


def dose_rows(split_scores: dict[str, pd.DataFrame]) -> DoseRows:
    """Every prototype's scores at every strength of the characteristics computed at two or
    more strengths."""
    result: DoseRows = {}
    for split, table in split_scores.items():
        several = table.groupby("modification")["strength"].nunique()
        wanted = table[table["modification"].map(several).fillna(0) >= 2]
        for j, name, strength, value, low, high in _columns(wanted):
            result.setdefault(j, {}).setdefault(name, {}).setdefault(split, []).append(
                (strength, value, low, high))
    return result


def global_chart(series: dict[str, Series], main_split: str | None) -> charts.BarChart | None:
    """Bars of every characteristic, one per split, ordered by the main split's score."""
    if not series:
        return None
    first = main_split if main_split in series else next(iter(series))
    extra = [name for values in series.values() for name in values]
    order = charts.ordered_groups({m: v[0] for m, v in series[first].items()}, extra)
    return charts.bar_chart(order, series, GLOBAL_LABEL)


def dose_charts(rows: dict[str, dict[str, list[tuple[float, float, float, float]]]]
                ) -> list[charts.LineChart]:
    """One chart per characteristic of one prototype's :func:`dose_rows`."""
    return [charts.line_chart(name, by_split) for name, by_split in rows.items()]
