"""Push artefacts (``<model dir>/prototypes/``, docs/architecture.md), written once per push.

Per prototype: the high-activation crop, the source image, the source with its box and the
heatmap overlay (0.5·image + 0.3·JET of the min-max-scaled upsampled similarity map), plus
``records.csv``, ``boxes_rf.npy`` / ``boxes_ha.npy`` and ``push.json``. The folder is built beside
its final place and renamed into it, so readers never see half a folder.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torchvision.transforms import functional as TF

from protoexplain.data import ImageFolderDataset
from protoexplain.fileio import atomic_open, write_json
from protoexplain.imaging import draw_box, encode_png, heatmap_overlay, save_png, write_bytes
from protoexplain.models.ppnet import ProtoPNet
from protoexplain.progress import progress_bar
from protoexplain.training.folders import staged_folder
from protoexplain.training.push import PushResult, upsample_maps

PROTOTYPES_DIR = "prototypes"
BOX_COLOUR = (255, 255, 0)


def box_arrays(result: PushResult) -> tuple[np.ndarray, np.ndarray]:
    """``[image_idx, h0, h1, w0, w1, class]`` rows (receptive field, high activation)."""
    index = result.image_index.view(-1, 1)
    classes = result.prototype_class.view(-1, 1)
    rf = torch.cat([index, result.rf_boxes, classes], dim=1).numpy().astype(np.int64)
    ha = torch.cat([index, result.ha_boxes, classes], dim=1).numpy().astype(np.int64)
    return rf, ha


def records_frame(result: PushResult, class_names: list[str]) -> pd.DataFrame:
    """One row per prototype with the columns of docs/architecture.md."""
    classes = result.prototype_class.tolist()
    frame = pd.DataFrame(
        {
            "prototype": range(len(classes)),
            "class_index": classes,
            "class_name": [class_names[c] for c in classes],
            "pushed": result.pushed.tolist(),
            "image_index": result.image_index.tolist(),
            "image_path": [p or "" for p in result.image_paths],
            "cell_h": result.cell_h.tolist(),
            "cell_w": result.cell_w.tolist(),
            "distance": [d if p else float("nan") for d, p in zip(
                result.distance.tolist(), result.pushed.tolist(), strict=True)],
        }
    )
    for prefix, boxes in (("rf", result.rf_boxes), ("ha", result.ha_boxes)):
        for column, values in zip(("h0", "h1", "w0", "w1"), boxes.T.tolist(), strict=True):
            frame[f"{prefix}_{column}"] = values
    return frame


def _write_images(
    result: PushResult, dataset: ImageFolderDataset, folder: Path, progress: bool
) -> None:
    """The four PNGs of every pushed prototype, one task per source image, in threads.

    PNG encoding releases the GIL, so the threads encode in parallel; the order of the writes
    does not change the files. The source image is encoded once per image.
    """
    groups: dict[int, list[int]] = {}
    for j in result.pushed.nonzero().flatten().tolist():
        groups.setdefault(int(result.image_index[j]), []).append(j)
    workers = min(len(groups), os.cpu_count() or 1) or 1
    bar = progress_bar(total=sum(map(len, groups.values())), desc="prototype images",
               disable=not progress)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        tasks = [pool.submit(_write_image_group, result, dataset, folder, index, prototypes)
                 for index, prototypes in groups.items()]
        for task in as_completed(tasks):
            bar.update(task.result())
    bar.close()


def _write_image_group(
    result: PushResult, dataset: ImageFolderDataset, folder: Path, index: int,
    prototypes: list[int],
) -> int:
    """Write the PNGs of ``prototypes``, all pushed onto image ``index``; return how many."""
    size = result.image_size
    image = np.asarray(TF.resize(dataset.load_image(index), [size, size]))
    upsampled = upsample_maps(result.similarity_maps[prototypes], size).numpy()
    source = encode_png(image)  # the same file for every prototype of this image
    for row, j in enumerate(prototypes):
        h0, h1, w0, w1 = result.ha_boxes[j].tolist()
        write_bytes(folder / f"p{j:04d}_source.png", source)
        save_png(folder / f"p{j:04d}_crop.png", image[h0:h1, w0:w1])
        save_png(folder / f"p{j:04d}_box.png", draw_box(image, (h0, h1, w0, w1), BOX_COLOUR, 2))
        save_png(folder / f"p{j:04d}_heatmap.png", heatmap_overlay(image / 255.0, upsampled[row]))
    return len(prototypes)


def save_push_artifacts(
    result: PushResult,
    model: ProtoPNet,
    dataset: ImageFolderDataset,
    out_dir: str | os.PathLike,
    progress: bool = False,
    images: bool = True,
) -> Path:
    """Write ``out_dir/prototypes/`` for ``result`` (replacing any previous one); return it.

    With ``images=False`` only the records, boxes and ``push.json`` are written (no PNGs).
    """
    final = Path(out_dir) / PROTOTYPES_DIR
    with staged_folder(final) as staging:
        if images:
            _write_images(result, dataset, staging, progress)
        with atomic_open(staging / "records.csv", "w", encoding="utf-8", newline="") as handle:
            records_frame(result, model.class_names).to_csv(handle, index=False)
        rf, ha = box_arrays(result)
        np.save(staging / "boxes_rf.npy", rf)
        np.save(staging / "boxes_ha.npy", ha)
        write_json(
            staging / "push.json",
            {
                "data_root": result.data_root,
                "image_size": result.image_size,
                "num_prototypes": len(result.image_paths),
                "num_pushed": result.num_pushed,
                "unpushed_prototypes": (~result.pushed).nonzero().flatten().tolist(),
                "receptive_field": model.receptive_field().as_list(),
                "high_activation_percentile": 95,
                "similarity_map": "found during the search, before projection (as the original)",
                "images": images,
            },
        )
    return final

