"""Analyses (method §5): local analysis of one image, nearest images, pruning, evaluation."""

from protoexplain.analysis.evaluate import Evaluation, evaluate_models, save_evaluation
from protoexplain.analysis.explanations import attach_importances, find_explain_dir
from protoexplain.analysis.local import ImageAnalysis, analyze_image
from protoexplain.analysis.local_output import format_analysis, save_image_analysis
from protoexplain.analysis.nearest import Neighbours, find_neighbours, nearest_table, save_nearest
from protoexplain.analysis.prune import PruneConfig, prune_model_folder, prune_report

__all__ = [
    "Evaluation",
    "ImageAnalysis",
    "Neighbours",
    "PruneConfig",
    "analyze_image",
    "attach_importances",
    "evaluate_models",
    "find_explain_dir",
    "find_neighbours",
    "format_analysis",
    "nearest_table",
    "prune_model_folder",
    "prune_report",
    "save_evaluation",
    "save_image_analysis",
    "save_nearest",
]
