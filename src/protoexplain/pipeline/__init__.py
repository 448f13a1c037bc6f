"""The whole pipeline from one config (``protoexplain run``) and the built-in demo."""

from protoexplain.pipeline.config import PipelineConfig, load_pipeline_config
from protoexplain.pipeline.run import run_pipeline

__all__ = ["PipelineConfig", "load_pipeline_config", "run_pipeline"]
