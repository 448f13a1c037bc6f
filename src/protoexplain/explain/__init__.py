"""Explaining prototypes (Nauta et al.): image modifications, importance scores, statistics."""

from protoexplain.explain.engine import (
    ExplainConfig,
    ExplainResult,
    explain_dataset,
    explain_image,
    run_explain,
)
from protoexplain.explain.modifications import (
    Modification,
    ModificationSetting,
    get_modification,
    list_families,
    list_modifications,
    register_modification,
    resolve_settings,
)

__all__ = [
    "ExplainConfig",
    "ExplainResult",
    "Modification",
    "ModificationSetting",
    "explain_dataset",
    "explain_image",
    "get_modification",
    "list_families",
    "list_modifications",
    "register_modification",
    "resolve_settings",
    "run_explain",
]
