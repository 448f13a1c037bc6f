"""The correctness benchmark's files: ``correctness.json``, ``correctness.md``,
``per_prototype.csv`` and ``doses.csv`` (all written atomically)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from protoexplain.benchmark.correctness import (
    CHARACTERISTICS,
    FAMILIES,
    CorrectnessConfig,
    quick_correctness,
)
from protoexplain.benchmark.correctness_metrics import AIM, summarise
from protoexplain.data.synth_factors import get_preset
from protoexplain.fileio import atomic_open, write_json

FILES = ("correctness.json", "correctness.md", "per_prototype.csv", "doses.csv")
DOSE_COLUMNS = ("seed", "preset", "kind", "name", "family", "target", "dose", "delta_e",
                "reached")
MODEL_ORDER = ("trained", "control_trunk", "control_patches", "control_random")


def _mode(config: CorrectnessConfig) -> str:
    if config == CorrectnessConfig():
        return "full run"
    if config == quick_correctness():
        return "quick run (--quick: tiny models, numbers not meaningful)"
    return "custom settings (see config)"


def _doses(calibration: dict) -> pd.DataFrame:
    """One row per intervention dose and per modification strength, per seed and preset."""
    rows = []
    for seed, by_preset in calibration.items():
        for preset, found in by_preset.items():
            for dose in found["doses"]:
                rows.append({"seed": int(seed), "preset": preset, "kind": "intervention",
                             "name": dose["intervention"], "family": "", "target": dose["target"],
                             "dose": dose["dose"], "delta_e": dose["delta_e"],
                             "reached": dose["reached"]})
            for family, by_name in found["strengths"].items():
                for name, by_target in by_name.items():
                    for target, strength in by_target.items():
                        rows.append({"seed": int(seed), "preset": preset,
                                     "kind": "modification", "name": name, "family": family,
                                     "target": float(target), "dose": strength,
                                     "delta_e": None, "reached": None})
    return pd.DataFrame(rows, columns=list(DOSE_COLUMNS))


def write_outputs(table: pd.DataFrame, config: CorrectnessConfig, run: dict, out: Path) -> dict:
    """Compute the metrics of ``table`` and write every file to ``out``; return the JSON."""
    metrics = summarise(table, config)
    seeds = sorted({int(s) for s in table["seed"]})
    per_class = config.test_per_class
    summary = {
        "source": f"protoexplain benchmark correctness, {_mode(config)}; doses and strengths "
                  f"matched at mean ΔE2000 {', '.join(map(str, config.targets))}, headline "
                  f"{config.headline}",
        "seeds": seeds,
        "images_per_preset": (per_class * len(get_preset(config.presets[0]).classes)
                              if config.presets else 0),
        "images_mixed": (config.parts_test_per_class * len(get_preset("mixed").classes)
                         if config.contrast else 0),
        "presets": sorted(set(table["preset"])),
        **metrics,
        "config": asdict(config),
        **run,
        "files": list(FILES),
    }
    write_json(out / "correctness.json", summary)
    with atomic_open(out / "per_prototype.csv", newline="") as handle:
        table.to_csv(handle, index=False)
    with atomic_open(out / "doses.csv", newline="") as handle:
        _doses(run["calibration"]).to_csv(handle, index=False)
    with atomic_open(out / "correctness.md", encoding="utf-8") as handle:
        handle.write(markdown(summary))
    return summary


def _ci(entry: dict, key: str = "rho", scale: float = 1.0, digits: int = 2) -> str:
    value, low, high = (scale * entry[k] for k in (key, "low", "high"))
    return f"{value:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"


def _share(entry: dict) -> str:
    return _ci(entry, "value", 100.0, 0).replace(" (", " % (")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows] + [""]


def _isolated(summary: dict, families: list[str]) -> list[str]:
    """The M1 and M2 tables of the isolated presets' models."""
    lines = ["## M1: per characteristic, Spearman ρ across prototypes (CLR; all models)", ""]
    lines += _table(["characteristic", *families],
                    [[c, *(_ci(summary["families"][f][c]) for f in families)]
                     for c in CHARACTERISTICS])
    for family in families:
        kinds = [k for k in MODEL_ORDER if k in summary["by_model"][family]]
        lines += [f"M1 of {family} by model:", ""]
        lines += _table(["characteristic", *kinds],
                        [[c, *(_ci(summary["by_model"][family][k][c]) for k in kinds)]
                         for c in CHARACTERISTICS])
        lines += [f"Entangled in {family} (its importance follows another factor's intervention "
                  f"more than its own): {', '.join(summary['entangled'][family]) or 'none'}.", ""]
    lines += ["## M2: per prototype, over characteristics", ""]
    rows = []
    for family in families:
        for kind, entry in [("all", summary["m2"][family]["all"]),
                            *summary["m2"][family]["by_model"].items()]:
            rows.append([family, kind, _share(entry["method_top1"]),
                         _share(entry["mean_profile_top1"]), _share(entry["shuffled_top1"]),
                         _share(entry["gain_top1_over_mean_profile"]),
                         _ci(entry["method_spearman"], "value"),
                         _ci(entry["mean_profile_spearman"], "value")])
    lines += _table(["family", "models", "top-1 agreement", "mean-profile baseline",
                     "shuffled baseline", "gain over mean profile", "Spearman",
                     "mean-profile Spearman"], rows)
    return lines


def markdown(summary: dict) -> str:
    """The benchmark's tables (M1–M4 and the aim) as markdown."""
    families = [f for f in FAMILIES if f in summary["aim"]]
    isolated = [f for f in families if f in summary["families"]]
    images = [f"{summary['images_per_preset']} test images per preset"
              if summary["images_per_preset"] else "",
              f"{summary['images_mixed']} on mixed" if summary["images_mixed"] else ""]
    lines = [f"# Correctness benchmark: {summary['source']}", "",
             f"Seeds {', '.join(map(str, summary['seeds']))}; "
             f"{', '.join(filter(None, images))}; presets {', '.join(summary['presets'])}. "
             "Intervals: 95 % bootstrap clustered by model.", ""]
    lines += (_isolated(summary, isolated) if isolated
              else ["M1 and M2 were not run (no hue, shape or texture models).", ""])
    if summary["m3"]:
        lines += ["## M3: model contrast on `mixed` (AUC, hue model vs shape model)", ""]
        lines += _table(["family", "hue: method", "shape: method", "hue: reference",
                         "shape: reference"],
                        [[f, *(_ci(summary["m3"][f][src][c], "auc")
                               for src in ("method", "reference") for c in ("hue", "shape"))]
                         for f in families])
        lines += [f"## M4: parts at {summary['m4']['size']} px, Spearman of CLR(hue) − "
                  "CLR(shape) against CLR(head.hue) − CLR(body.shape)", ""]
        lines += _table(["family", "ρ"], [[f, _ci(summary["m4"][f])] for f in families])
    else:
        lines += ["M3 and M4 were not run (no `mixed` models).", ""]
    lines += ["## Aim (fixed in issue 16 before any result)", "",
              f"M1 ρ ≥ {AIM['m1_colour']} (colour) / ≥ {AIM['m1_form']} (shape, texture), lower "
              f"bounds > {AIM['m1_low']}; M2 top-1 ≥ {AIM['m2_top1']:.0%} and ≥ "
              f"{AIM['m2_gain']:.0%} points above the mean profile; trained vs untrained within "
              f"{AIM['m2_trained_vs_random']:.0%}; M3 AUC ≥ {AIM['m3_auc']} both ways; M4 ρ ≥ "
              f"{AIM['m4_rho']}.", ""]
    names = ["m1", "m2", "m2_trained_vs_random", "m3", "m4"]
    shown = {True: "met", False: "missed", None: "not measured"}
    lines += _table(["family", *names],
                    [[f, *(shown[summary["aim"][f][n]] for n in names)] for f in families])
    return "\n".join(lines)
