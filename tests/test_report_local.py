"""Local explanation examples read from the streamed local table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from protoexplain.report.localexp import select_examples

STRENGTHS = {"contrast": 0.45, "hue": 0.1, "saturation": 0.7, "shape": 4.0}


def test_every_characteristic_is_read_although_strengths_are_stored_as_float32(tmp_path):
    rows = []
    for prototype, similarity in ((0, 5.0), (1, 7.0), (2, 1.0)):
        for index, (name, strength) in enumerate(STRENGTHS.items()):
            rows.append(("a.png", "c0", prototype, name, strength, similarity,
                         prototype + index / 10))
    image, cls, prototype, modification, strength, similarity, delta = zip(*rows, strict=True)
    table = pa.table({
        "image": image, "class": cls, "prototype": pa.array(prototype, pa.int32()),
        "modification": modification, "strength": pa.array(strength, pa.float32()),
        "orig_similarity": pa.array(similarity, pa.float32()),
        "delta": pa.array(delta, pa.float32()),
    })
    pq.write_table(table, tmp_path / "local.parquet")
    examples = select_examples(tmp_path / "local.parquet", ["a.png"], STRENGTHS, top_k=2)
    # the two most similar prototypes, most similar first
    assert [e.prototype for e in examples] == [1, 0]
    assert set(examples[0].importances) == set(STRENGTHS)
    np.testing.assert_allclose(
        [examples[0].importances[name] for name in STRENGTHS], [1.0, 1.1, 1.2, 1.3], rtol=1e-6
    )
