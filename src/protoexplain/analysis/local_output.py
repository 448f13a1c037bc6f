"""Write a local analysis: JSON + raw maps, text summary, per-prototype images and one panel figure.

Files in the output folder:

* ``analysis.json`` – every number and box (see :meth:`ImageAnalysis.to_dict`);
* ``similarity_maps.npy`` – the raw (P, H', W') similarity maps;
* ``summary.txt`` – the text the command prints;
* ``image.png`` – the model's view of the image (resized);
* ``top{r:02d}_p{j:04d}_heatmap.png`` / ``_patch.png`` – overlay with the high-activation box, and
  the patch inside that box, for each shown prototype;
* ``analysis.png`` – one row per shown prototype: the image with the box, the overlay, the
  prototype's own crop and its source image (when ``<model>/prototypes/`` has them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from protoexplain.analysis.heatmap import crop, draw_box, save_png
from protoexplain.analysis.local import ImageAnalysis
from protoexplain.data.images import load_rgb
from protoexplain.fileio import atomic_open, atomic_path, write_json
from protoexplain.imaging import heatmap_overlay


def format_analysis(analysis: ImageAnalysis) -> str:
    """Human-readable summary: prediction, top prototypes, top classes."""
    names = analysis.class_names
    lines = [
        f"prediction: {names[analysis.predicted]} "
        f"(p = {analysis.probabilities[analysis.predicted]:.3f}, "
        f"logit {analysis.logits[analysis.predicted]:.3f})",
        "",
        f"top {len(analysis.top_prototypes)} prototypes "
        f"(weight and contribution towards {names[analysis.predicted]}):",
    ]
    for item in analysis.top_prototypes:
        lines.append(
            f"  #{item.rank:<2} prototype {item.prototype:>4} of {item.class_name:<12} "
            f"similarity {item.similarity:7.3f} × weight {item.weight:6.3f} "
            f"= {item.contribution:7.3f}   box h{item.ha_box[0]}:{item.ha_box[1]} "
            f"w{item.ha_box[2]}:{item.ha_box[3]}"
        )
        if item.importances:
            lines.append(f"       this looks like that because {_because(item.importances)}")
        overall = analysis.explanation.get("global", {}).get(str(item.prototype))
        if overall:
            lines.append(f"       (over the explained data set: {_because(overall)})")
    for evidence in analysis.top_classes:
        lines += [
            "",
            f"class {evidence.class_name}: logit {evidence.logit:.3f} "
            f"(p = {evidence.probability:.3f}); its prototypes by contribution:",
        ]
        lines += [
            f"  prototype {part.prototype:>4}  {part.similarity:7.3f} × {part.weight:6.3f} "
            f"= {part.contribution:7.3f}"
            for part in evidence.prototypes
        ]
        lines.append(f"  all other prototypes together: {evidence.other_contribution:7.3f}")
    return "\n".join(lines) + "\n"


def _because(importances: dict[str, float]) -> str:
    ranked = sorted(importances.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{name} {value:.4f}" for name, value in ranked)


def _read_optional(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    return np.asarray(load_rgb(path), dtype=np.float32) / 255.0


def save_image_analysis(
    analysis: ImageAnalysis, out_dir: str | Path, prototype_dir: str | Path | None = None
) -> list[Path]:
    """Write every output file of ``analysis`` into ``out_dir``; return the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "analysis.json", out / "similarity_maps.npy", out / "summary.txt"]
    write_json(written[0], analysis.to_dict())
    with atomic_path(written[1]) as tmp, open(tmp, "wb") as handle:
        np.save(handle, analysis.similarity_maps.astype(np.float32))
    with atomic_open(written[2], "w", encoding="utf-8") as handle:
        handle.write(format_analysis(analysis))
    save_png(out / "image.png", analysis.image)
    written.append(out / "image.png")
    rows = []
    for item in analysis.top_prototypes:
        activation = analysis.activation_map(item.prototype)
        overlay = draw_box(heatmap_overlay(analysis.image, activation), item.ha_box)
        stem = out / f"top{item.rank:02d}_p{item.prototype:04d}"
        save_png(f"{stem}_heatmap.png", overlay)
        save_png(f"{stem}_patch.png", crop(analysis.image, item.ha_box))
        written += [Path(f"{stem}_heatmap.png"), Path(f"{stem}_patch.png")]
        own = Path(prototype_dir) if prototype_dir else None
        rows.append(
            (
                item,
                draw_box(analysis.image, item.ha_box),
                overlay,
                _read_optional(own / f"p{item.prototype:04d}_crop.png") if own else None,
                _read_optional(own / f"p{item.prototype:04d}_box.png") if own else None,
            )
        )
    if rows:
        written.append(_panel_figure(analysis, rows, out / "analysis.png"))
    return written


def _panel_figure(analysis: ImageAnalysis, rows: list, path: Path) -> Path:
    """One row per prototype: image with box | overlay | prototype crop | prototype source."""
    figure = Figure(figsize=(10, 2.6 * len(rows) + 0.6), layout="constrained")
    names = analysis.class_names
    figure.suptitle(
        f"prediction: {names[analysis.predicted]} "
        f"(p = {analysis.probabilities[analysis.predicted]:.3f})",
        parse_math=False,
    )
    axes = figure.subplots(len(rows), 4, squeeze=False)
    headers = ["this image (box)", "activation", "prototype", "prototype's source"]
    for row, (item, boxed, overlay, proto_crop, proto_source) in enumerate(rows):
        pictures = [boxed, overlay, proto_crop, proto_source]
        for column, picture in enumerate(pictures):
            axis = axes[row, column]
            axis.set_xticks([])
            axis.set_yticks([])
            if picture is None:
                axis.text(0.5, 0.5, "no push\nartefact", ha="center", va="center", fontsize=8)
            else:
                axis.imshow(np.clip(picture, 0, 1))
            if row == 0:
                axis.set_title(headers[column], fontsize=9)
        caption = (
            f"#{item.rank} p{item.prototype} ({item.class_name})\n"
            f"sim {item.similarity:.2f} × w {item.weight:.2f}\n= {item.contribution:.2f}"
        )
        if item.importances:
            caption += "\nbecause " + _because(item.importances).replace(", ", "\n")
        axes[row, 0].set_ylabel(caption, fontsize=8, rotation=0, ha="right", va="center",
                                parse_math=False)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=80)
    return path
