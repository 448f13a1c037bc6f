""""This looks like that *because* …": per-characteristic importances for a local analysis.

When ``protoexplain explain`` output exists for the model, the local importances of the analysed
image (Δ = s − s_m per modification, computed now with :func:`protoexplain.explain.explain_image`)
and the prototype's global scores (from ``global_scores.csv``) are attached to each shown
prototype.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from PIL import Image

from protoexplain.analysis.local import ImageAnalysis
from protoexplain.errors import UserError
from protoexplain.explain import explain_image
from protoexplain.explain.modifications import DEFAULT_FAMILY
from protoexplain.fileio import read_json, read_json_if_intact
from protoexplain.models import PrototypeModel, model_device

EXPLAIN_FILE = "explain.json"
GLOBAL_FILE = "global_scores.csv"


def _candidates(model_dir: Path) -> list[Path]:
    roots = [model_dir / "explain", model_dir.parent / "explain"]
    roots.append(model_dir.parent.parent / "explain")
    return [folder for root in roots for folder in (root, root / "test", root / "train")]


def _names_model(
    description: dict, explain_dir: Path, model: PrototypeModel, model_dir: Path
) -> bool:
    """Whether ``explain.json`` was written for this model (same folder, same prototype count)."""
    recorded = description.get("model")
    if not recorded or description.get("n_prototypes") != model.num_prototypes:
        return False
    bases = [Path.cwd(), *explain_dir.resolve().parents]
    return any((base / recorded).resolve() == model_dir for base in bases)


def find_explain_dir(model_dir: str | Path, model: PrototypeModel) -> Path | None:
    """An ``explain`` output folder beside the model whose ``explain.json`` names this model."""
    model_dir = Path(model_dir).resolve()
    for folder in _candidates(model_dir):
        record = read_json_if_intact(folder / EXPLAIN_FILE)
        complete = isinstance(record, dict) and (folder / GLOBAL_FILE).is_file()
        if complete and _names_model(record, folder, model, model_dir):
            return folder
    return None


def _keyed(frame: pd.DataFrame, value: str) -> dict[int, dict[str, float]]:
    """{prototype: {characteristic: value}}; ``name@strength`` when a name has several strengths."""
    several = frame.groupby("modification")["strength"].nunique() > 1
    result: dict[int, dict[str, float]] = {}
    for row in frame.itertuples(index=False):
        key = row.modification
        if several[key]:
            key = f"{key}@{row.strength:g}"
        result.setdefault(int(row.prototype), {})[key] = float(getattr(row, value))
    return result


def attach_importances(
    analysis: ImageAnalysis, model: PrototypeModel, image: Image.Image, explain_dir: str | Path
) -> None:
    """Add to every shown prototype its local importances on this image (Δ = s − s_m, computed
    with the modifications the explain run used) and its global scores (in place)."""
    explain_dir = Path(explain_dir)
    for name in (EXPLAIN_FILE, GLOBAL_FILE):
        if not (explain_dir / name).is_file():
            raise UserError(
                f"{explain_dir / name} is missing; pass the output folder of 'protoexplain explain'"
            )
    description = read_json(explain_dir / EXPLAIN_FILE)
    scores = pd.read_csv(explain_dir / GLOBAL_FILE)
    if len(scores) and scores["prototype"].max() >= model.num_prototypes:
        raise UserError(
            f"{explain_dir / GLOBAL_FILE} has scores for prototype {scores['prototype'].max()} "
            f"but the model has {model.num_prototypes}; pass the explain output of this model"
        )
    shown = [item.prototype for item in analysis.top_prototypes]
    local = explain_image(
        model, image,
        modifications=list(description["strengths"]),
        strengths=description["strengths"],
        family=description.get("family", DEFAULT_FAMILY),
        device=model_device(model),
    )
    local_scores = _keyed(local[local["prototype"].isin(shown)], "delta")
    global_scores = _keyed(scores[scores["prototype"].isin(shown)], "weighted_delta")
    analysis.explanation = {
        "explain_dir": str(explain_dir),
        "family": description.get("family", DEFAULT_FAMILY),
        "local": {str(j): local_scores.get(j, {}) for j in shown},
        "global": {str(j): global_scores.get(j, {}) for j in shown},
    }
    for item in analysis.top_prototypes:
        item.importances = local_scores.get(item.prototype)
