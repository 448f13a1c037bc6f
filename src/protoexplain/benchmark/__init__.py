"""Benchmarks of the explanation method against ground truth (``protoexplain benchmark``)."""

from protoexplain.benchmark.faithfulness import (
    FaithfulnessConfig,
    quick_config,
    run_faithfulness,
)
from protoexplain.benchmark.ranking import TRUE_FACTOR, factor_ranks, summarise_ranks

__all__ = [
    "TRUE_FACTOR",
    "FaithfulnessConfig",
    "factor_ranks",
    "quick_config",
    "run_faithfulness",
    "summarise_ranks",
]
