"""Explaining prototypes (Nauta et al.): image modifications, importance scores, statistics."""

from protoexplain.explain.api import explain_dataset, explain_images
from protoexplain.explain.engine import ExplainConfig, explain_image, run_explain
from protoexplain.explain.modifications import (
    Modification,
    ModificationSetting,
    get_modification,
    list_families,
    list_modifications,
    register_modification,
    resolve_settings,
)
from protoexplain.explain.result import ExplainResult, importance_table

__all__ = [
    "ExplainConfig",
    "ExplainResult",
    "Modification",
    "ModificationSetting",
    "explain_dataset",
    "explain_image",
    "explain_images",
    "get_modification",
    "importance_table",
    "list_families",
    "list_modifications",
    "register_modification",
    "resolve_settings",
    "run_explain",
]
