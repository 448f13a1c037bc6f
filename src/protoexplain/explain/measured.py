"""How well each characteristic's score describes the model: the correctness benchmark's M1.

The results of ``protoexplain benchmark correctness`` are committed as package data
(``protoexplain/benchmark/results/correctness.json``). For the family an explanation used, every
characteristic gets its measured M1 (Spearman across prototypes between the method's importance
and the model's own response to re-rendering with that factor changed) with its 95 % interval,
and the family gets a warning where its characteristics are entangled: known by construction
(:data:`KNOWN_ENTANGLEMENT`) or measured (a characteristic whose score follows another factor's
intervention more closely than its own). ``explain``'s summary and the report show both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

#: Where the committed results live inside the package.
RESULTS = ("benchmark", "results", "correctness.json")
#: Entanglement that follows from how a family's modifications work, whatever was measured.
KNOWN_ENTANGLEMENT = {
    "paper": "its contrast and saturation modifications blend toward grey and so also remove "
             "colour: their scores partly measure reliance on hue",
}


@dataclass(frozen=True)
class Measured:
    """M1 of one characteristic: ρ and its 95 % bootstrap interval (clustered by model)."""

    rho: float
    low: float
    high: float

    def label(self) -> str:
        """``M1 ρ 0.85 (0.70–0.93)``."""
        return f"M1 ρ {self.rho:.2f} ({self.low:.2f}–{self.high:.2f})"


@dataclass(frozen=True)
class FamilyCorrectness:
    """What the committed benchmark measured for one family."""

    family: str
    by_characteristic: dict[str, Measured]
    warnings: list[str]
    source: str

    def label(self, characteristic: str) -> str:
        """The characteristic's M1 label, or ``not measured``."""
        found = self.by_characteristic.get(characteristic)
        return found.label() if found is not None else "not measured"


def load_results(path: str | Path | None = None) -> dict | None:
    """The committed ``correctness.json`` (or the file at ``path``); None when there is none."""
    if path is None:
        resource = resources.files("protoexplain").joinpath(*RESULTS)
        if not resource.is_file():
            return None
        text = resource.read_text(encoding="utf-8")
    else:
        if not Path(path).is_file():
            return None
        text = Path(path).read_text(encoding="utf-8")
    return json.loads(text)


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _measured_warnings(results: dict, family: str) -> list[str]:
    """One line per characteristic whose score follows another factor's intervention more
    closely than its own (the benchmark's ``entangled`` list and ``cross`` correlations)."""
    cross = results.get("cross", {}).get(family, {})
    lines = []
    for name in results.get("entangled", {}).get(family, []):
        row = cross.get(name, {})
        others = {f: rho for f, rho in row.items() if f != name and _finite(rho)}
        if not others:
            continue
        other = max(others, key=others.get)
        own = row.get(name)
        own_text = f"{own:.2f}" if _finite(own) else "n/a"
        lines.append(f"measured: the {name} score follows the {other} intervention "
                     f"(ρ {others[other]:.2f}) more than the {name} one (ρ {own_text})")
    return lines


def family_correctness(family: str, results: dict | None = None) -> FamilyCorrectness | None:
    """The measured correctness of ``family`` from ``results`` (default: the committed file);
    None when nothing was measured for it."""
    results = load_results() if results is None else results
    if not results or family not in results.get("families", {}):
        return None
    by_characteristic = {
        name: Measured(float(entry["rho"]), float(entry["low"]), float(entry["high"]))
        for name, entry in results["families"][family].items()
        if all(_finite(entry.get(k)) for k in ("rho", "low", "high"))
    }
    warnings = [f"known: {KNOWN_ENTANGLEMENT[family]}"] if family in KNOWN_ENTANGLEMENT else []
    warnings += _measured_warnings(results, family)
    source = (f"protoexplain benchmark correctness (seeds {', '.join(map(str, results['seeds']))}, "
              f"{results['images_per_preset']} test images per preset, synthetic birds; strengths "
              f"matched at mean ΔE2000 {results['config']['headline']})")
    return FamilyCorrectness(family, by_characteristic, warnings, source)


def summary_section(correctness: FamilyCorrectness | None, family: str) -> str:
    """The lines ``explain``'s summary adds: the warning (if any) and where M1 comes from."""
    if correctness is None:
        return (f"\nMeasured correctness: none for the {family} family (no committed "
                "correctness benchmark results for it).\n")
    lines = ["", f"Measured correctness (M1) of the {family} family: Spearman ρ across "
             "prototypes between each score and the model's own response to re-rendering with "
             f"that factor changed, 95 % interval; from {correctness.source}."]
    if correctness.warnings:
        lines += ["", f"WARNING: the {family} family is entangled:"]
        lines += [f"  - {line}" for line in correctness.warnings]
    return "\n".join(lines) + "\n"
