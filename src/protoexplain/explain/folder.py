"""Explain a model folder on an image folder: what ``protoexplain explain`` and the pipeline's
explain step run (model and images opened, strengths calibrated when asked, the engine run)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from protoexplain.analysis.evaluate import check_classes
from protoexplain.data import ImageFolderDataset
from protoexplain.errors import UserError
from protoexplain.explain.config import ExplainConfig
from protoexplain.explain.engine import run_explain
from protoexplain.explain.result import GLOBAL_FILE, ExplainResult
from protoexplain.models import load_model
from protoexplain.training.distributed import init_distributed, is_main_process, shutdown


def explain_folder(
    model_dir: str | os.PathLike, data_dir: str | os.PathLike, out_dir: str | os.PathLike,
    config: ExplainConfig, *, compare_with: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> ExplainResult | None:
    """Explain the images of ``data_dir`` (unreadable ones as ``config.on_error`` says) with the
    model in ``model_dir`` into ``out_dir``; under torchrun every process calls this, and process
    0 returns the result."""
    config.check()
    if (compare_with is not None and is_main_process()
            and not (Path(compare_with) / GLOBAL_FILE).is_file()):
        raise UserError(f"--compare-with {compare_with}: {GLOBAL_FILE} not found there")
    context = init_distributed(config.device)
    try:
        config = replace(config, device=str(context.device))
        model = load_model(model_dir, device=context.device)
        dataset = ImageFolderDataset(data_dir, on_error=config.on_error)
        check_classes(model, dataset.classes, str(model_dir), dataset.root)
        describe: dict[str, Any] = {"model": str(model_dir), "data": str(data_dir)}
        return run_explain(model, dataset, out_dir, config, compare_with=compare_with,
                           describe=describe, overwrite=overwrite)
    finally:
        shutdown(context)

