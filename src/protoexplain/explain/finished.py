"""What an explanation folder holds: finished with these settings, with other ones, or neither."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from protoexplain.errors import UserError
from protoexplain.fileio import read_json_if_intact

# written by the finalisation step; explain.json last, so it marks a finished explanation
FINAL_FILES = ("local_scores.parquet", "global_scores.csv", "stats.json", "summary.txt",
               "explain.json")
# recorded in explain.json but not settings: a rerun that differs only here is the same explanation
NOT_SETTINGS = ("versions", "skipped_images")


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys of two explain.json descriptions that differ, settings only."""
    keys = (set(old) | set(new)) - set(NOT_SETTINGS)
    return sorted(key for key in keys if old.get(key) != new.get(key))


def is_already_complete(out_dir: Path, description: dict[str, Any], overwrite: bool) -> bool:
    """True when ``out_dir`` holds a finished explanation with exactly these settings.

    A finished explanation with other settings, or final-named files without ``explain.json`` and
    without unfinished parts, is a :class:`UserError` naming what differs, unless ``overwrite``.
    """
    old = read_json_if_intact(out_dir / "explain.json")
    if isinstance(old, dict) and all((out_dir / name).is_file() for name in FINAL_FILES):
        differ = differences(old, description)
        if not differ:
            return True
        if not overwrite:
            raise UserError(
                f"{out_dir} holds a finished explanation made with other {', '.join(differ)}; "
                "give --overwrite to replace it, or choose another OUT_DIR"
            )
        return False
    present = [name for name in FINAL_FILES if (out_dir / name).exists()]
    if present and not (out_dir / "parts").is_dir() and not overwrite:
        raise UserError(
            f"{out_dir} already holds {', '.join(present)} that no explanation here has finished; "
            "give --overwrite to replace them, or choose another OUT_DIR"
        )
    return False
