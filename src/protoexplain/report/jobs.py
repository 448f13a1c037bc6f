"""Work done in parallel worker threads: each prototype's crop statistics and the image files
its table row and page show (thumbnail, crop, source with box, nearest patches). Jobs are plain
dictionaries; an output path of ``None`` means the file is there already (see
:mod:`protoexplain.report.images`). Nothing here imports torch or matplotlib.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from protoexplain.progress import progress_bar
from protoexplain.report.findings import crop_statistics
from protoexplain.report.images import load_image, write_boxed, write_copy, write_thumbnail

#: Fewer jobs than this are done inline.
MIN_PARALLEL_JOBS = 64


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
    """Run ``fn`` over ``jobs`` in order, with a progress bar: in ``workers`` threads when there
    are two or more and enough jobs, else inline. Threads, not processes: image decoding and
    encoding, zlib and OpenCV release the GIL, and a thread starts without importing anything
    (a spawned process imports torch, seconds each on two busy cores)."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) < MIN_PARALLEL_JOBS:
        return [fn(job) for job in progress_bar(jobs, desc=desc, unit="job")]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(progress_bar(pool.map(fn, jobs), total=len(jobs), desc=desc, unit="job"))
