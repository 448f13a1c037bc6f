"""Shared plumbing of the study scripts in ``benchmarks/`` that reuse a finished benchmark run."""

from __future__ import annotations

import argparse
from pathlib import Path

from protoexplain.device import resolve_device
from protoexplain.fileio import read_json
from protoexplain.models import PrototypeModel, load_model


def study_arguments(description: str, out_default: str, out_help: str) -> argparse.Namespace:
    """``BENCHMARK_DIR [OUT] [--device cpu]`` of a study script; ``device`` comes back resolved."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("benchmark_dir", type=Path,
                        help="a finished 'protoexplain benchmark faithfulness' output folder")
    parser.add_argument("out", type=Path, nargs="?", default=Path(out_default),
                        help=f"{out_help} (default: ./{out_default})")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (default: cpu)")
    args = parser.parse_args()
    args.device = str(resolve_device(args.device))
    return args


def load_preset_run(bench: Path, preset: str, script: str) -> tuple[dict, PrototypeModel, Path]:
    """The benchmark's configuration, its trained ``preset`` model and that preset's data folder;
    exits with one line naming ``script`` when ``bench`` holds no finished run of ``preset``."""
    record, model_dir = bench / "benchmark.json", bench / "runs" / preset / "model"
    if not record.is_file() or not (model_dir / "model.json").is_file():
        raise SystemExit(f"{script}: {bench} holds no finished '{preset}' preset ({record.name} "
                         f"and runs/{preset}/model/); run 'protoexplain benchmark faithfulness' "
                         "first")
    return read_json(record)["config"], load_model(model_dir).eval(), bench / "data" / preset
