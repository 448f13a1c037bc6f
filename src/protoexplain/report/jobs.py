"""Work done in parallel worker processes: each prototype's crop statistics and the image files
its table row and page show (thumbnail, crop, source with box, nearest patches). Jobs are plain
dictionaries; an output path of ``None`` means the file is there already (see
:mod:`protoexplain.report.images`). Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from tqdm import tqdm

from protoexplain.report.findings import crop_statistics
from protoexplain.report.images import load_image, write_boxed, write_copy, write_thumbnail

#: Prototypes per task sent to a worker: large enough that sending them costs little.
CHUNK = 32


def prototype_job(job: dict[str, Any]) -> dict[str, Any]:
    """Crop statistics of one prototype, and those of its image files that are missing."""
    crop = load_image(job["crop"])
    result: dict[str, Any] = {"prototype": job["prototype"], "stats": None}
    if crop is not None:
        result["stats"] = crop_statistics(crop)
        if job["thumb"] is not None:
            write_thumbnail(crop, Path(job["thumb"]))
        if job["crop_out"] is not None:
            write_copy(Path(job["crop"]), Path(job["crop_out"]))
    if job["source_out"] is not None:
        source = load_image(job["source"])
        if source is not None:
            write_boxed(source, job["source_box"], Path(job["source_out"]))
    for source, out in job["nearest"]:
        if out is not None and Path(source).is_file():
            write_copy(Path(source), Path(out))
    return result


def run_jobs(
    fn: Callable[[dict[str, Any]], Any], jobs: Iterable[dict[str, Any]], workers: int, desc: str
) -> list[Any]:
    """Run ``fn`` over ``jobs`` in order, with a progress bar: in ``workers`` spawned processes
    when there are two or more and enough jobs to repay starting them, else inline."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) < 2 * CHUNK:
        return [fn(job) for job in tqdm(jobs, desc=desc, unit="job")]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        return list(tqdm(pool.map(fn, jobs, chunksize=CHUNK), total=len(jobs), desc=desc,
                         unit="job"))
