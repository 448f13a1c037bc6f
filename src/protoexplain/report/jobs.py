"""Work done in parallel worker processes: per-prototype figures, thumbnails and crop statistics,
and local explanation panels. Jobs are plain dictionaries; nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from protoexplain.data.images import load_rgb
from protoexplain.fileio import atomic_path
from protoexplain.progress import progress_bar
from protoexplain.report import figures
from protoexplain.report.findings import crop_statistics

THUMB_SIDE = 64


def load_image(path: str | Path | None) -> np.ndarray | None:
    """An RGB array of ``path``, or ``None`` when there is no such file."""
    if path is None or not Path(path).is_file():
        return None
    return np.asarray(load_rgb(path))


def prototype_job(job: dict[str, Any]) -> dict[str, Any]:
    """Thumbnail + crop statistics for one prototype; its figures when ``job['page']`` is set."""
    crop = load_image(job["crop"])
    result: dict[str, Any] = {"prototype": job["prototype"], "stats": None, "dose": False}
    if crop is not None:
        result["stats"] = crop_statistics(crop)
        thumb = Image.fromarray(crop)
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE))
        with atomic_path(job["thumb"]) as path:
            thumb.save(path, format="PNG")
    if not job["page"]:
        return result
    nearest = [(load_image(path), label) for path, label in job["nearest"]]
    scores = {split: pd.DataFrame(rows).set_index("modification")
              for split, rows in job["scores"].items()}
    fig = figures.global_panel(
        crop, load_image(job["source"]), job["source_box"],
        [(image, label) for image, label in nearest if image is not None],
        scores, title=job["title"],
    )
    figures.save_figure(fig, job["stem"] + "_global", job["formats"])
    if job["dose"]:
        dose = figures.dose_response(pd.DataFrame(job["dose"]))
        if dose is not None:
            figures.save_figure(dose, job["stem"] + "_dose", job["formats"])
            result["dose"] = True
    return result


def local_job(job: dict[str, Any]) -> str:
    """One explanation panel for a (test image, prototype) pair."""
    fig = figures.explanation_panel(
        job["pixels"], job["box"], load_image(job["crop"]), load_image(job["source"]),
        job["importances"], source_box=job["source_box"], title=job["title"],
    )
    figures.save_figure(fig, job["stem"], job["formats"])
    return job["stem"]


def make_pool(workers: int) -> ProcessPoolExecutor | None:
    """A pool of ``workers`` spawned processes, or ``None`` to work inline (``workers`` ≤ 1)."""
    if workers <= 1:
        return None
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def run_jobs(
    fn: Callable[[dict[str, Any]], Any],
    jobs: Iterable[dict[str, Any]],
    pool: ProcessPoolExecutor | None,
    desc: str,
) -> list[Any]:
    """Run ``fn`` over ``jobs`` in ``pool`` (or inline), in order, with a progress bar."""
    jobs = list(jobs)
    if pool is None or len(jobs) < 2:
        return [fn(job) for job in progress_bar(jobs, desc=desc, unit="job")]
    results = pool.map(fn, jobs, chunksize=4)
    return list(progress_bar(results, total=len(jobs), desc=desc, unit="job"))
