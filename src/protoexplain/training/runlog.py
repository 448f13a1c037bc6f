"""The run folder's readable outputs: ``metrics.csv``, ``train.log``, TensorBoard if installed."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from protoexplain.fileio import atomic_open

METRIC_COLUMNS = (
    "step", "epoch", "phase", "iteration", "lr", "loss", "ce", "cluster", "separation", "l1",
    "train_acc", "val_acc", "test_acc", "seconds",
)


class RunLog:
    """Writes metrics and log lines on the main process only (others get a silent instance)."""

    def __init__(
        self, folder: Path, active: bool, columns: tuple[str, ...] = METRIC_COLUMNS
    ) -> None:
        self.folder = folder
        self.active = active
        self.columns = columns
        self.logger = logging.getLogger("protoexplain.training")
        self._handler: logging.Handler | None = None
        self._writer: Any = None
        if not active:
            return
        self._handler = logging.FileHandler(folder / "train.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.logger.addHandler(self._handler)
        self.logger.setLevel(logging.INFO)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            self.logger.info("TensorBoard is not installed; metrics go to metrics.csv only")
        else:
            self._writer = SummaryWriter(str(folder / "tensorboard"))

    def info(self, message: str, *args: Any) -> None:
        if self.active:
            self.logger.info(message, *args)

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite ``metrics.csv`` (atomically) and add the newest row to TensorBoard."""
        if not self.active:
            return
        with atomic_open(self.folder / "metrics.csv", "w", encoding="utf-8", newline="") as out:
            pd.DataFrame(rows, columns=list(self.columns)).to_csv(out, index=False)
        if self._writer is not None and rows:
            row = rows[-1]
            for key in self.columns[4:-1]:
                value = row.get(key)
                if isinstance(value, float) and not math.isnan(value):
                    self._writer.add_scalar(f"{key}/{row['phase']}", value, row["step"])
            self._writer.flush()

    def close(self) -> None:
        if self._handler is not None:
            self.logger.removeHandler(self._handler)
            self._handler.close()
        if self._writer is not None:
            self._writer.close()
