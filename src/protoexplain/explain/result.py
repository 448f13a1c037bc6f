"""What an explanation run returns: the global table, statistics and the local table, on disk or in
memory, with a wide view of the importance scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

LOCAL_FILE = "local_scores.parquet"
GLOBAL_FILE = "global_scores.csv"


def importance_table(global_scores: pd.DataFrame, value: str = "weighted_delta") -> pd.DataFrame:
    """Wide view of a global table: one row per prototype, one column per characteristic.

    Columns are the modification names when each was run at one strength, else
    (modification, strength) pairs. ``value`` names the column of the long table to spread
    (``weighted_delta``, the global importance, by default; e.g. ``mean_delta`` or ``ci_low``).
    """
    if value not in global_scores.columns:
        raise KeyError(f"no column {value!r} in the global table: {list(global_scores.columns)}")
    one_strength = bool((global_scores.groupby("modification")["strength"].nunique() == 1).all())
    columns = "modification" if one_strength else ["modification", "strength"]
    return global_scores.pivot(index="prototype", columns=columns, values=value)


@dataclass
class ExplainResult:
    """What an explanation produced: files in ``out_dir``, or (``out_dir`` None) in memory only.

    ``global_scores`` and ``local_scores()`` keep the column names of ``global_scores.csv`` and
    ``local_scores.parquet``; :meth:`importance` is the wide prototype × characteristic view.
    """

    out_dir: Path | None
    global_scores: pd.DataFrame
    stats: dict[str, Any]
    n_images: int
    already_complete: bool = False  # found finished with the same settings, not recomputed
    local: pd.DataFrame | None = field(default=None, repr=False)  # held when out_dir is None

    @property
    def local_scores_path(self) -> Path | None:
        """The local table's file, None for an in-memory result."""
        return None if self.out_dir is None else self.out_dir / LOCAL_FILE

    def local_scores(self) -> pd.DataFrame:
        """The local table (from disk it can be very large: prefer ``local_top_k`` or pyarrow
        filters on :attr:`local_scores_path`)."""
        if self.local is not None:
            return self.local
        return pd.read_parquet(self.local_scores_path)

    def importance(self, value: str = "weighted_delta") -> pd.DataFrame:
        """Prototype × characteristic table of ``value`` (see :func:`importance_table`)."""
        return importance_table(self.global_scores, value)
