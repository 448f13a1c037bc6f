"""The local score table: per-batch rows, part files per chunk of images, and the final merge.

Rows are ordered image → prototype → setting. String columns are dictionary-encoded so a table
of tens of millions of rows stays small.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from protoexplain.fileio import atomic_path

_DICT = pa.dictionary(pa.int32(), pa.string())
LOCAL_SCHEMA = pa.schema(
    [
        ("image", _DICT),
        ("class", _DICT),
        ("prototype", pa.int32()),
        ("prototype_class", pa.int32()),
        ("modification", _DICT),
        ("strength", pa.float32()),
        ("orig_similarity", pa.float32()),
        ("delta", pa.float32()),
        ("relative_delta", pa.float32()),
    ]
)
COMPRESSION = "zstd"


def _dictionary(codes: np.ndarray, values: Sequence[str]) -> pa.DictionaryArray:
    indices = pa.array(codes, pa.int32())
    return pa.DictionaryArray.from_arrays(indices, pa.array(values, pa.string()))


def local_rows(
    images: Sequence[str],
    classes: Sequence[str],
    similarity: np.ndarray,
    delta: np.ndarray,
    prototype_class: np.ndarray,
    setting_names: Sequence[str],
    setting_strengths: Sequence[float],
    top_k: int | None = None,
) -> pa.Table:
    """Rows for a batch: ``similarity`` (B, P), ``delta`` (B, K, P).

    ``top_k`` keeps each image's K most similar prototypes (listed in prototype order).
    """
    batch, settings, prototypes = delta.shape
    if top_k is not None and top_k < prototypes:
        kept = np.sort(np.argsort(-similarity, axis=1, kind="stable")[:, :top_k], axis=1)
    else:
        kept = np.broadcast_to(np.arange(prototypes), (batch, prototypes))
    count = kept.shape[1]
    s = np.take_along_axis(similarity, kept, axis=1)  # (B, Q)
    d = np.take_along_axis(delta.transpose(0, 2, 1), kept[:, :, None], axis=1)  # (B, Q, K)
    orig = np.repeat(s.reshape(-1), settings).astype(np.float32)
    flat_delta = d.reshape(-1).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = flat_delta / orig
    per_image = count * settings
    image_codes = np.repeat(np.arange(batch), per_image)
    class_values = sorted(set(classes))
    class_codes = np.repeat([class_values.index(c) for c in classes], per_image)
    prototype = np.repeat(kept.reshape(-1), settings).astype(np.int32)
    setting_codes = np.tile(np.arange(settings), batch * count)
    names = sorted(set(setting_names))
    name_codes = np.array([names.index(n) for n in setting_names])[setting_codes]
    strengths = np.asarray(setting_strengths, dtype=np.float32)[setting_codes]
    columns = [
        _dictionary(image_codes, list(images)),
        _dictionary(class_codes, class_values),
        pa.array(prototype),
        pa.array(prototype_class[prototype].astype(np.int32)),
        _dictionary(name_codes, names),
        pa.array(strengths),
        pa.array(orig),
        pa.array(flat_delta),
        pa.array(relative.astype(np.float32)),
    ]
    return pa.Table.from_arrays(columns, schema=LOCAL_SCHEMA)


class PartWriter:
    """Write one chunk's rows to a temporary file; :meth:`commit` renames it into place."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._context = atomic_path(self.path)
        self._tmp = self._context.__enter__()
        self._writer = pq.ParquetWriter(self._tmp, LOCAL_SCHEMA, compression=COMPRESSION)

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def commit(self) -> Path:
        self._writer.close()
        self._context.__exit__(None, None, None)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._context.__exit__(RuntimeError, RuntimeError("aborted"), None)


def merge_parts(parts: Sequence[Path], target: Path, metadata: dict[str, str]) -> int:
    """Concatenate part files (row group by row group) into ``target`` atomically; return rows."""
    schema = LOCAL_SCHEMA.with_metadata(metadata)
    rows = 0
    with atomic_path(target) as tmp, pq.ParquetWriter(tmp, schema, compression=COMPRESSION) as out:
        for part in parts:
            source = pq.ParquetFile(part)
            for group in range(source.num_row_groups):
                table = source.read_row_group(group).replace_schema_metadata(metadata)
                out.write_table(table)
                rows += table.num_rows
    return rows
