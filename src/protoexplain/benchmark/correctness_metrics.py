"""The correctness benchmark's metrics from its per-prototype table (``per_prototype.csv``).

M1 and M2 use the isolated presets' models (trained and controls); M3 and M4 the two ``mixed``
models of each seed (head hue labels, body shape labels). Definitions: :mod:`.agreement`; the
aim is the one fixed in issue 16 before any result was seen (:data:`AIM`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from protoexplain.benchmark.agreement import (
    Profiles,
    clr,
    contrast_auc,
    cross_correlations,
    entangled,
    log_ratio,
    per_factor,
    per_prototype,
    pooled_spearman,
)
from protoexplain.benchmark.correctness import (
    CHARACTERISTICS,
    FAMILIES,
    MIXED_VIEWS,
    PART_CHARACTERISTICS,
    CorrectnessConfig,
)

#: The aim (issue 16), checked per family in ``correctness.json``'s ``aim`` section.
AIM = {
    "m1_colour": 0.6,  # ρ for hue, saturation, brightness, contrast
    "m1_form": 0.5,  # ρ for shape, texture
    "m1_low": 0.3,  # every lower bound above
    "m2_top1": 0.6,
    "m2_gain": 0.25,  # top-1 points above the mean-profile baseline
    "m2_trained_vs_random": 0.2,  # largest top-1 gap between trained and untrained
    "m3_auc": 0.8,
    "m4_rho": 0.5,
}
COLOUR = ("hue", "saturation", "brightness", "contrast")


def profiles(
    table: pd.DataFrame, family: str, target: float,
    method_columns: Sequence[str] = CHARACTERISTICS,
    reference_columns: Sequence[str] = CHARACTERISTICS,
) -> list[Profiles]:
    """One :class:`Profiles` per model (seed, preset, model) of ``table``'s rows of ``family`` at
    ``target``, columns in the order given."""
    rows = table[(table["family"] == family) & np.isclose(table["target"], target)]
    found = []
    for key, group in rows.groupby(["seed", "preset", "model"], sort=True):
        method = group.pivot(index="prototype", columns="characteristic", values="method")
        reference = group.pivot(index="prototype", columns="characteristic", values="reference")
        found.append(Profiles("/".join(map(str, key)), method[list(method_columns)].to_numpy(),
                              reference[list(reference_columns)].to_numpy()))
    return found


def _m1(models: list[Profiles], replicates: int) -> dict:
    return per_factor(models, CHARACTERISTICS, replicates, seed=0)


def _m3(mixed: pd.DataFrame, family: str, target: float, replicates: int) -> dict:
    """AUC of CLR(hue) for hue-model prototypes against shape-model ones, and of CLR(shape)
    the other way, for the method and (as a check) the reference."""
    by_view = {view: profiles(mixed[mixed["preset"] == view], family, target)
               for view in MIXED_VIEWS}
    hue, shape = CHARACTERISTICS.index("hue"), CHARACTERISTICS.index("shape")
    found = {}
    for source in ("method", "reference"):
        scores = {view: [clr(getattr(p, source)) for p in models]
                  for view, models in by_view.items()}
        found[source] = {
            "hue": contrast_auc([m[:, hue] for m in scores["mixed-hue"]],
                                [m[:, hue] for m in scores["mixed-shape"]], replicates, 3),
            "shape": contrast_auc([m[:, shape] for m in scores["mixed-shape"]],
                                  [m[:, shape] for m in scores["mixed-hue"]], replicates, 4),
        }
    return found


def _m4(mixed: pd.DataFrame, family: str, target: float, replicates: int) -> dict:
    """Spearman across the mixed models' prototypes between d_met = CLR(hue) − CLR(shape) and
    d_int = CLR(head.hue) − CLR(body.shape)."""
    models = profiles(mixed, family, target, ("hue", "shape"), PART_CHARACTERISTICS)
    pairs = [(log_ratio(p.method, 0, 1), log_ratio(p.reference, 0, 1)) for p in models]
    return pooled_spearman(pairs, replicates, seed=5)


def _aim(m1: dict | None, m2: dict | None, m3: dict | None, m4: dict | None) -> dict:
    """Which parts of :data:`AIM` one family meets (None where not measured)."""
    found: dict[str, bool | None] = {"m1": None, "m2": None, "m2_trained_vs_random": None}
    if m1 is not None and m2 is not None:
        rho = all(m1[c]["rho"] >= (AIM["m1_colour"] if c in COLOUR else AIM["m1_form"])
                  for c in CHARACTERISTICS)
        low = all(m1[c]["low"] > AIM["m1_low"] for c in CHARACTERISTICS)
        pooled, by_model = m2["all"], m2["by_model"]
        found["m1"] = bool(rho and low)
        found["m2"] = bool(pooled["method_top1"]["value"] >= AIM["m2_top1"]
                           and pooled["gain_top1_over_mean_profile"]["value"] >= AIM["m2_gain"])
        if "trained" in by_model and "control_random" in by_model:
            gap = abs(by_model["trained"]["method_top1"]["value"]
                      - by_model["control_random"]["method_top1"]["value"])
            found["m2_trained_vs_random"] = bool(gap <= AIM["m2_trained_vs_random"])
    found["m3"] = None if m3 is None else all(
        m3["method"][c]["auc"] >= AIM["m3_auc"] for c in ("hue", "shape"))
    found["m4"] = None if m4 is None else bool(m4["rho"] >= AIM["m4_rho"])
    return found


def summarise(table: pd.DataFrame, config: CorrectnessConfig) -> dict:
    """M1–M4 and the aim from ``table`` (columns :data:`.correctness.COLUMNS`)."""
    replicates, target = config.bootstrap, config.headline
    isolated = table[~table["preset"].isin(list(MIXED_VIEWS))]
    mixed = table[table["preset"].isin(list(MIXED_VIEWS))]
    has_mixed = set(mixed["preset"]) == set(MIXED_VIEWS)
    summary: dict = {"families": {}, "by_target": {}, "by_model": {}, "cross": {},
                     "entangled": {}, "m2": {}, "m3": {} if has_mixed else None,
                     "m4": {"size": config.parts_size} if has_mixed else None, "aim": {}}
    for family in FAMILIES:
        if table[table["family"] == family].empty:
            continue
        models = profiles(isolated, family, target)
        m1 = m2 = m3 = m4 = None
        if models:
            m1 = summary["families"][family] = _m1(models, replicates)
            summary["by_target"][family] = {
                str(t): _m1(profiles(isolated, family, t), replicates) for t in config.targets}
            kinds = sorted(set(isolated["model"]))
            by_kind = {kind: profiles(isolated[isolated["model"] == kind], family, target)
                       for kind in kinds}
            summary["by_model"][family] = {kind: _m1(found, replicates)
                                           for kind, found in by_kind.items()}
            summary["cross"][family] = cross_correlations(models, CHARACTERISTICS)
            summary["entangled"][family] = entangled(summary["cross"][family])
            m2 = summary["m2"][family] = {
                "all": per_prototype(models, replicates, seed=1),
                "by_model": {kind: per_prototype(found, replicates, seed=1)
                             for kind, found in by_kind.items()},
            }
        if has_mixed:
            m3 = summary["m3"][family] = _m3(mixed, family, target, replicates)
            m4 = summary["m4"][family] = _m4(mixed, family, target, replicates)
        summary["aim"][family] = _aim(m1, m2, m3, m4)
    return summary
