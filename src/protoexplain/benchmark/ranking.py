"""Where the true generating factor ranks among a prototype's characteristics."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Synthetic preset → the modification that changes its class-defining factor.
TRUE_FACTOR = {
    "hue": "hue",
    "shape": "shape",
    "texture": "texture",
    "contrast": "contrast",
    "saturation": "saturation",
    "brightness": "brightness",
}


def factor_ranks(global_scores: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Per prototype, the rank of ``factor`` among modifications by global importance.

    ``global_scores`` holds one row per (prototype, modification) (one strength each) with a
    ``weighted_delta`` column. Rank 1 = most important; ties share their mean rank.
    Returns columns ``prototype, rank, top`` (``top``: the most important modification).
    """
    if global_scores.duplicated(["prototype", "modification"]).any():
        raise ValueError("give one strength per modification to rank characteristics")
    table = global_scores.pivot(index="prototype", columns="modification", values="weighted_delta")
    if factor not in table.columns:
        raise ValueError(f"modification {factor!r} is not among {list(table.columns)}")
    ranks = table.rank(axis=1, ascending=False, method="average")
    return pd.DataFrame(
        {
            "prototype": table.index.to_numpy(),
            "rank": ranks[factor].to_numpy(),
            "top": table.idxmax(axis=1).to_numpy(),
        }
    )


def summarise_ranks(ranks: pd.DataFrame) -> dict[str, float]:
    """Share of prototypes whose top characteristic is the true factor, and its mean rank."""
    return {
        "top1_share": float(np.mean(ranks["rank"].to_numpy() == 1.0)),
        "mean_rank": float(ranks["rank"].mean()),
        "n_prototypes": len(ranks),
    }
