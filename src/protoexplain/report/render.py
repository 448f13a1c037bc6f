"""Build the static HTML report: gather tables, render figures in parallel, write the pages.

The report is self-contained: pages, figures and thumbnails under one folder, relative links, CSS
and JavaScript inline, a Content-Security-Policy that forbids every network request. Jinja2
escapes every value that comes from data (class names, file names).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader
from markupsafe import Markup

from protoexplain.fileio import atomic_open
from protoexplain.models import load_model
from protoexplain.models.checkpoint import read_model_description
from protoexplain.report import figures, findings, localexp, scores
from protoexplain.report.inputs import (
    RunInputs,
    read_global_scores,
    read_nearest,
    read_optional_json,
    read_records,
)
from protoexplain.report.jobs import local_job, make_pool, prototype_job, run_jobs


@dataclass
class ReportOptions:
    """How much to render and how."""

    max_prototype_pages: int | None = None
    local_images: int = 8
    local_top_k: int = 3
    nearest_k: int = 5
    formats: tuple[str, ...] = ("png", "svg")
    workers: int = 1
    latent_ratio: float = 0.1
    explanation_cosine: float = 0.9
    seed: int = 0
    device: str = "cpu"


@dataclass
class ReportSummary:
    """What was written."""

    index: Path
    prototypes: int
    pages: int
    local_panels: int
    misleading: int
    redundant: int


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("protoexplain.report", "templates"), autoescape=True)
    static = resources.files("protoexplain.report") / "static"
    env.globals["css"] = Markup(static.joinpath("report.css").read_text(encoding="utf-8"))
    env.globals["js"] = Markup(static.joinpath("report.js").read_text(encoding="utf-8"))
    return env


def _write(env: Environment, template: str, path: Path, **context: Any) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(env.get_template(template).render(**context))


def _box(record: pd.Series | None, prefix: str = "ha") -> tuple[int, int, int, int] | None:
    names = [f"{prefix}_{k}" for k in ("h0", "h1", "w0", "w1")]
    if record is None or not all(n in record.index for n in names):
        return None
    values = record[names].to_numpy(float)
    return tuple(int(v) for v in values) if np.isfinite(values).all() else None


def _figure(stem: str, formats: tuple[str, ...]) -> dict[str, str]:
    """Relative file names of one figure, keyed by format."""
    return {fmt: f"{stem}.{fmt}" for fmt in formats}


def _accuracy(evaluation: dict) -> dict[str, float | None]:
    models = evaluation.get("models") or [{}]
    ensemble = evaluation.get("ensemble") or {}
    return {"top1": models[0].get("top1"), "top5": models[0].get("top5"),
            "ensemble_top1": ensemble.get("top1"), "n_images": evaluation.get("n_images")}


def _per_class(inputs: RunInputs, class_names: list[str], proto_class: list[int]) -> list[dict]:
    counts = np.bincount(np.asarray(proto_class, dtype=int), minlength=len(class_names))
    accuracy: dict[str, float] = {}
    if inputs.evaluation_dir and (inputs.evaluation_dir / "per_class.csv").is_file():
        table = pd.read_csv(inputs.evaluation_dir / "per_class.csv")
        if {"class", "accuracy"} <= set(table.columns):
            accuracy = dict(zip(table["class"].astype(str), table["accuracy"], strict=True))
    return [{"index": c, "name": name, "prototypes": int(counts[c]), "accuracy": accuracy.get(name)}
            for c, name in enumerate(class_names)]


def build_report(
    inputs: RunInputs, out_dir: str | os.PathLike, options: ReportOptions | None = None
) -> ReportSummary:
    """Write the report for ``inputs`` into ``out_dir``; return what was written."""
    options = options or ReportOptions()
    out = Path(out_dir)
    for sub in ("figures", "thumbs", "prototypes"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    description = read_model_description(inputs.model_dir)
    spec = description["spec"]
    class_names = [str(c) for c in spec["class_names"]]
    proto_class = [int(c) for c in description.get("main_class", spec.get("prototype_class"))]
    count = len(proto_class)
    records = read_records(inputs.model_dir)
    records = records.set_index("prototype") if records is not None else None
    nearest = read_nearest(inputs.nearest_dir)
    evaluation = (read_optional_json(inputs.evaluation_dir / "metrics.json")
                  if inputs.evaluation_dir else {})

    split_scores = {s: read_global_scores(d) for s, d in inputs.explain.items()}
    main_split = "train" if "train" in split_scores else next(iter(split_scores), None)
    primary = scores.primary_strengths(split_scores[main_split]) if main_split else {}
    matrices = {s: scores.score_matrix(t, primary) for s, t in split_scores.items()}
    modifications = list(primary)
    main = matrices[main_split] if main_split else pd.DataFrame()
    dominant = scores.dominant(main) if main_split else pd.DataFrame(
        columns=["dominant", "dominant_score"])
    significance = (scores.significance(
        split_scores[main_split], primary, inputs.explain[main_split] / "local_scores.parquet")
        if main_split else None)

    order = list(range(count))
    if options.max_prototype_pages is not None:
        ranked = dominant["dominant_score"].reindex(order).fillna(-np.inf)
        order = sorted(order, key=lambda j: (-ranked[j], j))[: options.max_prototype_pages]
    with_page = set(order)
    proto_dir = inputs.model_dir / "prototypes"

    def record(j: int) -> pd.Series | None:
        return records.loc[j] if records is not None and j in records.index else None

    def nearest_of(j: int) -> list[tuple[str, str]]:
        if nearest is None or inputs.nearest_dir is None:
            return []
        rows = nearest[nearest["prototype"] == j].sort_values("rank").head(options.nearest_k)
        return [(str(inputs.nearest_dir / f"p{j:04d}_r{int(r):02d}_patch.png"), f"nearest {int(r)}")
                for r in rows["rank"]]

    def scores_of(j: int) -> dict[str, list[dict]]:
        result = {}
        for split, table in split_scores.items():
            rows = scores.at_primary(table[table["prototype"] == j], primary)
            if len(rows):
                columns = ["modification", "weighted_delta", "ci_low", "ci_high"]
                result[split] = rows[columns].to_dict("records")
        return result

    def dose_of(j: int) -> list[dict]:
        frames = [t[t["prototype"] == j].assign(split=s) for s, t in split_scores.items()]
        rows = pd.concat(frames) if frames else pd.DataFrame()
        if rows.empty or rows.groupby("modification")["strength"].nunique().max() < 2:
            return []
        return rows[["modification", "strength", "weighted_delta", "ci_low", "ci_high",
                     "split"]].to_dict("records")

    jobs = [{
        "prototype": j, "page": j in with_page,
        "crop": str(proto_dir / f"p{j:04d}_crop.png"),
        "source": str(proto_dir / f"p{j:04d}_source.png"),
        "source_box": _box(record(j)), "thumb": str(out / "thumbs" / f"p{j:04d}.png"),
        "nearest": nearest_of(j) if j in with_page else [],
        "scores": scores_of(j) if j in with_page else {},
        "dose": dose_of(j) if j in with_page else [],
        "title": f"prototype {j} · class {class_names[proto_class[j]]}",
        "stem": str(out / "figures" / f"p{j:04d}"), "formats": options.formats,
    } for j in range(count)]

    pool = make_pool(options.workers)
    try:
        results = run_jobs(prototype_job, jobs, pool, "prototype figures")
        local_examples, local_panels = _local_examples(inputs, split_scores, primary, options)
        local_jobs = [{
            "pixels": ex.pixels, "box": ex.box,
            "crop": str(proto_dir / f"p{ex.prototype:04d}_crop.png"),
            "source": str(proto_dir / f"p{ex.prototype:04d}_source.png"),
            "source_box": _box(record(ex.prototype)), "importances": ex.importances,
            "title": f"{ex.image} · prototype {ex.prototype} (similarity {ex.similarity:.3g})",
            "stem": str(out / "figures" / stem), "formats": options.formats,
        } for ex, stem in zip(local_examples, local_panels, strict=True)]
        run_jobs(local_job, local_jobs, pool, "local explanations")
    finally:
        if pool is not None:
            pool.shutdown()

    stats_table = pd.DataFrame(
        {r["prototype"]: r["stats"] for r in results if r["stats"] is not None}
    ).T
    has_dose = {r["prototype"] for r in results if r["dose"]}
    flags = (findings.misleading(stats_table, dominant.dropna())
             if len(stats_table) and len(dominant) else pd.DataFrame(
                 columns=["shown", "dominant_rank", "misleading"]))
    explanation_vectors = (split_scores[main_split].pivot_table(
        index="prototype", columns=["modification", "strength"], values="weighted_delta")
        if main_split else None)
    pairs = findings.redundant_pairs(
        findings.prototype_vectors(inputs.model_dir), explanation_vectors,
        latent_ratio=options.latent_ratio, explanation_cosine=options.explanation_cosine)
    partners: dict[int, list[int]] = {}
    for pair in pairs:
        partners.setdefault(pair.first, []).append(pair.second)
        partners.setdefault(pair.second, []).append(pair.first)

    summary_figures = {}
    if len(main):
        fig = figures.score_heatmap(main)
        figures.save_figure(fig, out / "figures" / "heatmap", options.formats)
        summary_figures["heatmap"] = _figure("figures/heatmap", options.formats)
    if "train" in matrices and "test" in matrices:
        fig = figures.train_test_scatter(matrices["train"], matrices["test"])
        figures.save_figure(fig, out / "figures" / "train_test", options.formats)
        summary_figures["train_test"] = _figure("figures/train_test", options.formats)

    rows = []
    for j in range(count):
        dom = dominant.loc[j] if j in dominant.index else None
        name = dom["dominant"] if dom is not None else None
        q = (significance["q_value"].get((j, name)) if significance is not None and name
             else None)
        rec = record(j)
        rows.append({
            "prototype": j, "class_index": proto_class[j],
            "class_name": class_names[proto_class[j]],
            "dominant": name, "dominant_score": None if dom is None else dom["dominant_score"],
            "q_value": None if q is None or pd.isna(q) else float(q),
            "significant": q is not None and not pd.isna(q) and q < scores.ALPHA,
            "scores": {m: (main.at[j, m] if j in main.index else None) for m in modifications},
            "shown": flags["shown"].get(j) if j in flags.index else None,
            "dominant_rank": flags["dominant_rank"].get(j) if j in flags.index else None,
            "misleading": bool(flags["misleading"].get(j, False)) if j in flags.index else False,
            "redundant_with": partners.get(j, []),
            "page": j in with_page, "thumb": (out / "thumbs" / f"p{j:04d}.png").is_file(),
            "image_path": None if rec is None else rec.get("image_path"),
            "distance": None if rec is None else rec.get("distance"),
        })

    env = _environment()
    common = {
        "backbone": spec.get("backbone"), "num_classes": len(class_names), "count": count,
        "modifications": modifications, "primary": primary, "alpha": scores.ALPHA,
        "splits": list(split_scores), "main_split": main_split,
        "statistics": CROP_STATISTIC_NAMES, "quartile": findings.QUARTILE,
        "latent_ratio": options.latent_ratio, "explanation_cosine": options.explanation_cosine,
        "has_local": bool(local_examples),
    }
    for row in rows:
        if not row["page"]:
            continue
        j = row["prototype"]
        _write(env, "prototype.html.j2", out / "prototypes" / f"p{j:04d}.html", root="../",
               row=row, **common,
               global_figure=_figure(f"../figures/p{j:04d}_global", options.formats),
               dose_figure=(_figure(f"../figures/p{j:04d}_dose", options.formats)
                            if j in has_dose else None),
               split_scores={s: m.loc[j].to_dict() for s, m in matrices.items() if j in m.index},
               local=[(ex, _figure(f"../figures/{stem}", options.formats))
                      for ex, stem in zip(local_examples, local_panels, strict=True)
                      if ex.prototype == j])
    if local_examples:
        _write(env, "local.html.j2", out / "local.html", root="", **common,
               examples=[(ex, _figure(f"figures/{stem}", options.formats))
                         for ex, stem in zip(local_examples, local_panels, strict=True)])
    # the index last: once it exists, every page it links to does
    _write(env, "index.html.j2", out / "index.html", root="", rows=rows, **common,
           accuracy=_accuracy(evaluation), per_class=_per_class(inputs, class_names, proto_class),
           distributions={s: scores.distributions(m) for s, m in matrices.items()},
           comparisons=(scores.compare_splits(matrices["train"], matrices["test"])
                        if "train" in matrices and "test" in matrices else []),
           figures=summary_figures, pairs=pairs,
           misleading=[r for r in rows if r["misleading"]])
    return ReportSummary(out / "index.html", count, len(with_page), len(local_examples),
                         sum(r["misleading"] for r in rows), len(pairs))


CROP_STATISTIC_NAMES = {name: label for name, (label, _) in findings.CROP_STATISTICS.items()}


def _local_examples(
    inputs: RunInputs, split_scores: dict[str, pd.DataFrame], primary: dict[str, float],
    options: ReportOptions,
) -> tuple[list[localexp.LocalExample], list[str]]:
    """Sampled local examples (test split preferred) with their patches, and figure stems."""
    split = "test" if "test" in split_scores else next(iter(split_scores), None)
    if split is None or options.local_images <= 0:
        return [], []
    explain_dir = inputs.explain[split]
    local_path = explain_dir / "local_scores.parquet"
    if not local_path.is_file():
        return [], []
    images = localexp.sample_images(local_path, options.local_images, options.seed)
    examples = localexp.select_examples(local_path, images, primary, options.local_top_k)
    root = (inputs.images_dir
            or localexp.data_root_of(read_optional_json(explain_dir / "explain.json"), inputs.root)
            or next((d for d in (inputs.root / "data" / split,) if d.is_dir()), None))
    localexp.locate_patches(load_model(inputs.model_dir), examples, root, options.device)
    index = {name: k for k, name in enumerate(images)}
    stems = [f"local_{index[ex.image]:03d}_p{ex.prototype:04d}" for ex in examples]
    return examples, stems
