"""The closing summary of a pipeline run: accuracy, what each class's prototypes rely on, where."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from protoexplain.fileio import read_json


def dominant_characteristics(global_scores: pd.DataFrame) -> pd.DataFrame:
    """Per prototype class: the characteristic with the largest mean global importance.

    Uses each modification's first (default) strength; returns columns ``prototype_class``,
    ``characteristic``, ``importance`` and ``prototypes``.
    """
    first_strength = global_scores.groupby("modification")["strength"].transform("first")
    scores = global_scores[global_scores["strength"] == first_strength]
    means = scores.groupby(["prototype_class", "modification"])["weighted_delta"].mean()
    best = means.groupby(level=0).idxmax().map(lambda pair: pair[1])
    counts = scores.groupby("prototype_class")["prototype"].nunique()
    return pd.DataFrame(
        {
            "prototype_class": best.index,
            "characteristic": best.to_numpy(),
            "importance": [means[(c, m)] for c, m in best.items()],
            "prototypes": counts.reindex(best.index).to_numpy(),
        }
    )


def summary_lines(run_dir: str | Path, class_names: list[str] | None = None) -> list[str]:
    """Human-readable lines about a finished run (only what exists is reported)."""
    run_dir = Path(run_dir)
    lines = [f"run folder: {run_dir}"]
    metrics_file = run_dir / "evaluation" / "metrics.json"
    if metrics_file.is_file():
        metrics = read_json(metrics_file)
        for entry in metrics.get("models", []):
            lines.append(
                f"test accuracy: top-1 {entry['top1']:.1%}, top-5 {entry['top5']:.1%} "
                f"on {metrics.get('n_images', '?')} images"
            )
    for split in ("test", "train"):
        scores_file = run_dir / "explain" / split / "global_scores.csv"
        if scores_file.is_file():
            table = dominant_characteristics(pd.read_csv(scores_file))
            lines.append(f"most important characteristic per prototype class ({split} split):")
            names = [class_names[c] if class_names and c < len(class_names) else str(c)
                     for c in table["prototype_class"]]
            width = max(map(len, names), default=0)
            for name, row in zip(names, table.itertuples(), strict=True):
                lines.append(
                    f"  {name:<{width}}  {row.characteristic:<11} {row.importance:+.3f} "
                    f"({row.prototypes} prototypes)"
                )
            break
    report = run_dir / "report" / "index.html"
    if report.is_file():
        lines.append(f"report: {report} (open it in a browser)")
    return lines
