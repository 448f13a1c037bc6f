"""Benchmarks of the explanation method against ground truth (``protoexplain benchmark``)."""

from protoexplain.benchmark.faithfulness import (
    FaithfulnessConfig,
    quick_config,
    run_faithfulness,
)
from protoexplain.benchmark.ranking import TRUE_FACTOR, factor_ranks, summarise_ranks
from protoexplain.benchmark.seeds import combine_runs, run_seeds

__all__ = [
    "TRUE_FACTOR",
    "FaithfulnessConfig",
    "combine_runs",
    "factor_ranks",
    "quick_config",
    "run_faithfulness",
    "run_seeds",
    "summarise_ranks",
]
